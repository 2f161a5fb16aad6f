import Foundation

/// The router's answer: candidates best first, or why there are none.
enum RouteResult: Sendable {
    case candidates([PaymentCandidate])
    case failed(any RouteweilerError)
}

/// Picks, for one 402 response, the offers that can be paid and orders them best first.
struct Router: Sendable {
    /// Registered rails in the fixed registration order.
    let rails: [any Rail]
    let funding: [any FundingSource]

    struct Decision: Sendable {
        var result: RouteResult
        var rejections: [RailRejection]
    }

    func route(_ context: ChallengeContext) -> Decision {
        var rejections: [RailRejection] = []
        var candidates: [(PaymentCandidate, Int)] = []
        var sawChallenge = false
        for (index, rail) in rails.enumerated() {
            let results = rail.offers(in: context)
            if !results.isEmpty { sawChallenge = true }
            for result in results {
                switch result {
                case .rejected(let error):
                    rejections.append(RailRejection(rail: rail.id, error: error))
                case .offer(let offer):
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
                    if let chosen {
                        candidates.append((PaymentCandidate(offer: offer, rail: rail, funding: chosen), index))
                    } else {
                        rejections.append(
                            RailRejection(
                                rail: rail.id,
                                error: lastError
                                    ?? NoFundingForRailError(code: .noSource, message: "no funding source for \(rail.id)",
                                                             rail: rail.id)))
                    }
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
            let error: any RouteweilerError =
                rejections.count == 1 ? rejections[0].error : NoFeasibleRailError(rejections: rejections)
            return Decision(result: .failed(error), rejections: rejections)
        }
        // Same currency: cheaper first; otherwise registration order (FMV-based ranking arrives with budgets).
        let ordered = candidates.enumerated().sorted { a, b in
            let (ca, ia) = a.element, (cb, ib) = b.element
            if ca.offer.challenge.price.currency == cb.offer.challenge.price.currency,
                ca.offer.challenge.price.amount != cb.offer.challenge.price.amount
            {
                return ca.offer.challenge.price.amount < cb.offer.challenge.price.amount
            }
            if ia != ib { return ia < ib }
            return a.offset < b.offset
        }.map(\.element.0)
        return Decision(result: .candidates(ordered), rejections: rejections)
    }
}
