import Crypto
import Foundation
import HTTPTypes
public import Routeweiler
public import RouteweilerWire

/// An L402 offer as parsed from `WWW-Authenticate`: the token, its decoded invoice and macaroon.
public struct L402Offer: Sendable {
    public var challenge: L402Challenge
    /// The decoded invoice. Its signature is checked by the offer's ``PaymentOffer/deferredCheck`` (which
    /// ``L402Rail/pay(_:with:context:)`` runs before paying); until then its `payeePublicKey` is empty.
    public var invoice: Bolt11Invoice
    /// The decoded macaroon, when the token is one.
    public var macaroon: Macaroon?
}

/// The L402 rail (and legacy LSAT): pays the BOLT-11 invoice of the challenge and retries with
/// `Authorization: L402 <macaroon>:<preimage hex>`, mirroring the challenge's scheme.
///
/// Checks before any money moves: the invoice's signature and checksum, its network against the funding source,
/// its expiry, that it carries an amount, that its payment hash is the one in the macaroon identifier, and the
/// macaroon's `valid_until` caveats. After paying, the preimage must hash to the payment hash.
public struct L402Rail: Rail {
    public init() {}
    public var id: RailID { .l402 }

    public func offers(in context: ChallengeContext) -> [OfferResult] {
        guard context.response.status.code == 402 else { return [] }
        let fields = context.response.headerFields[values: .wwwAuthenticate]
        guard !fields.isEmpty else { return [] }
        let challenges: [AuthChallenge]
        do {
            challenges = try AuthChallenge.parse(fields)
        } catch {
            let mentionsL402 = fields.contains { f in
                let l = f.lowercased()
                return l.hasPrefix("l402") || l.hasPrefix("lsat") || l.contains(", l402 ") || l.contains(", lsat ")
            }
            return mentionsL402
                ? [.rejected(ChallengeError("malformed WWW-Authenticate: \(error)", rail: .l402, cause: error))] : []
        }
        var results: [OfferResult] = []
        var seen: [String: Int] = [:]  // macaroon+invoice -> index in results
        for challenge in challenges {
            let scheme = challenge.scheme.lowercased()
            guard scheme == "l402" || scheme == "lsat" else { continue }
            let parsed: L402Challenge
            do {
                parsed = try L402Challenge(challenge)
            } catch {
                results.append(.rejected(ChallengeError("cannot parse \(challenge.scheme) challenge: \(error)",
                                                       rail: .l402, cause: error)))
                continue
            }
            let key = parsed.macaroon + " " + parsed.invoice
            if let existing = seen[key] {
                // The same token offered as LSAT and L402: one payment; answer with L402.
                if scheme == "l402" { results[existing] = offer(parsed, context: context) }
                continue
            }
            seen[key] = results.count
            results.append(offer(parsed, context: context))
        }
        return results
    }

