import Foundation
import RouteweilerWire
import Synchronization

/// An in-memory EIP-3009 token ledger, as the USDC contract would keep it: balances, and the set of
/// `(from, nonce)` authorisations already used. ``FakePaywall`` settles x402 payments against it after checking
/// the EIP-712 signature.
public final class FakeUSDCLedger: Sendable {
    /// One settled transfer.
    public struct Transfer: Sendable, Hashable {
        public var from: EVMAddress
        public var to: EVMAddress
        public var value: UInt64
        /// `0x` + keccak-256 of the authorisation and signature: the fake transaction hash.
        public var transactionHash: String
    }

    /// Why a transfer was refused (the reasons an x402 facilitator reports).
    public enum Refusal: String, Error, Sendable {
        case invalidSignature = "invalid_exact_evm_payload_signature"
        case nonceUsed = "invalid_exact_evm_payload_authorization_nonce_used"
        case notYetValid = "invalid_exact_evm_payload_authorization_valid_after"
        case expired = "invalid_exact_evm_payload_authorization_valid_before"
        case insufficientFunds = "insufficient_funds"
        case wrongRecipient = "invalid_exact_evm_payload_recipient_mismatch"
        case wrongValue = "invalid_exact_evm_payload_authorization_value"
        case malformed = "invalid_payload"
    }

    private let state = Mutex<(balances: [EVMAddress: UInt64], nonces: Set<[UInt8]>, transfers: [Transfer])>(([:], [], []))

    public init() {}

    /// Credits `amount` base units to `address`.
    public func mint(_ amount: UInt64, to address: EVMAddress) {
        state.withLock { $0.balances[address, default: 0] += amount }
    }

    public func balance(of address: EVMAddress) -> UInt64 { state.withLock { $0.balances[address] ?? 0 } }
    public var transfers: [Transfer] { state.withLock { $0.transfers } }

    /// `transferWithAuthorization`: checks the signature under `domain`, the validity window, the nonce and the
    /// balance, then moves the funds. Atomic: a refused transfer changes nothing.
    public func transfer(_ authorization: TransferWithAuthorization, signature: [UInt8], domain: EIP712Domain,
                         now: UInt64) throws(Refusal) -> Transfer {
        guard signature.count == 65,
            let signer = try? EVMAddress.recover(digest32: authorization.digest(domain: domain), signature65: signature),
            signer == authorization.from
        else { throw .invalidSignature }
        guard let validAfter = Self.small(authorization.validAfter), let validBefore = Self.small(authorization.validBefore),
            let value = Self.small(authorization.value)
        else { throw .malformed }
        guard now > validAfter else { throw .notYetValid }
        guard now < validBefore else { throw .expired }
        let nonceKey = authorization.from.bytes + authorization.nonce
        let hash = "0x" + Keccak256.hash(authorization.encoded + signature).hexString
        return try state.withLock { s throws(Refusal) -> Transfer in
            guard !s.nonces.contains(nonceKey) else { throw .nonceUsed }
            let balance = s.balances[authorization.from] ?? 0
            guard balance >= value else { throw .insufficientFunds }
            s.balances[authorization.from] = balance - value
            s.balances[authorization.to, default: 0] += value
            s.nonces.insert(nonceKey)
            let transfer = Transfer(from: authorization.from, to: authorization.to, value: value, transactionHash: hash)
            s.transfers.append(transfer)
            return transfer
        }
    }

