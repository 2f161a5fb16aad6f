import Foundation

/// Monotonic nanoseconds (CLOCK_MONOTONIC), cheap enough to take around every phase.
@inline(__always)
func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Mean and percentiles of a sample, in one unit (ms for calls, µs for micro-benchmarks).
struct Summary: Codable, Sendable {
    var count: Int
    var mean: Double
    var p50: Double
    var p95: Double
    var p99: Double
    var max: Double

    /// Summarises nanosecond samples, converted by `divisor` (1e6 for ms, 1e3 for µs).
    init(nanos: [UInt64], divisor: Double) {
        let values = nanos.map { Double($0) / divisor }.sorted()
        count = values.count
        guard !values.isEmpty else {
            mean = 0; p50 = 0; p95 = 0; p99 = 0; max = 0
            return
        }
        mean = values.reduce(0, +) / Double(values.count)
        func pct(_ p: Double) -> Double {
            let rank = Int((p * Double(values.count - 1)).rounded())
            return values[Swift.min(values.count - 1, Swift.max(0, rank))]
        }
        p50 = pct(0.50)
        p95 = pct(0.95)
        p99 = pct(0.99)
        max = values[values.count - 1]
    }

    static func ms(_ nanos: [UInt64]) -> Summary { Summary(nanos: nanos, divisor: 1e6) }
    static func us(_ nanos: [UInt64]) -> Summary { Summary(nanos: nanos, divisor: 1e3) }
}

/// Peak and current resident set size of this process, from `/proc/self/status` (Linux).
enum Memory {
    static func field(_ name: String) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Double(parts[1]) { return kb / 1024 }
        }
        return nil
    }
    /// Peak RSS (VmHWM) in MiB.
    static var peakMiB: Double? { field("VmHWM") }
    /// Current RSS (VmRSS) in MiB.
    static var currentMiB: Double? { field("VmRSS") }


}

func fmt(_ v: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", v) }

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