    func offer(_ parsed: L402Challenge, context: ChallengeContext) -> OfferResult {
        let unverified: UnverifiedBolt11Invoice
        do {
            unverified = try UnverifiedBolt11Invoice(parsing: parsed.invoice)
        } catch {
            return .rejected(ChallengeError("Invalid BOLT-11 invoice: \(error)", rail: .l402, cause: error))
        }
        let invoice = unverified.fields
        let now = UInt64(max(0, context.now.timeIntervalSince1970))
        guard let amountMsat = invoice.amountMsat, amountMsat > 0 else {
            return .rejected(InvalidChallengeError(code: .amountlessInvoice,
                                                  message: "the invoice carries no amount; amountless invoices are refused",
                                                  rail: .l402))
        }
        if invoice.isExpired(now: now) {
            return .rejected(ChallengeExpiredError("the invoice expired at \(invoice.expiresAt) (unix)", rail: .l402))
        }
        // The signature (and the payee's key recovered from it) is the offer's deferred check, which must pass
        // before anything is reserved or paid. It starts now, on another thread, while this offer is normalised and
        // routed.
        let check = DeferredOfferCheck {
            do {
                return try unverified.verified().payeePublicKey.hexString
            } catch {
                throw ChallengeError("Invalid BOLT-11 invoice: \(error)", rail: .l402, cause: error)
            }
        }
        check.start()
        let macaroon = try? Macaroon(base64: parsed.macaroon)
        if let macaroon {
            if let boundHash = Self.paymentHash(of: macaroon), boundHash != invoice.paymentHash {
                return .rejected(InvalidChallengeError(
                    code: .paymentHashMismatch,
                    message: "the invoice's payment hash \(invoice.paymentHash.hexString) is not the one in the macaroon (\(boundHash.hexString))",
                    rail: .l402))
            }
            if let caveat = macaroon.expiredCaveat(now: now) {
                return .rejected(ChallengeExpiredError("the macaroon caveat \(caveat) has passed", rail: .l402))
            }
        }
        var expiresAt = invoice.expiresAt
        if let until = macaroon?.expiry(service: nil) { expiresAt = min(expiresAt, until) }
        let sats = amountMsat / 1000
        var metadata: [String: String] = [:]
        if let d = invoice.description { metadata["description"] = d }
        let fingerprint = Array(SHA256.hash(data: Array(parsed.macaroon.utf8))).prefix(8).hexString
        let challenge = NormalizedChallenge(
            rail: .l402,
            resource: .init(method: context.request.method.rawValue, url: context.request.url.absoluteString),
            price: .init(amount: sats, currency: "btc-lightning", humanAmount: Self.humanSats(sats, msat: amountMsat)),
            payee: .init(identifier: "", metadata: metadata),  // the payee's key comes from the signature check
            nonce: invoice.paymentHash.hexString,
            expiresAt: Date(timeIntervalSince1970: TimeInterval(expiresAt)),
            raw: ["kind": "l402", "scheme": parsed.scheme.rawValue, "invoice": parsed.invoice,
                  "macaroonFingerprint": "sha256:" + fingerprint, "network": invoice.network.rawValue])
        return .offer(PaymentOffer(rail: .l402, challenge: challenge,
                                     details: L402Offer(challenge: parsed, invoice: invoice, macaroon: macaroon),
                                     deferredCheck: check))
    }

    /// The payment hash a macaroon is bound to: the L402 identifier's, or a bare 64-hex identifier's.
    static func paymentHash(of macaroon: Macaroon) -> [UInt8]? {
        if let id = macaroon.l402Identifier { return id.paymentHash }
        if macaroon.identifier.count == 64, let text = String(bytes: macaroon.identifier, encoding: .utf8),
            let bytes = Hex.decode(text)
        {
            return bytes
        }
        return nil
    }

    public func check(_ offer: PaymentOffer, with funding: any FundingSource, now: Date) throws {
        guard let source = funding as? LightningFundingSource else {
            throw NoFundingForRailError(code: .noSource, message: "not a Lightning funding source", rail: .l402)
        }
        guard let details = offer.details as? L402Offer else {
            throw ChallengeError("not an L402 offer", rail: .l402)
        }
        let invoice = details.invoice
        guard invoice.network == source.network else {
            throw NoFundingForRailError(
                code: .networkMismatch,
                message: "the invoice is for \(invoice.network) but the Lightning funding source is on \(source.network)",
                rail: .l402)
        }
        if invoice.isExpired(now: UInt64(max(0, now.timeIntervalSince1970))) {
            throw ChallengeExpiredError("the invoice expired at \(invoice.expiresAt) (unix)", rail: .l402)
        }
        if let limit = source.maxAmountMsat, let amount = invoice.amountMsat, amount > limit {
            throw InvalidChallengeError(
                code: .amountTooHigh,
                message: "the invoice asks \(Self.humanSats(amount / 1000, msat: amount)), above the limit of \(Self.humanSats(limit / 1000, msat: limit))",
                rail: .l402)
        }
    }

