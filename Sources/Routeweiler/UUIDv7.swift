import Foundation

/// Time-ordered UUID version 7 identifiers (48-bit Unix milliseconds, version 7, variant `10`, random bits).
public enum UUIDv7 {
    /// A new UUIDv7 in canonical lower-case 8-4-4-4-12 form.
    public static func make(now: Date = Date()) -> String {
        var g = SystemRandomNumberGenerator()
        return make(milliseconds: UInt64(max(0, now.timeIntervalSince1970 * 1000)), using: &g)
    }

    /// A UUIDv7 for the given millisecond timestamp, with randomness from `generator`.
    public static func make<G: RandomNumberGenerator>(milliseconds: UInt64, using generator: inout G) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - UInt64(i)))) }
        for i in 6..<16 { bytes[i] = UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0f) | 0x70
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let hex = Array(bytes.hexString)
        return String(hex[0..<8]) + "-" + String(hex[8..<12]) + "-" + String(hex[12..<16]) + "-"
            + String(hex[16..<20]) + "-" + String(hex[20..<32])
    }
}

import RouteweilerWire

/// Timestamp formats used on disk and in traces (SPEC conventions).
public enum Timestamp {
    /// RFC 3339 with `Z`, a 6-digit fraction only when microseconds are non-zero: `2026-01-02T03:04:05Z`.
    public static func rfc3339Z(_ date: Date) -> String { format(date, zulu: true) }
    /// ISO 8601 with `+00:00`, a 6-digit fraction only when microseconds are non-zero.
    public static func iso(_ date: Date) -> String { format(date, zulu: false) }

    private static func format(_ date: Date, zulu: Bool) -> String {
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        var seconds = totalMicros / 1_000_000
        var micros = totalMicros % 1_000_000
        if micros < 0 { micros += 1_000_000; seconds -= 1 }
        var days = seconds / 86_400
        var rem = seconds % 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let (y, m, d) = civil(fromDays: days)
        let hh = rem / 3600, mm = (rem % 3600) / 60, ss = rem % 60
        var s = pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + "T" + pad(hh, 2) + ":" + pad(mm, 2) + ":" + pad(ss, 2)
        if micros != 0 { s += "." + pad(micros, 6) }
        s += zulu ? "Z" : "+00:00"
        return s
    }

    /// Parses the formats written by ``rfc3339Z(_:)`` and ``iso(_:)`` (and any RFC 3339 offset).
    public static func parse(_ string: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: string) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: string)
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    // Howard Hinnant's days-from-civil inverse.
    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
