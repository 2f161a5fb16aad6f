import Foundation
import HTTPTypes
import Routeweiler
public import RouteweilerWire

/// A parsed MPP charge, common to every method: the challenge as sent and the facts the rails check.
public struct MPPCharge: Sendable {
    /// The challenge exactly as sent (echoed in the credential).
    public var challenge: MPPChallenge
    /// `request.amount` in the method's base unit.
    public var amount: UInt64
    /// `request.currency` as sent.
    public var currency: String
    /// `request.recipient`, if present.
    public var recipient: String?
    /// `request.methodDetails`, if present.
    public var methodDetails: JSONValue?
    /// `expires`, or now + 300 s when the server sent none.
    public var expiresAt: Date
}

/// Helpers shared by the MPP rails (SPEC §6.4).
enum MPP {
    static let receiptHeader = HTTPField.Name("Payment-Receipt")!
    /// Expiry assumed for challenges without `expires` (tolerance for non-conformant servers).
    static let defaultLifetime: TimeInterval = 300

    /// Every `Payment` challenge whose method is in `methods`, parsed with `build`, or the typed error that makes
    /// it unusable. Challenges of other methods and schemes are left to other rails.
    static func offers(in context: ChallengeContext, methods: Set<String>, rail: RailID,
                       build: (MPPCharge) -> OfferResult) -> [OfferResult] {
        guard context.response.status.code == 402 else { return [] }
        let fields = context.response.headerFields[values: .wwwAuthenticate]
        guard !fields.isEmpty else { return [] }
        var challenges: [AuthChallenge] = []
        var results: [OfferResult] = []
        for field in fields {
            // Each field on its own, so one malformed field does not hide the offers in the others.
            do {
                challenges += try AuthChallenge.parse(field)
            } catch {
                let lower = field.lowercased()
                if methods.contains(where: { lower.contains("method=\"\($0)\"") || lower.contains("method=\($0)") }) {
                    results.append(.rejected(ChallengeError("malformed WWW-Authenticate: \(error)", rail: rail,
                                                            cause: error)))
                }
            }
        }
        for c in challenges where c.hasScheme("Payment") {
            guard let method = c["method"]?.lowercased(), methods.contains(method) else { continue }
            results.append(charge(c, context: context, rail: rail, build: build))
        }
        return results
    }

    static func charge(_ c: AuthChallenge, context: ChallengeContext, rail: RailID,
                       build: (MPPCharge) -> OfferResult) -> OfferResult {
        let challenge: MPPChallenge
        do {
            challenge = try MPPChallenge(c)
        } catch {
            return .rejected(ChallengeError(error.message, rail: rail, cause: error))
        }
        guard challenge.effectiveIntent == "charge" else {
            return .rejected(InvalidChallengeError(
                code: .unsupportedIntent, message: "MPP intent '\(challenge.intent)' is not supported (only 'charge')",
                rail: rail))
        }
        let expiresAt: Date
        if let expires = challenge.expires {
            guard let d = Timestamp.parse(expires) else {
                return .rejected(ChallengeError("could not parse 'expires' (\(expires))", rail: rail))
            }
            expiresAt = d
        } else {
            expiresAt = context.now.addingTimeInterval(defaultLifetime)
        }
        if context.now >= expiresAt {
            return .rejected(ChallengeExpiredError("the MPP challenge expired at \(challenge.expires ?? "")", rail: rail))
        }
        let request = challenge.requestJSON
        guard let amountValue = request["amount"] else {
            return .rejected(ChallengeError("'request' missing required field 'amount'", rail: rail))
        }
        guard let amount = amountValue.uint64Value else {
            return .rejected(ChallengeError("'request' field 'amount' is not a non-negative base-10 integer", rail: rail))
        }
        guard let currency = request["currency"]?.stringValue, !currency.isEmpty else {
            return .rejected(ChallengeError("'request' missing required field 'currency'", rail: rail))
        }
        return build(MPPCharge(challenge: challenge, amount: amount, currency: currency,
                               recipient: request["recipient"]?.stringValue, methodDetails: request["methodDetails"],
                               expiresAt: expiresAt))
    }

