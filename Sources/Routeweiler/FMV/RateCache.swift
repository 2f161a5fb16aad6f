import Foundation
import Synchronization

/// An in-memory cache of fetched values with a freshness rule and a hard staleness limit.
///
/// - A cached value that is still *fresh* (``isFresh``) is returned without a fetch.
/// - Otherwise the value is fetched; on success it replaces the cached one.
/// - If the fetch fails, the last value is still returned while it is younger than `maxStaleness`
///   (so a short outage of the rate service does not stop payments), and refused after that with
///   ``FmvUnavailableError/Code/stale``: a stale or missing rate never pays.
///
/// Concurrent misses may fetch more than once; the last answer wins. Time comes from an injected clock.
final class RateCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    struct Entry: Sendable {
        var value: Value
        var fetchedAt: Date
    }

    private let entries = Mutex<[Key: Entry]>([:])
    private let maxStaleness: TimeInterval
    private let isFresh: @Sendable (_ fetchedAt: Date, _ now: Date) -> Bool
    private let now: @Sendable () -> Date

    init(maxStaleness: Duration, now: @escaping @Sendable () -> Date,
         isFresh: @escaping @Sendable (_ fetchedAt: Date, _ now: Date) -> Bool) {
        self.maxStaleness = maxStaleness.timeInterval
        self.now = now
        self.isFresh = isFresh
    }

    /// Returns the cached value for `key` if fresh, else fetches (falling back to a not-too-stale value on failure).
    func value(for key: Key, label: String, fetch: () async throws -> Value) async throws -> (Value, Date) {
        let t = now()
        let cached = entries.withLock { $0[key] }
        if let cached, age(cached, t) <= maxStaleness, isFresh(cached.fetchedAt, t) {
            return (cached.value, cached.fetchedAt)
        }
        do {
            let value = try await fetch()
            let fetchedAt = now()
            entries.withLock { $0[key] = Entry(value: value, fetchedAt: fetchedAt) }
            return (value, fetchedAt)
        } catch {
            let t = now()
            guard let cached else { throw error }
            if age(cached, t) <= maxStaleness { return (cached.value, cached.fetchedAt) }
            let ageSeconds = Int(age(cached, t).rounded(.down))
            throw FmvUnavailableError(
                code: .stale,
                "\(label): the last rate is \(ageSeconds) s old (limit \(Int(maxStaleness)) s) "
                    + "and refreshing it failed: \(error)",
                cause: error)
        }
    }

    /// Forgets every cached value.
    func removeAll() { entries.withLock { $0.removeAll() } }

    private func age(_ e: Entry, _ t: Date) -> TimeInterval { max(0, t.timeIntervalSince(e.fetchedAt)) }
}

extension Duration {
    /// The duration in seconds (for `Date` arithmetic; never used for money).
    var timeInterval: TimeInterval {
        let (s, atto) = components
        return TimeInterval(s) + TimeInterval(atto) / 1e18
    }
    /// Whole milliseconds, rounded up, at least 1.
    var wholeMilliseconds: Int64 {
        let (s, atto) = components
        let ms = s * 1000 + (atto + 999_999_999_999_999) / 1_000_000_000_000_000
        return max(1, ms)
    }
}
