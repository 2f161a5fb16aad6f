import Foundation
public import HTTPTypes

/// What paying a URL would involve, worked out without paying: every offer in its 402, its cost in the reference
/// currency, the policy and budget verdicts, and the offer the client would pay and why.
public struct PaymentQuote: Sendable, Codable, Hashable {
    /// One offer of the 402 response.
    public struct Offer: Sendable, Codable, Hashable {
        public var rail: RailID
        /// The price in the rail's unit; `nil` when the challenge could not be parsed.
        public var price: NormalizedChallenge.Price?
        public var payee: String?
        public var expiresAt: Date?
        /// The fair cost in the reference currency (minor units, rounded up), when a rate was available.
        public var costMinorUnits: Int64?
        public var costCurrency: String?
        public var fmvQuality: FmvQuality?
        /// `allow` or `deny`, and the matching rule.
        public var policyVerdict: String
        public var policyRule: String?
        /// The funding source that would pay it.
        public var fundingSource: String?
        /// Whether the client could pay this offer now.
        public var payable: Bool
        /// Why not, when not payable (the typed error's name and message).
        public var rejection: TraceEvent.Outcome.ErrorInfo?
        /// Whether this is the offer the client would pay.
        public var chosen: Bool
    }

    /// The budget envelope's view of the chosen offer.
    public struct Budget: Sendable, Codable, Hashable {
        public var envelopeId: String
        public var currency: String
        public var capMinorUnits: Int64
        public var remainingMinorUnits: Int64
        /// What the chosen offer would reserve (its cap amount, with the FMV safety buffer).
        public var wouldReserveMinorUnits: Int64?
        /// Whether that reservation fits in what remains.
        public var fits: Bool
    }

    public var method: String
    public var url: String
    /// The status of the unpaid request.
    public var httpStatus: Int
    /// Whether the server asked for payment (402).
    public var paymentRequired: Bool
    public var offers: [Offer]
    /// The rail the client would pay on, or `nil` when nothing would be paid.
    public var chosenRail: RailID?
    /// Why that rail (or why none), in words.
    public var explanation: String
    public var budget: Budget?
}

