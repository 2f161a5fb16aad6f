import ArgumentParser
import Foundation
import Routeweiler
import RouteweilerWire
import RouteweilerX402

/// Flags for paying x402 from a local EVM key.
struct EVMOptions: ParsableArguments {
    @Option(name: .customLong("evm-key-file"),
            help: "File holding a hex secp256k1 private key, mode 0600 (or set ROUTEWEILER_EVM_KEY).")
    var keyFile: String?

    @Option(name: .customLong("evm-network"), help: "Where the key pays x402: base or base-sepolia (default base).")
    var network: String = "base"

    @Option(name: .customLong("max-usdc-units"), help: "Refuse x402 requirements above this many USDC base units.")
    var maxUnits: UInt64?

    static let environmentKey = "ROUTEWEILER_EVM_KEY"

    func validate() throws {
        guard ["base", "base-sepolia"].contains(network) else {
            throw ValidationError("unknown --evm-network '\(network)'; use base or base-sepolia")
        }
    }

    var isConfigured: Bool {
        keyFile != nil || !(ProcessInfo.processInfo.environment[Self.environmentKey] ?? "").isEmpty
    }

    /// The x402 funding source, or `nil` without a key. The key is never printed: errors name the file or variable.
    func fundingSource() throws -> EVMFundingSource? {
        let signer: EVMSigner
        do {
            if let keyFile {
                signer = try EVMSigner.fromFile(path: keyFile)
            } else if isConfigured {
                signer = try EVMSigner.fromEnvironment(Self.environmentKey)
            } else {
                return nil
            }
        } catch {
            throw ValidationError("cannot load the EVM key: \(error)")
        }
        return network == "base-sepolia"
            ? Funding.baseSepoliaUSDC(wallet: signer, maxAmount: maxUnits)
            : Funding.baseUSDC(wallet: signer, maxAmount: maxUnits)
    }
}
