import Crypto
import Foundation
import Synchronization
import HTTPTypes
public import Routeweiler
public import RouteweilerWire

extension InvalidChallengeError.Code {
    /// The requirement names a network the rail does not know.
    public static let unknownNetwork = Self("unknown_network")
    /// The requirement names an asset the rail has no pinned domain for.
    public static let unknownAsset = Self("unknown_asset")
    /// The requirement's scheme is not `exact`.
    public static let unsupportedScheme = Self("unsupported_scheme")
    /// `extra.name`/`extra.version` contradict the pinned EIP-712 domain of the asset.
    public static let domainMismatch = Self("domain_mismatch")
    /// The requirement's `resource` is not the URL that was requested.
    public static let resourceMismatch = Self("resource_mismatch")
    /// The amount does not fit in 64 bits.
    public static let amountOutOfRange = Self("amount_out_of_range")
}

/// One x402 `exact` requirement as parsed by ``X402Rail``: what is signed and what is echoed back.
public struct X402Offer: Sendable {
    /// 2 (`PAYMENT-REQUIRED` header) or 1 (402 JSON body).
    public var version: Int
    /// The requirement exactly as received (echoed as `accepted` in v2).
    public var requirement: X402JSON
    /// The requirement's `network`, as spelled by the server.
    public var network: String
    /// The token, with the pinned EIP-712 domain that is signed.
    public var asset: X402Asset
    /// The requirement's `payTo`, as spelled by the server.
    public var payTo: String
    public var payToAddress: EVMAddress
    /// Token base units.
    public var amount: UInt64
    /// How long the authorisation stays valid (`validBefore = now + maxTimeoutSeconds`).
    public var maxTimeoutSeconds: UInt64
    /// v2: the challenge's top-level `resource`, echoed in the payment payload.
    public var resource: X402JSON?
    /// v2: the challenge's top-level `extensions`, echoed in the payment payload.
    public var extensions: X402JSON?
}

/// The x402 rail: pays `exact` requirements on EVM chains with an EIP-3009 `TransferWithAuthorization` signed
/// under the token's pinned EIP-712 domain, and retries with `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1).
///
/// v2 challenges come base64-encoded in the `PAYMENT-REQUIRED` header; v1 challenges in the 402 JSON body.
/// When both offer the same network, asset, payee and amount, only the v2 offer is kept. Nothing is signed for a
/// requirement whose resource is not the requested URL, whose asset is not in the table, or whose
/// `extra.name`/`extra.version` contradict the pinned domain.
public struct X402Rail: Rail {
    /// The assets the rail signs for.
    public let assets: [X402Asset]

    /// A rail for `assets` (by default the pinned table: USDC on Base and Base Sepolia).
    public init(assets: [X402Asset] = X402Asset.pinned) { self.assets = assets }

    public var id: RailID { .x402 }

    /// One rail that knows the assets of both.
    public func merged(with other: any Rail) -> any Rail {
        guard let other = other as? X402Rail else { return self }
        var assets = self.assets
        for a in other.assets where !assets.contains(where: { $0.chainId == a.chainId && $0.address == a.address }) {
            assets.append(a)
        }
        return X402Rail(assets: assets)
    }

    static let paymentRequired = HTTPField.Name("PAYMENT-REQUIRED")!

    public func offers(in context: ChallengeContext) -> [OfferResult] {
        guard context.response.status.code == 402 else { return [] }
        var results: [OfferResult] = []
        var v2Keys = Set<String>()
        if let header = context.response.headerFields[Self.paymentRequired] {
            for result in parseV2(header, context: context) {
                if case .offer(let offer) = result, let d = offer.details as? X402Offer { v2Keys.insert(Self.key(d)) }
                results.append(result)
            }
        }
        for result in parseV1(context.response.body, context: context) {
            if case .offer(let offer) = result, let d = offer.details as? X402Offer, v2Keys.contains(Self.key(d)) {
                continue  // the same payment offered as v2: keep that one
            }
            results.append(result)
        }
        return results
    }

