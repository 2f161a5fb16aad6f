import Foundation
public import Routeweiler
public import RouteweilerWire

extension NoFundingForRailError.Code {
    /// The funding source pays in another token than the one the challenge asks for.
    public static let assetMismatch = Self("asset_mismatch")
}

/// An MPP Tempo charge as parsed by ``MPPTempoRail``.
public struct MPPTempoOffer: Sendable {
    public var charge: MPPCharge
    public var chainID: UInt64
    /// The TIP-20 token (`request.currency`).
    public var token: EVMAddress
    public var recipient: EVMAddress
    /// `tempo`, `tempo-moderato` or `tempo-chain-<id>`.
    public var network: String
    /// `methodDetails.feePayer`: the server offers to sponsor fees. Routeweiler pays its own fees regardless.
    public var feePayer: Bool
}

/// MPP `method="tempo"` (pull mode): signs a type-0x76 transaction transferring `request.amount` of the TIP-20
/// token `request.currency` to `request.recipient` and retries with
/// `Authorization: Payment <credential>` whose payload is `{"type":"transaction","signature":"0x76…"}`; the
/// server broadcasts it.
///
/// Checks before signing: intent `charge`, not expired, `methodDetails.chainId` equal to the source's chain, the
/// token equal to the source's, pull mode supported, the amount under the source's limit.
public struct MPPTempoRail: Rail {
    public init() {}
    public var id: RailID { .mppTempo }
    static let methods: Set<String> = ["tempo"]

    public func offers(in context: ChallengeContext) -> [OfferResult] {
        MPP.offers(in: context, methods: Self.methods, rail: .mppTempo) { charge in
            offer(charge, context: context)
        }
    }

    func offer(_ charge: MPPCharge, context: ChallengeContext) -> OfferResult {
        func reject(_ message: String) -> OfferResult { .rejected(ChallengeError(message, rail: .mppTempo)) }
        guard let token = try? EVMAddress(hex: charge.currency) else {
            return reject("'request' field 'currency' is not a TIP-20 token address")
        }
        guard let recipientText = charge.recipient else { return reject("'request' missing required field 'recipient'") }
        guard let recipient = try? EVMAddress(hex: recipientText) else {
            return reject("'request' field 'recipient' is not an address")
        }
        guard let details = charge.methodDetails, let chainID = details["chainId"]?.uint64Value else {
            return reject("'request' missing 'methodDetails.chainId'")
        }
        var feePayer = false
        if case .bool(let b)? = details["feePayer"] { feePayer = b }
        if case .array(let modes)? = details["supportedModes"] {
            guard modes.contains(where: { $0.stringValue?.lowercased() == "pull" }) else {
                return reject("the Tempo charge does not support pull mode")
            }
        }
        let network = TempoChain.network(for: chainID)
        let human = TempoToken.known(token)?.humanAmount(charge.amount)
            ?? "\(charge.amount) \(String(token.lowercased.prefix(8)))"
        var raw = MPP.baseRaw(charge, kind: .mppTempo)
        raw["network"] = network
        raw["chainId"] = String(chainID)
        raw["feePayer"] = String(feePayer)
        let challenge = NormalizedChallenge(
            rail: .mppTempo, resource: MPP.resource(context),
            price: .init(amount: charge.amount, currency: token.lowercased + "-tip20", humanAmount: human),
            payee: .init(identifier: recipient.checksummed,
                         metadata: ["currency_contract": token.lowercased, "chain_id": String(chainID)]),
            nonce: charge.challenge.id, expiresAt: charge.expiresAt, raw: raw)
        return .offer(PaymentOffer(rail: .mppTempo, challenge: challenge, details: MPPTempoOffer(
            charge: charge, chainID: chainID, token: token, recipient: recipient, network: network,
            feePayer: feePayer)))
    }

