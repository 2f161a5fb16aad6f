import Foundation

/// The router's answer: candidates best first, or why there are none.
enum RouteResult: Sendable {
    case candidates([PaymentCandidate])
    case failed(any RouteweilerError)
}

/// Picks, for one 402 response, the offers that can be paid and orders them best first (SPEC §5): parse every
/// rail's offers, apply the policy and the envelope's rails, match a funding source, quote each in the reference
/// currency, then order by (cost, policy preference, default rail, registration order).
struct Router: Sendable {
    /// Registered rails in the fixed registration order.
    let rails: [any Rail]
    let funding: [any FundingSource]
    let policy: Policy
    let converter = FmvConverter()

    struct Decision: Sendable {
        var result: RouteResult
        var rejections: [RailRejection]
    }

    /// The budget facts routing needs.
    struct Limits: Sendable {
        var referenceCurrency: Currency?
        var envelopeID: String?
        var envelopeRails: [RailID]?
        /// Origin globs the envelope may pay (`*`, `https://*.example.com`, or a host glob).
        var envelopeOrigins: OriginGlobs?
        var fmv: (any FmvProvider)?
        /// The rail that last paid this origin (SPEC §5.2): it wins among the feasible candidates.
        var stickyRail: RailID?
        /// Start offers' deferred checks on another thread and leave their outcome to the payment step (which waits
        /// for it before reserving) instead of running them here; a candidate that fails its check then fails over
        /// like a refused payment.
        var deferChecks = false
    }