    public func pay(_ offer: PaymentOffer, with funding: any FundingSource, context: PaymentContext) async throws
        -> PaymentProof
    {
        try offer.deferredCheck?.run()  // the invoice's signature; already run (and kept) on the client's path
        try check(offer, with: funding, now: context.now)
        let source = funding as! LightningFundingSource
        let details = offer.details as! L402Offer
        let clock = ContinuousClock()
        let started = clock.now
        let payment = try await source.node.pay(invoice: details.invoice, maxFeeMsat: source.maxFeeMsat,
                                                timeout: source.paymentTimeout)
        let elapsed = clock.now - started
        guard Array(SHA256.hash(data: payment.preimage)) == details.invoice.paymentHash else {
            throw PreimageMismatchError(paymentHash: details.invoice.paymentHash.hexString)
        }
        let preimageHex = payment.preimage.hexString
        return PaymentProof(
            headerName: "Authorization",
            headerValue: Redacted(details.challenge.authorization(preimageHex: preimageHex)),
            proofType: .preimage, proofValue: preimageHex, amountNative: offer.challenge.price.amount,
            feeNative: payment.feeMsat,
            settlementLatencyMs: Int(elapsed.components.seconds * 1000
                                     + elapsed.components.attoseconds / 1_000_000_000_000_000))
    }

    /// `5,000 sats`, or `2.5 sats` when the invoice has a millisatoshi part.
    static func humanSats(_ sats: UInt64, msat: UInt64) -> String {
        let digits = Array(String(sats).utf8)
        var out: [UInt8] = []
        out.reserveCapacity(digits.count + digits.count / 3 + 10)
        for (i, d) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(UInt8(ascii: ",")) }
            out.append(d)
        }
        var rest = msat % 1000
        if rest != 0 {
            out.append(UInt8(ascii: "."))
            var divisor: UInt64 = 100
            while rest != 0 {  // three digits at most, trailing zeros dropped
                out.append(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        out.append(contentsOf: " sats".utf8)
        return String(decoding: out, as: UTF8.self)
    }
}

extension L402Rail {
    /// The payment hash and invoice (for crash recovery) and the reusable token's scope: the macaroon's
    /// `services` caveat (the whole origin), else the request path.
    public func plan(for offer: PaymentOffer, request: RouteweilerRequest) -> PaymentPlan {
        guard let details = offer.details as? L402Offer else { return PaymentPlan() }
        let scope: String
        if let services = details.macaroon?.firstPartyCaveat("services") {
            scope = "services:" + services
        } else {
            scope = "path:" + (request.url.path.isEmpty ? "/" : request.url.path)
        }
        let expiry = details.macaroon?.expiry(service: nil).map { Date(timeIntervalSince1970: TimeInterval($0)) }
        return PaymentPlan(
            paymentHash: details.invoice.paymentHash.hexString, invoice: details.invoice.paymentRequest,
            credentialPrefix: Redacted("\(details.challenge.scheme.rawValue) \(details.challenge.macaroon)"),
            credentialHeaderName: "Authorization", credentialScope: scope, credentialExpiresAt: expiry)
    }

    /// Asks the node (LND `TrackPaymentV2`) what became of a payment left pending by a crash.
    public func resolvePending(_ intent: PaymentIntent, with funding: any FundingSource) async throws
        -> PendingResolution
    {
        guard let source = funding as? LightningFundingSource, let hex = intent.paymentHash,
            let hash = Hex.decode(hex), hash.count == 32
        else { return .unknown }
        switch try await source.node.paymentStatus(paymentHash: hash) {
        case .succeeded(let payment):
            guard Array(SHA256.hash(data: payment.preimage)) == hash else { return .unknown }
            return .succeeded(proof: payment.preimage.hexString)
        case .failed(let reason):
            return .failed(reason: reason)
        case .notFound:
            return .failed(reason: "not_found")
        case .inFlight:
            return .unknown
        }
    }
}