    /// A 32-byte big-endian word as a UInt64, if it fits.
    static func small(_ word: [UInt8]) -> UInt64? {
        guard word.count == 32, word[..<24].allSatisfy({ $0 == 0 }) else { return nil }
        return word[24...].reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// What an x402 paywall asks for.
public struct FakeX402Offering: Sendable {
    /// 2: requirements in `PAYMENT-REQUIRED`; 1: in the 402 body. Both: the same payment offered twice.
    public var versions: [Int] = [2]
    public var chainId: UInt64
    /// CAIP-2 network id (v2).
    public var network: String
    /// Legacy network name (v1).
    public var legacyNetwork: String
    public var asset: EVMAddress
    public var domainName: String
    public var domainVersion: String
    /// Token base units per call.
    public var amount: UInt64 = 1_000
    public var payTo: EVMAddress
    public var maxTimeoutSeconds: Int = 60
    /// Overrides `extra.name` in the requirement (to script a domain that contradicts the pinned table).
    public var advertisedDomainName: String?

    public var domain: EIP712Domain {
        EIP712Domain(name: domainName, version: domainVersion, chainId: chainId, verifyingContract: asset)
    }

    /// USDC on Base Sepolia (domain "USDC", version "2"), paid to `payTo`.
    public static func baseSepoliaUSDC(payTo: EVMAddress, amount: UInt64 = 1_000) -> FakeX402Offering {
        FakeX402Offering(chainId: 84532, network: "eip155:84532", legacyNetwork: "base-sepolia",
                         asset: try! EVMAddress(hex: "0x036CbD53842c5426634e7929541eC2318f3dCF7e"),
                         domainName: "USDC", domainVersion: "2", amount: amount, payTo: payTo)
    }

    /// USDC on Base (domain "USD Coin", version "2"), paid to `payTo`.
    public static func baseUSDC(payTo: EVMAddress, amount: UInt64 = 1_000) -> FakeX402Offering {
        FakeX402Offering(chainId: 8453, network: "eip155:8453", legacyNetwork: "base",
                         asset: try! EVMAddress(hex: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
                         domainName: "USD Coin", domainVersion: "2", amount: amount, payTo: payTo)
    }

    /// The requirement object for `version`, for the resource at `url`.
    func requirement(version: Int, url: String) -> [String: Any] {
        var r: [String: Any] = [
            "scheme": "exact", "network": version == 2 ? network : legacyNetwork, "asset": asset.checksummed,
            "payTo": payTo.checksummed, "maxTimeoutSeconds": maxTimeoutSeconds,
            "extra": ["name": advertisedDomainName ?? domainName, "version": domainVersion],
        ]
        if version == 2 {
            r["amount"] = String(amount)
        } else {
            r["maxAmountRequired"] = String(amount)
            r["resource"] = url
            r["description"] = "Routeweiler fake paywall"
            r["mimeType"] = "application/json"
        }
        return r
    }

    /// The `PAYMENT-REQUIRED` header value (base64 JSON).
    func headerValue(url: String, error: String? = nil) -> String {
        var doc: [String: Any] = [
            "x402Version": 2, "accepts": [requirement(version: 2, url: url)],
            "resource": ["url": url, "description": "Routeweiler fake paywall", "mimeType": "application/json"],
        ]
        if let error { doc["error"] = error }
        return Base64.encode(Self.json(doc))
    }

    /// The v1 402 body.
    func body(url: String, error: String? = nil) -> [UInt8] {
        Self.json(["x402Version": 1, "error": error ?? "X-PAYMENT header is required",
                   "accepts": [requirement(version: 1, url: url)]])
    }

    static func json(_ object: Any) -> [UInt8] {
        Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data())
    }

    /// Verifies a payment header (`PAYMENT-SIGNATURE` for v2, `X-PAYMENT` for v1) against this offering and
    /// settles it on `ledger`; returns the base64 receipt for `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`.
    func settle(header: String, version: Int, url: String, ledger: FakeUSDCLedger) throws(FakeUSDCLedger.Refusal)
        -> String
    {
        guard let bytes = Base64.decode(header.trimmingCharacters(in: .whitespaces)),
            let doc = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            (doc["x402Version"] as? Int) == version,
            let payload = doc["payload"] as? [String: Any],
            let auth = payload["authorization"] as? [String: Any],
            let signatureHex = payload["signature"] as? String, let signature = Hex.decode(signatureHex),
            let fromText = auth["from"] as? String, let from = try? EVMAddress(hex: fromText),
            let toText = auth["to"] as? String, let to = try? EVMAddress(hex: toText),
            let value = auth["value"] as? String, let validAfter = auth["validAfter"] as? String,
            let validBefore = auth["validBefore"] as? String,
            let nonceHex = auth["nonce"] as? String, let nonce = Hex.decode(nonceHex), nonce.count == 32
        else { throw .malformed }
        if version == 2 {
            // The echoed requirement must be the one offered.
            guard let accepted = doc["accepted"] as? [String: Any],
                Self.json(accepted) == Self.json(requirement(version: 2, url: url))
            else { throw .malformed }
        } else {
            guard (doc["scheme"] as? String) == "exact", (doc["network"] as? String) == legacyNetwork else {
                throw .malformed
            }
        }
        guard to == payTo else { throw .wrongRecipient }
        guard value == String(amount) else { throw .wrongValue }
        guard let authorization = try? TransferWithAuthorization(
            from: from, to: to, value: value, validAfter: validAfter, validBefore: validBefore, nonce: nonce)
        else { throw .malformed }
        let transfer = try ledger.transfer(authorization, signature: signature, domain: domain,
                                           now: UInt64(Date().timeIntervalSince1970))
        return Base64.encode(Self.json([
            "success": true, "transaction": transfer.transactionHash,
            "network": version == 2 ? network : legacyNetwork, "payer": from.checksummed,
        ]))
    }
}