    static func resource(_ context: ChallengeContext) -> NormalizedChallenge.Resource {
        .init(method: context.request.method.rawValue, url: context.request.url.absoluteString)
    }

    static func baseRaw(_ charge: MPPCharge, kind: RailID) -> [String: String] {
        var raw = ["kind": kind.rawValue, "chargeId": charge.challenge.id, "method": charge.challenge.methodName,
                   "intent": charge.challenge.effectiveIntent, "realm": charge.challenge.realm]
        if let d = charge.challenge.description { raw["description"] = d }
        if let e = charge.challenge.expires { raw["expires"] = e }
        return raw
    }

    /// The `Authorization: Payment …` proof.
    static func proof(_ charge: MPPCharge, payload: JSONValue, source: String?, proofType: ProofType,
                      proofValue: String?, amount: UInt64, fee: UInt64? = nil, latencyMs: Int) -> PaymentProof {
        let credential = MPPCredential(challenge: charge.challenge.echo, payload: payload, source: source)
        return PaymentProof(headerName: "Authorization", headerValue: Redacted(credential.authorizationValue),
                            proofType: proofType, proofValue: proofValue, amountNative: amount, feeNative: fee,
                            settlementLatencyMs: latencyMs)
    }

    /// Reads `Payment-Receipt` (or an RFC 9457 problem) from the answer to the paid retry and checks it against the
    /// charge: same challenge id, a method of this rail, the charged amount.
    static func settlement(charge: MPPCharge, proof: PaymentProof, response: TransportResponse, rail: RailID,
                           methods: Set<String>, network: String?, facilitator: String) throws -> SettlementReceipt? {
        let status = response.status.code
        guard let header = response.headerFields[receiptHeader] else {
            if status >= 400, let problem = ProblemDetails(body: response.body) {
                throw MppChargeFailedError(
                    code: .problem,
                    message: "the server refused the paid \(rail) retry: \(problem.title ?? problem.code)"
                        + (problem.detail.map { " (\($0))" } ?? ""),
                    rail: rail, problem: problem, mayHaveMovedFunds: true)
            }
            return SettlementReceipt(success: (200..<300).contains(status), transactionHash: proof.proofValue,
                                     network: network, facilitator: facilitator)
        }
        let receipt: MPPReceipt
        do {
            receipt = try MPPReceipt(headerValue: header)
        } catch {
            throw MppReceiptVerificationError("\(rail): \(error.message)")
        }
        if let id = receipt.challengeID, id != charge.challenge.id {
            throw MppReceiptVerificationError(
                "\(rail): Payment-Receipt challengeId '\(id)' is not the paid challenge '\(charge.challenge.id)'")
        }
        guard methods.contains(receipt.method.lowercased()) else {
            throw MppReceiptVerificationError(
                "\(rail): Payment-Receipt method '\(receipt.method)' is not one of \(methods.sorted().joined(separator: ", "))")
        }
        var amountPaid: UInt64?
        if let amount = receipt.amount {
            guard let paid = UInt64(amount), paid == charge.amount else {
                throw MppReceiptVerificationError(
                    "\(rail): Payment-Receipt settlement amount '\(amount)' is not the charged \(charge.amount)")
            }
            amountPaid = paid
        }
        return SettlementReceipt(success: receipt.status == "success" && (200..<300).contains(status),
                                 transactionHash: receipt.reference ?? proof.proofValue, network: network,
                                 amountPaid: amountPaid, facilitator: facilitator)
    }

    static func ms(_ d: Duration) -> Int {
        Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }

    static func unixSeconds(_ date: Date) -> UInt64 { UInt64(max(0, date.timeIntervalSince1970.rounded(.down))) }
}