extension RouteweilerClient {
    /// Works out what paying `url` would involve, without paying: sends the request once (unpaid), reads the 402,
    /// and routes it exactly as ``send(_:)`` would, including policy, funding, fair-market value, the envelope's
    /// rails and origins, its remaining budget and the origin's sticky rail. Nothing is reserved, signed, paid or
    /// traced.
    public func quote(_ url: String, method: HTTPRequest.Method = .get, headers: HTTPFields = [:],
                      body: [UInt8]? = nil) async throws -> PaymentQuote {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
            parsed.host != nil
        else {
            throw ConfigurationError("not an absolute http(s) URL: \(url)")
        }
        let request = RouteweilerRequest(method: method, url: parsed, headerFields: headers, body: body)
        let envelope = try await startup.run { try await self.prepare() }
        let response: TransportResponse
        do {
            response = try await transport.send(request, timeout: configuration.timeouts.request)
        } catch {
            throw Self.asTransportError(error)
        }
        var quote = PaymentQuote(method: method.rawValue, url: Self.traceURL(parsed), httpStatus: Int(response.status.code),
                                 paymentRequired: response.status.code == 402, offers: [], chosenRail: nil,
                                 explanation: "", budget: nil)
        guard response.status.code == 402 else {
            quote.explanation = "the server answered \(response.status.code) without asking for payment; nothing to pay"
            return quote
        }
        let stickyRail = sticky.rail(for: .init(origin: request.origin, agentID: configuration.agentID), now: Date())
        let limits = Router.Limits(
            referenceCurrency: envelope?.currency ?? configuration.policy.currency, envelopeID: envelope?.id,
            envelopeRails: envelope?.allowedRails, envelopeOrigins: envelope?.originGlobs, fmv: fmv,
            stickyRail: stickyRail)
        let decision = await router.route(ChallengeContext(request: request, response: response, now: Date()),
                                          limits: limits)
        var balance: EnvelopeBalance?
        if let envelope, let store = configuration.budgetStore {
            balance = try? await store.balance(envelopeID: envelope.id)
        }

        func offer(_ c: NormalizedChallenge?, rail: RailID) -> PaymentQuote.Offer {
            PaymentQuote.Offer(rail: rail, price: c?.price, payee: c?.payee.identifier, expiresAt: c?.expiresAt,
                               costMinorUnits: nil, costCurrency: nil, fmvQuality: nil, policyVerdict: "allow",
                               policyRule: nil, fundingSource: nil, payable: false, rejection: nil, chosen: false)
        }
        var candidates: [PaymentCandidate] = []
        if case .candidates(let list) = decision.result { candidates = list }
        var chosenIndex: Int?
        var overBudget: [Int] = []
        for (i, candidate) in candidates.enumerated() {
            var o = offer(candidate.offer.challenge, rail: candidate.offer.rail)
            o.costMinorUnits = candidate.quote.map(Self.settleAmount)
            o.costCurrency = candidate.quote?.envelopeCurrency.code
            o.fmvQuality = candidate.quote?.quality
            o.policyRule = candidate.decision.ruleName
            o.fundingSource = candidate.funding.label
            o.payable = true
            if let balance, let q = candidate.quote, q.capMinorUnits > balance.remainingMinorUnits {
                o.payable = false
                o.rejection = .init(code: "BudgetExceededError",
                                    message: "would reserve \(q.capMinorUnits) of \(balance.remainingMinorUnits) \(balance.currency.code) minor units remaining in \(balance.envelopeID)")
                overBudget.append(i)
            } else if chosenIndex == nil {
                chosenIndex = i
                o.chosen = true
            }
            quote.offers.append(o)
        }
        for rejection in decision.rejections {
            var o = offer(rejection.challenge, rail: rejection.rail)
            if let denied = rejection.error as? PolicyDeniedError {
                o.policyVerdict = "deny"
                o.policyRule = denied.ruleName
            }
            o.rejection = .init(code: rejection.error.errorName, message: rejection.error.message)
            quote.offers.append(o)
        }
        if case .failed(let error) = decision.result, decision.rejections.isEmpty {
            quote.explanation = "nothing would be paid: \(error.errorName): \(error.message)"
        }
        if let i = chosenIndex {
            let chosen = candidates[i]
            quote.chosenRail = chosen.offer.rail
            let others = candidates.enumerated().filter { $0.offset != i && !overBudget.contains($0.offset) }.map(\.element)
            quote.explanation = Self.explain(chosen, over: others, sticky: stickyRail, defaultRail: configuration.policy.defaultRail)
            if !overBudget.isEmpty { quote.explanation += "; dearer offers that do not fit the budget were skipped" }
        } else if quote.explanation.isEmpty {
            quote.explanation = candidates.isEmpty
                ? "nothing would be paid: no offer is payable"
                : "nothing would be paid: no payable offer fits the remaining budget"
        }
        if let balance {
            let reserve = chosenIndex.flatMap { candidates[$0].quote?.capMinorUnits }
                ?? candidates.first?.quote?.capMinorUnits
            quote.budget = .init(envelopeId: balance.envelopeID, currency: balance.currency.code,
                                 capMinorUnits: balance.capMinorUnits, remainingMinorUnits: balance.remainingMinorUnits,
                                 wouldReserveMinorUnits: reserve, fits: chosenIndex != nil)
        }
        return quote
    }

    static func explain(_ chosen: PaymentCandidate, over others: [PaymentCandidate], sticky: RailID?,
                        defaultRail: RailID) -> String {
        let rail = chosen.offer.rail
        let price = chosen.offer.challenge.price.humanAmount
        guard let next = others.first else { return "\(rail) (\(price)) is the only payable offer" }
        if let sticky, rail == sticky, next.offer.rail != sticky {
            return "\(rail) (\(price)) last paid this origin, so it stays on it (sticky routing)"
        }
        if let a = chosen.quote, let b = next.quote, a.fairMinorUnits != b.fairMinorUnits {
            return "\(rail) is cheapest: \(Self.settleAmount(a)) vs \(Self.settleAmount(b)) \(a.envelopeCurrency.code) minor units for \(next.offer.rail)"
        }
        if chosen.quote != nil, next.quote == nil {
            return "\(rail) has a fair-market value and \(next.offer.rail) has none"
        }
        if let rank = chosen.decision.prefer.firstIndex(of: rail),
            rank < (next.decision.prefer.firstIndex(of: next.offer.rail) ?? Int.max)
        {
            return "\(rail) is preferred by policy rule \(chosen.decision.ruleName ?? "-") over \(next.offer.rail)"
        }
        if rail == defaultRail, next.offer.rail != defaultRail {
            return "\(rail) is the policy's default rail (costs equal or not comparable)"
        }
        return "\(rail) comes first in registration order (costs equal or not comparable)"
    }
}