    public func check(_ offer: PaymentOffer, with funding: any FundingSource, now: Date) throws {
        guard let source = funding as? TempoFundingSource else {
            throw NoFundingForRailError(code: .noSource, message: "not a Tempo funding source", rail: .mppTempo)
        }
        guard let details = offer.details as? MPPTempoOffer else { throw ChallengeError("not an MPP Tempo offer", rail: .mppTempo) }
        guard details.chainID == source.chain.chainID else {
            throw NoFundingForRailError(
                code: .networkMismatch,
                message: "the charge is on chain \(details.chainID) but the Tempo funding source is on \(source.chain)",
                rail: .mppTempo)
        }
        guard details.token == source.token.address else {
            throw NoFundingForRailError(
                code: .assetMismatch,
                message: "the charge asks for token \(details.token.lowercased), the source pays \(source.token.symbol)",
                rail: .mppTempo)
        }
        if now >= details.charge.expiresAt {
            throw ChallengeExpiredError("the MPP challenge expired", rail: .mppTempo)
        }
        if let limit = source.maxAmount, details.charge.amount > limit {
            throw InvalidChallengeError(
                code: .amountTooHigh,
                message: "the charge asks \(source.token.humanAmount(details.charge.amount)), above the limit of \(source.token.humanAmount(limit))",
                rail: .mppTempo)
        }
    }

    /// Looks up the nonce, signs the transfer and returns the credential. Nothing is broadcast by the client: the
    /// server submits the signed transaction, so every error thrown here leaves the funds where they were.
    public func pay(_ offer: PaymentOffer, with funding: any FundingSource, context: PaymentContext) async throws
        -> PaymentProof
    {
        try check(offer, with: funding, now: context.now)
        let source = funding as! TempoFundingSource
        let details = offer.details as! MPPTempoOffer
        let clock = ContinuousClock()
        let started = clock.now
        let nonce = try await source.nonce()
        let tx = TempoTransaction.transfer(
            chainID: details.chainID, token: details.token, recipient: details.recipient,
            amount: details.charge.amount, nonce: nonce, validBefore: MPP.unixSeconds(details.charge.expiresAt),
            validAfter: 0, feeToken: details.token, maxPriorityFeePerGas: source.maxPriorityFeePerGas,
            maxFeePerGas: source.maxFeePerGas, gasLimit: source.gasLimit)
        var signature: [UInt8]
        do {
            signature = try await source.wallet.signDigest(tx.signingHash)
        } catch {
            throw MppChargeFailedError(code: .signingFailed, message: "the Tempo wallet could not sign: \(type(of: error))",
                                       rail: .mppTempo)
        }
        guard signature.count == 65 else {
            throw MppChargeFailedError(code: .signingFailed, message: "the Tempo wallet returned a \(signature.count)-byte signature",
                                       rail: .mppTempo)
        }
        switch (signature[64], source.recoveryEncoding) {
        case (0...1, .ethereum): signature[64] += 27
        case (27...28, .parity): signature[64] -= 27
        default: break
        }
        let raw = tx.encoded(signature: signature)
        let txHash = "0x" + Keccak256.hash(raw).hexString
        let payload = JSONValue.members(["type": .string("transaction"), "signature": .string("0x" + raw.hexString)])
        return MPP.proof(details.charge, payload: payload,
                         source: "did:pkh:eip155:\(details.chainID):\(source.wallet.address.checksummed)",
                         proofType: .txid, proofValue: txHash, amount: details.charge.amount,
                         latencyMs: MPP.ms(clock.now - started))
    }

    public func settlement(for offer: PaymentOffer, proof: PaymentProof, response: TransportResponse) throws
        -> SettlementReceipt?
    {
        guard let details = offer.details as? MPPTempoOffer else { return nil }
        return try MPP.settlement(charge: details.charge, proof: proof, response: response, rail: .mppTempo,
                                  methods: Self.methods, network: details.network, facilitator: "tempo")
    }
}