    static func key(_ d: X402Offer) -> String {
        "\(d.asset.chainId)|\(d.asset.address.lowercased)|\(d.payToAddress.lowercased)|\(d.amount)"
    }

    func parseV2(_ header: String, context: ChallengeContext) -> [OfferResult] {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard let bytes = Base64.decode(text) else {
            return [.rejected(ChallengeError("Cannot decode PAYMENT-REQUIRED: not base64", rail: .x402))]
        }
        let document: X402JSON
        do {
            document = try X402JSON.parse(bytes)
        } catch {
            return [.rejected(ChallengeError("Cannot decode PAYMENT-REQUIRED: not JSON (\(error))", rail: .x402,
                                             cause: error as? X402JSONError))]
        }
        guard case .object = document else {
            return [.rejected(ChallengeError("Cannot decode PAYMENT-REQUIRED: not a JSON object", rail: .x402))]
        }
        guard case .number(let v) = document["x402Version"], v == "2" else {
            return [.rejected(ChallengeError("PAYMENT-REQUIRED: x402Version must be 2 (v2 only in this header)",
                                             rail: .x402))]
        }
        return parseAccepts(document, version: 2, context: context)
    }

    func parseV1(_ body: [UInt8], context: ChallengeContext) -> [OfferResult] {
        guard body.contains(UInt8(ascii: "{")), let document = try? X402JSON.parse(body),
            case .number(let v) = document["x402Version"], v == "1"
        else { return [] }  // not an x402 v1 body
        return parseAccepts(document, version: 1, context: context)
    }

    func parseAccepts(_ document: X402JSON, version: Int, context: ChallengeContext) -> [OfferResult] {
        guard let accepts = document["accepts"] else {
            return [.rejected(ChallengeError("x402 v\(version) challenge has no 'accepts'", rail: .x402))]
        }
        guard case .array(let entries) = accepts else {
            return [.rejected(ChallengeError("x402 v\(version) 'accepts' is not an array", rail: .x402))]
        }
        guard !entries.isEmpty else {
            return [.rejected(ChallengeError("x402 v\(version) 'accepts' is empty", rail: .x402))]
        }
        let resource = version == 2 ? document["resource"] : nil
        let extensions = version == 2 ? document["extensions"] : nil
        return entries.map { entry in
            do {
                return .offer(try offer(entry, version: version, resource: resource, extensions: extensions,
                                        context: context))
            } catch let error as any RouteweilerError {
                return .rejected(error)
            } catch {
                return .rejected(ChallengeError("\(error)", rail: .x402))
            }
        }
    }