    func route(_ context: ChallengeContext, limits: Limits) async -> Decision {
        var rejections: [RailRejection] = []
        var candidates: [(PaymentCandidate, Int)] = []
        var sawChallenge = false
        let originAllowed = limits.envelopeOrigins?.allow(origin: context.request.origin,
                                                          host: context.request.originHost) ?? true
        for (index, rail) in rails.enumerated() {
            let results = rail.offers(in: context)
            if !results.isEmpty { sawChallenge = true }
            for result in results {
                switch result {
                case .rejected(let error):
                    rejections.append(RailRejection(rail: rail.id, error: error))
                case .offer(var offer):
                    if let check = offer.deferredCheck, limits.deferChecks {
                        check.start()  // on the other core while this routes and reserves
                    } else if let check = offer.deferredCheck {
                        do {
                            try check.run()
                            offer.challenge = offer.checkedChallenge
                        } catch {
                            rejections.append(RailRejection(
                                rail: rail.id,
                                error: (error as? any RouteweilerError) ?? ChallengeError("\(error)", rail: rail.id)))
                            continue
                        }
                    }
                    let decision = policy.evaluate(challenge: offer.challenge, requestURL: context.request.url)
                    if let denied = decision.deniedError {
                        rejections.append(RailRejection(rail: rail.id, error: denied, challenge: offer.challenge))
                        continue
                    }
                    if !originAllowed, let envelope = limits.envelopeID {
                        rejections.append(RailRejection(rail: rail.id, error: OriginNotAllowedError(
                            envelopeID: envelope, origin: context.request.origin), challenge: offer.challenge))
                        continue
                    }
                    if let allowed = limits.envelopeRails, let envelope = limits.envelopeID, !allowed.contains(rail.id) {
                        rejections.append(RailRejection(rail: rail.id, error: RailNotAllowedError(envelopeID: envelope, rail: rail.id), challenge: offer.challenge))
                        continue
                    }
                    var lastError: (any RouteweilerError)?
                    var chosen: (any FundingSource)?
                    for source in funding where source.rails.contains(where: { $0.id == rail.id }) {
                        do {
                            try rail.check(offer, with: source, now: context.now)
                            chosen = source
                            break
                        } catch let error as any RouteweilerError {
                            lastError = error
                        } catch {
                            lastError = ChallengeError(String(describing: error), rail: rail.id)
                        }
                    }
                    guard let chosen else {
                        rejections.append(RailRejection(
                            rail: rail.id,
                            error: lastError ?? NoFundingForRailError(code: .noSource, message: "no funding source for \(rail.id)", rail: rail.id),
                            challenge: offer.challenge))
                        continue
                    }
                    var candidate = PaymentCandidate(offer: offer, rail: rail, funding: chosen)
                    candidate.decision = decision
                    // Quote in the reference currency; fail closed when a cap needs it and no rate is to be had.
                    let needsQuote = limits.envelopeID != nil || decision.maxPerCallMinorUnits != nil
                    if let currency = limits.referenceCurrency, let fmv = limits.fmv {
                        do {
                            candidate.quote = try await converter.quote(offer.challenge.price, in: currency, provider: fmv)
                        } catch let error as any RouteweilerError {
                            if needsQuote {
                                rejections.append(RailRejection(rail: rail.id, error: error, challenge: offer.challenge))
                                continue
                            }
                        } catch {
                            if needsQuote {
                                rejections.append(RailRejection(rail: rail.id, error: FmvUnavailableError(code: .fetchFailed, "\(error)"), challenge: offer.challenge))
                                continue
                            }
                        }
                    } else if needsQuote {
                        rejections.append(RailRejection(rail: rail.id, error: FmvUnavailableError(
                            code: .unsupportedPair, "no fair-market-value provider or reference currency to check the cap"),
                            challenge: offer.challenge))
                        continue
                    }
                    if let quote = candidate.quote, decision.maxPerCallMinorUnits != nil {
                        do {
                            try decision.checkMaxPerCall(quote)
                        } catch let error as any RouteweilerError {
                            rejections.append(RailRejection(rail: rail.id, error: error, challenge: offer.challenge))
                            continue
                        } catch {
                            rejections.append(RailRejection(rail: rail.id, error: ConfigurationError("\(error)"), challenge: offer.challenge))
                            continue
                        }
                    }
                    candidates.append((candidate, index))
                }
            }
        }
        if !sawChallenge {
            let schemes = context.response.headerFields[values: .wwwAuthenticate]
                .map { $0.split(separator: " ").first.map(String.init) ?? "" }
            let offered = schemes.isEmpty ? "no recognised challenge" : "challenges: \(schemes.joined(separator: ", "))"
            return Decision(
                result: .failed(RailNotSupportedError("402 with \(offered); configured rails: \(rails.map(\.id.rawValue).joined(separator: ", "))")),
                rejections: rejections)
        }
        if candidates.isEmpty {
            let error: any RouteweilerError
            if rejections.count == 1 {
                error = rejections[0].error
            } else if !rejections.isEmpty, rejections.allSatisfy({ $0.error is PolicyDeniedError }) {
                error = rejections.last!.error
            } else {
                error = NoFeasibleRailError(rejections: rejections)
            }
            return Decision(result: .failed(error), rejections: rejections)
        }
        let ordered = candidates.enumerated().sorted { a, b in
            let (ca, ia) = a.element, (cb, ib) = b.element
            // 0. The sticky rail of this origin, while it stays feasible.
            if let sticky = limits.stickyRail, (ca.offer.rail == sticky) != (cb.offer.rail == sticky) {
                return ca.offer.rail == sticky
            }
            // 1. Cost in the reference currency (unquoted last), or the native amount within one currency.
            if let qa = ca.quote, let qb = cb.quote, qa.fairMinorUnits != qb.fairMinorUnits {
                return qa.fairMinorUnits < qb.fairMinorUnits
            }
            if (ca.quote == nil) != (cb.quote == nil) { return ca.quote != nil }
            if ca.quote == nil, ca.offer.challenge.price.currency == cb.offer.challenge.price.currency,
                ca.offer.challenge.price.amount != cb.offer.challenge.price.amount
            {
                return ca.offer.challenge.price.amount < cb.offer.challenge.price.amount
            }
            // 2. Policy preference, 3. the default rail, 4. registration order.
            let pa = ca.decision.prefer.firstIndex(of: ca.offer.rail) ?? Int.max
            let pb = cb.decision.prefer.firstIndex(of: cb.offer.rail) ?? Int.max
            if pa != pb { return pa < pb }
            let da = ca.offer.rail == policy.defaultRail ? 0 : 1
            let db = cb.offer.rail == policy.defaultRail ? 0 : 1
            if da != db { return da < db }
            if ia != ib { return ia < ib }
            return a.offset < b.offset
        }.map(\.element.0)
        return Decision(result: .candidates(ordered), rejections: rejections)
    }
}

/// An envelope's allowed-origin globs (SPEC §10.1), lower-cased once: a glob with `://` is matched against the
/// request's origin, any other against its host. No globs allow every origin.
struct OriginGlobs: Sendable {
    private let globs: [(pattern: String, matchesOrigin: Bool)]

    init(_ globs: [String]) {
        self.globs = globs.map { g in
            let p = g.lowercased()
            return (p, p.utf8.firstRange(of: "://".utf8) != nil)
        }
    }

    /// Whether a request to `origin` (scheme://host[:port], lower-cased) on `host` may draw on the envelope.
    func allow(origin: String, host: String) -> Bool {
        globs.isEmpty || globs.contains { $0.matchesOrigin ? Glob.matches($0.pattern, origin) : Glob.matches($0.pattern, host) }
    }
}
