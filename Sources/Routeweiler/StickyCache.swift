import Foundation
import Synchronization

/// Remembers, per origin (and agent), the rail that last paid there, so that later 402s from the same origin
/// stay on it while it remains feasible (SPEC §5.2).
///
/// An entry lives until the earlier of `now + ttl` and the paid challenge's expiry, and is dropped when a
/// payment on that origin fails. The sticky rail only wins among candidates that survived policy, funding and
/// caps; it never makes an infeasible offer payable.
/// A lock, not an actor: every paid call reads and writes it, and a lock costs less than two actor hops.
final class StickyCache: Sendable {
    struct Key: Hashable {
        var origin: String
        var agentID: String?
    }

    private let entries = Mutex<[Key: (rail: RailID, expiresAt: Date)]>([:])
    let ttl: TimeInterval

    init(ttl: TimeInterval = 600) { self.ttl = ttl }

    func rail(for key: Key, now: Date) -> RailID? {
        entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            if now >= entry.expiresAt {
                entries[key] = nil
                return nil
            }
            return entry.rail
        }
    }

    func remember(_ rail: RailID, for key: Key, challengeExpiresAt: Date, now: Date) {
        let expiry = min(now.addingTimeInterval(ttl), challengeExpiresAt)
        guard expiry > now else { return }
        entries.withLock { $0[key] = (rail, expiry) }
    }

    func forget(_ key: Key) { entries.withLock { $0[key] = nil } }
}