    func offer(_ entry: X402JSON, version: Int, resource: X402JSON?, extensions: X402JSON?,
               context: ChallengeContext) throws -> PaymentOffer {
        guard case .object = entry else { throw ChallengeError("x402 requirement is not an object", rail: .x402) }
        func field(_ name: String) throws -> String {
            guard let s = entry[name]?.stringValue, !s.isEmpty else {
                throw ChallengeError("x402 requirement has no string '\(name)'", rail: .x402)
            }
            return s
        }
        let scheme = try field("scheme")
        guard scheme == "exact" else {
            throw InvalidChallengeError(code: .unsupportedScheme,
                                        message: "x402 scheme '\(scheme)' is not supported (only 'exact')", rail: .x402)
        }
        let network = try field("network")
        guard let chainId = X402Networks.chainId(of: network) else {
            throw InvalidChallengeError(code: .unknownNetwork, message: "unknown x402 network '\(network)'",
                                        rail: .x402)
        }
        let assetText = try field("asset")
        let asset: X402Asset
        if let address = try? EVMAddress(hex: assetText),
            let known = assets.first(where: { $0.chainId == chainId && $0.address == address })
        {
            asset = known
        } else if !assetText.hasPrefix("0x"),
            let known = assets.first(where: { $0.chainId == chainId && $0.symbol.lowercased() == assetText.lowercased() })
        {
            asset = known
        } else {
            throw InvalidChallengeError(code: .unknownAsset,
                                        message: "unknown x402 asset '\(assetText)' on \(network)", rail: .x402)
        }
        let payTo = try field("payTo")
        let payToAddress: EVMAddress
        do {
            payToAddress = try EVMAddress(hex: payTo)
        } catch {
            throw ChallengeError("x402 payTo '\(payTo)' is not an EVM address: \(error)", rail: .x402, cause: error)
        }
        let amountKey = version == 2 ? "amount" : "maxAmountRequired"
        let amountText: String
        switch entry[amountKey] {
        case .string(let s): amountText = s
        case .number(let n): amountText = n
        default: throw ChallengeError("x402 requirement has no '\(amountKey)'", rail: .x402)
        }
        guard !amountText.isEmpty, amountText.utf8.allSatisfy({ (48...57).contains($0) }) else {
            throw ChallengeError("x402 \(amountKey) '\(amountText)' is not a decimal integer", rail: .x402)
        }
        guard let amount = UInt64(amountText) else {
            throw InvalidChallengeError(code: .amountOutOfRange,
                                        message: "x402 \(amountKey) \(amountText) does not fit in 64 bits", rail: .x402)
        }
        var timeout: UInt64 = version == 2 ? 60 : 600
        if let t = entry["maxTimeoutSeconds"], t != .null {
            guard let seconds = t.integerValue, seconds >= 0, seconds <= 31_536_000 else {
                throw ChallengeError("x402 maxTimeoutSeconds is not a number of seconds up to a year", rail: .x402)
            }
            if seconds > 0 { timeout = UInt64(seconds) }
        }
        let extra = entry["extra"]
        // The server may bound the offer itself (`extra.validBefore`, unix seconds).
        var expiresAt = context.now.addingTimeInterval(TimeInterval(timeout))
        if let bound = extra?["validBefore"], bound != .null {
            let seconds: Int?
            switch bound {
            case .number(let n): seconds = Int(n)
            case .string(let s): seconds = Int(s)
            default: seconds = nil
            }
            guard let seconds, seconds >= 0 else {
                throw ChallengeError("x402 extra.validBefore is not unix seconds", rail: .x402)
            }
            if seconds > 0 {
                let bound = Date(timeIntervalSince1970: TimeInterval(seconds))
                guard bound > context.now else {
                    throw ChallengeExpiredError("the x402 requirement expired at \(Timestamp.rfc3339Z(bound))", rail: .x402)
                }
                expiresAt = min(expiresAt, bound)
            }
        }
        if let name = extra?["name"]?.stringValue, name != asset.domainName {
            throw InvalidChallengeError(
                code: .domainMismatch,
                message: "x402 extra.name '\(name)' contradicts the pinned EIP-712 domain name '\(asset.domainName)' of \(asset.currency)",
                rail: .x402)
        }
        if let v = extra?["version"]?.stringValue, v != asset.domainVersion {
            throw InvalidChallengeError(
                code: .domainMismatch,
                message: "x402 extra.version '\(v)' contradicts the pinned EIP-712 domain version '\(asset.domainVersion)' of \(asset.currency)",
                rail: .x402)
        }
        var resourceURLs: [String] = []
        if let r = entry["resource"]?.stringValue { resourceURLs.append(r) }
        if let r = resource?.stringValue ?? resource?["url"]?.stringValue { resourceURLs.append(r) }
        for url in resourceURLs where !Self.resource(url, matches: context.request.url) {
            throw InvalidChallengeError(
                code: .resourceMismatch,
                message: "x402 resource \(url) is not the requested URL \(context.request.url.absoluteString)",
                rail: .x402)
        }
        var metadata: [String: String] = [:]
        if let d = entry["description"]?.stringValue, !d.isEmpty { metadata["description"] = d }
        let challenge = NormalizedChallenge(
            rail: .x402,
            resource: .init(method: context.request.method.rawValue, url: context.request.url.absoluteString),
            price: .init(amount: amount, currency: asset.currency, humanAmount: asset.humanAmount(amount)),
            payee: .init(identifier: payTo, metadata: metadata),
            nonce: extra?["nonce"]?.stringValue ?? "",
            expiresAt: expiresAt,
            raw: ["kind": "x402", "x402Version": String(version), "network": asset.caip2,
                  "asset": asset.address.lowercased, "payTo": payTo, "maxTimeoutSeconds": String(timeout)])
        let details = X402Offer(version: version, requirement: entry, network: network, asset: asset, payTo: payTo,
                                payToAddress: payToAddress, amount: amount, maxTimeoutSeconds: timeout,
                                resource: resource, extensions: extensions)
        return PaymentOffer(rail: .x402, challenge: challenge, details: details)
    }

