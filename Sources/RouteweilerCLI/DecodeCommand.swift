import ArgumentParser
import Foundation
import RouteweilerWire

struct DecodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Decode and verify a BOLT-11 invoice.")

    @Argument(help: "The invoice (lnbc…, lntb…, lntbs…, lnbcrt…).")
    var invoice: String

    @Flag(name: .customLong("json"), help: "Print JSON.")
    var json = false

    func run() async throws {
        let inv: Bolt11Invoice
        do {
            inv = try Bolt11Invoice(parsing: invoice.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            printError("error: \(error)")
            throw ExitCode(ExitCodes.notPaid)
        }
        let now = UInt64(Date().timeIntervalSince1970)
        let object: [String: Any] = [
            "network": inv.network.rawValue,
            "amountMsat": inv.amountMsat.map { $0 as Any } ?? NSNull(),
            "amountSats": inv.amountMsat.map { ($0 / 1000) as Any } ?? NSNull(),
            "timestamp": inv.timestamp,
            "expirySeconds": inv.expirySeconds,
            "expiresAt": inv.expiresAt,
            "expired": inv.isExpired(now: now),
            "paymentHash": inv.paymentHash.hexString,
            "paymentSecret": inv.paymentSecret.hexString,
            "description": inv.description.map { $0 as Any } ?? NSNull(),
            "descriptionHash": inv.descriptionHash.map { $0.hexString as Any } ?? NSNull(),
            "payee": inv.payeePublicKey.hexString,
            "minFinalCltvExpiry": inv.minFinalCltvExpiry,
            "routeHints": inv.routeHints.count,
            "features": inv.features.bits,
            "signatureValid": true,
        ]
        if json {
            print(jsonText(object))
            return
        }
        let date = Date(timeIntervalSince1970: TimeInterval(inv.timestamp))
        print("network:        \(inv.network)")
        print("amount:         \(inv.amountMsat.map { "\($0 / 1000) sats (\($0) msat)" } ?? "none (amountless)")")
        print("created:        \(date) (unix \(inv.timestamp))")
        print("expires:        unix \(inv.expiresAt) (\(inv.expirySeconds) s)\(inv.isExpired(now: now) ? " — EXPIRED" : "")")
        print("payment hash:   \(inv.paymentHash.hexString)")
        print("payee:          \(inv.payeePublicKey.hexString) (signature verified)")
        if let d = inv.description { print("description:    \(d)") }
        if let h = inv.descriptionHash { print("description #:  \(h.hexString)") }
        print("min final cltv: \(inv.minFinalCltvExpiry)")
        if !inv.routeHints.isEmpty { print("route hints:    \(inv.routeHints.count)") }
        print("features:       \(inv.features.bits.map(String.init).joined(separator: ","))")
    }
}