    /// Whether a requirement's resource names the requested URL: same origin and path (a relative resource
    /// compares the path only); a query in the resource must match too.
    static func resource(_ text: String, matches request: URL) -> Bool {
        guard let r = URL(string: text) else { return false }
        func path(_ u: URL) -> String {
            let p = u.path
            return p.isEmpty ? "/" : p
        }
        if r.scheme != nil {
            guard r.routeweilerOrigin == request.routeweilerOrigin else { return false }
        } else if r.host != nil {
            return false
        }
        guard path(r) == path(request) else { return false }
        if let q = r.query, q != request.query { return false }
        return true
    }

    public func check(_ offer: PaymentOffer, with funding: any FundingSource, now: Date) throws {
        guard let source = funding as? EVMFundingSource else {
            throw NoFundingForRailError(code: .noSource, message: "not an EVM funding source", rail: .x402)
        }
        guard let details = offer.details as? X402Offer else { throw ChallengeError("not an x402 offer", rail: .x402) }
        guard source.chainId == details.asset.chainId, source.asset == details.asset.address else {
            throw NoFundingForRailError(
                code: .networkMismatch,
                message: "the requirement asks \(details.asset.currency) but the EVM funding source pays \(source.token.currency)",
                rail: .x402)
        }
        guard source.token.domain == details.asset.domain else {
            throw NoFundingForRailError(
                code: .networkMismatch,
                message: "the funding source's EIP-712 domain for \(source.token.currency) differs from the rail's pinned one",
                rail: .x402)
        }
        if now >= offer.challenge.expiresAt {
            throw ChallengeExpiredError("the x402 requirement expired at \(offer.challenge.expiresAt)", rail: .x402)
        }
        if let limit = source.maxAmount, details.amount > limit {
            throw InvalidChallengeError(
                code: .amountTooHigh,
                message: "the requirement asks \(details.asset.humanAmount(details.amount)), above the limit of \(details.asset.humanAmount(limit))",
                rail: .x402)
        }
    }

    public func pay(_ offer: PaymentOffer, with funding: any FundingSource, context: PaymentContext) async throws
        -> PaymentProof
    {
        try check(offer, with: funding, now: context.now)
        let source = funding as! EVMFundingSource
        let details = offer.details as! X402Offer
        let clock = ContinuousClock()
        let started = clock.now
        let from = source.wallet.address
        let now = UInt64(max(0, context.now.timeIntervalSince1970.rounded(.down)))
        let validAfter = now >= 600 ? now - 600 : 0
        let validBefore = now + details.maxTimeoutSeconds
        let nonce = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let authorization: TransferWithAuthorization
        do {
            authorization = try TransferWithAuthorization(
                from: from, to: details.payToAddress, value: UInt256BE.from(details.amount),
                validAfter: UInt256BE.from(validAfter), validBefore: UInt256BE.from(validBefore), nonce: nonce)
        } catch {
            throw SigningError("x402 authorisation could not be built: \(error)", cause: error)
        }
        let digest = EIP712.digest(domainSeparator: Self.separator(of: details.asset.domain),
                                   structHash: authorization.structHash)
        let signature: [UInt8]
        do {
            signature = try await source.wallet.signDigest(digest)
        } catch {
            throw SigningError("x402 signing failed: \(error)", cause: error)
        }
        guard signature.count == 65, signature[64] == 27 || signature[64] == 28 else {
            throw SigningError("x402 signing failed: the wallet returned \(signature.count) bytes, not r‖s‖v with v 27/28")
        }
        guard source.wallet.signaturesRecoverToAddress
            || (try? EVMAddress.recover(digest32: digest, signature65: signature)) == from
        else {
            throw SigningError("x402 signing failed: the signature does not recover to the wallet address \(from)")
        }
        let payload = X402JSON.ordered([
            .init("authorization", .ordered([
                .init("from", .string(from.checksummed)),
                .init("to", .string(details.payTo)),
                .init("value", .string(String(details.amount))),
                .init("validAfter", .string(String(validAfter))),
                .init("validBefore", .string(String(validBefore))),
                .init("nonce", .string("0x" + nonce.hexString)),
            ])),
            .init("signature", .string("0x" + signature.hexString)),
        ])
        let document: X402JSON
        let headerName: String
        if details.version == 2 {
            headerName = "PAYMENT-SIGNATURE"
            document = .ordered([
                .init("x402Version", .number("2")),
                .init("payload", payload),
                .init("accepted", details.requirement),
                .init("resource", details.resource ?? .null),
                .init("extensions", details.extensions ?? .null),
            ])
        } else {
            headerName = "X-PAYMENT"
            document = .ordered([
                .init("x402Version", .number("1")),
                .init("scheme", .string("exact")),
                .init("network", .string(details.network)),
                .init("payload", payload),
            ])
        }
        let elapsed = clock.now - started
        return PaymentProof(
            headerName: headerName, headerValue: Redacted(Base64.encode(Array(document.compactText.utf8))),
            proofType: .txid, proofValue: nil, amountNative: details.amount,
            settlementLatencyMs: Int(elapsed.components.seconds * 1000
                                     + elapsed.components.attoseconds / 1_000_000_000_000_000))
    }
}

extension X402Rail {
    /// Domain separators by domain: three Keccak-256 hashes each, the same for every payment in a token.
    private static let separators = Mutex<[EIP712Domain: [UInt8]]>([:])

    static func separator(of domain: EIP712Domain) -> [UInt8] {
        if let known = separators.withLock({ $0[domain] }) { return known }
        let separator = domain.separator
        separators.withLock { $0[domain] = separator }
        return separator
    }

    static let paymentResponse = HTTPField.Name("PAYMENT-RESPONSE")!
    static let xPaymentResponse = HTTPField.Name("X-PAYMENT-RESPONSE")!

    /// Reads the settlement receipt: `PAYMENT-RESPONSE` (v2) or `X-PAYMENT-RESPONSE` (v1), base64 JSON with
    /// `success`, `transaction` (or `txHash`), `network` (or `networkId`), `payer` (or `payerAddress`) and
    /// optionally `amountPaid` and `facilitator`. An absent or undecodable receipt gives `nil`: the paid answer
    /// itself is the evidence, and what the server said is not invented.
    public func settlement(for offer: PaymentOffer, proof: PaymentProof, response: TransportResponse) throws
        -> SettlementReceipt?
    {
        let header = response.headerFields[Self.paymentResponse] ?? response.headerFields[Self.xPaymentResponse]
        guard let header, let bytes = Base64.decode(header.trimmingCharacters(in: .whitespaces)),
            let document = try? X402JSON.parse(bytes), case .object = document
        else { return nil }
        func text(_ keys: String...) -> String? {
            for key in keys { if let s = document[key]?.stringValue, !s.isEmpty { return s } }
            return nil
        }
        var success = false
        if case .bool(let b) = document["success"] { success = b }
        var amount: UInt64?
        switch document["amountPaid"] {
        case .string(let s): amount = UInt64(s)
        case .number(let n): amount = UInt64(n)
        default: amount = nil
        }
        return SettlementReceipt(
            success: success && response.status.code < 300, transactionHash: text("transaction", "txHash"),
            network: text("network", "networkId"), payer: text("payer", "payerAddress"), amountPaid: amount,
            facilitator: text("facilitator"))
    }
}
