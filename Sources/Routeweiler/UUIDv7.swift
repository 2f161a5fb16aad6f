import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Time-ordered UUID version 7 identifiers (48-bit Unix milliseconds, version 7, variant `10`, random bits).
public enum UUIDv7 {
    /// A new UUIDv7 in canonical lower-case 8-4-4-4-12 form.
    public static func make(now: Date = Date()) -> String {
        var g = PooledRandom()
        return make(milliseconds: UInt64(max(0, now.timeIntervalSince1970 * 1000)), using: &g)
    }

    /// A UUIDv7 for the given millisecond timestamp, with randomness from `generator`.
    ///
    /// Draws the 80 random bits with two `next()` calls (not one per byte: each call of the system generator is a
    /// `getrandom` system call) and writes the text in one pass; this runs several times per paid call.
    public static func make<G: RandomNumberGenerator>(milliseconds: UInt64, using generator: inout G) -> String {
        let r1 = generator.next()
        let r2 = generator.next()
        var bytes = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0),
                     UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
        return withUnsafeMutableBytes(of: &bytes) { b in
            for i in 0..<6 { b[i] = UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - UInt64(i)))) }
            for i in 0..<8 { b[6 + i] = UInt8(truncatingIfNeeded: r1 >> (8 * UInt64(i))) }
            for i in 0..<2 { b[14 + i] = UInt8(truncatingIfNeeded: r2 >> (8 * UInt64(i))) }
            b[6] = (b[6] & 0x0f) | 0x70
            b[8] = (b[8] & 0x3f) | 0x80
            let digits: StaticString = "0123456789abcdef"
            return String(unsafeUninitializedCapacity: 36) { out in
                var o = 0
                for i in 0..<16 {
                    if i == 4 || i == 6 || i == 8 || i == 10 {
                        out[o] = UInt8(ascii: "-")
                        o += 1
                    }
                    out[o] = digits.utf8Start[Int(b[i] >> 4)]
                    out[o + 1] = digits.utf8Start[Int(b[i] & 0x0f)]
                    o += 2
                }
                return o
            }
        }
    }
}

/// Random bits for identifiers from the kernel's generator, read 4 KiB at a time from `/dev/urandom`: one system
/// call per 512 draws instead of one per draw (several ids are made per call). A forked child refills before its
/// first draw, so parent and child never hand out the same bits. (Linux; elsewhere the system generator is used as
/// is.)
struct PooledRandom: RandomNumberGenerator {
    mutating func next() -> UInt64 {
        #if os(Linux)
        if let value = Self.pool.withLock({ $0.next() }) { return value }
        #endif
        var g = SystemRandomNumberGenerator()
        return g.next()
    }

    #if os(Linux)
    /// Counts forks of this process, in the child (a `pthread_atfork` handler): a pool filled before a fork is
    /// refilled after it, without a `getpid` system call per draw.
    private static let forks = Atomic<Int>(0)
    private static let watchingForks: Bool = {
        pthread_atfork(nil, nil, { PooledRandom.forks.add(1, ordering: .relaxed) }) == 0
    }()

    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var offset = 4096
        /// The fork count when the bytes were read (-1: never).
        var generation = -1
        var fd: Int32 = -1

        /// The next 8 bytes, or `nil` if the kernel's generator cannot be read.
        mutating func next() -> UInt64? {
            let generation = PooledRandom.watchingForks ? PooledRandom.forks.load(ordering: .relaxed) : Int(getpid())
            if offset + 8 > bytes.count || self.generation != generation {
                if fd < 0 || self.generation != generation {
                    if fd >= 0 { close(fd) }
                    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
                    if fd < 0 { return nil }
                }
                let fd = self.fd
                let filled = bytes.withUnsafeMutableBytes { buffer -> Bool in
                    var done = 0
                    while done < buffer.count {
                        let n = read(fd, buffer.baseAddress! + done, buffer.count - done)
                        if n <= 0 { return false }
                        done += n
                    }
                    return true
                }
                guard filled else { return nil }
                offset = 0
                self.generation = generation
            }
            defer { offset += 8 }
            return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        }
    }
    private static let pool = Mutex(Pool())
    #endif
}

import RouteweilerWire

/// Timestamp formats used on disk and in traces (SPEC conventions).
public enum Timestamp {
    /// RFC 3339 with `Z`, a 6-digit fraction only when microseconds are non-zero: `2026-01-02T03:04:05Z`.
    public static func rfc3339Z(_ date: Date) -> String { format(date, zulu: true) }
    /// ISO 8601 with `+00:00`, a 6-digit fraction only when microseconds are non-zero.
    public static func iso(_ date: Date) -> String { format(date, zulu: false) }

    /// ISO 8601 with `+00:00` and always a 6-digit fraction (`2026-01-02T03:04:05.000000+00:00`): fixed width, so
    /// that string order is time order (the budget tables and the payment journal).
    public static func isoFixedWidth(_ date: Date) -> String { format(date, zulu: false, alwaysFraction: true) }

    private static func format(_ date: Date, zulu: Bool, alwaysFraction: Bool = false) -> String {
        let totalMicros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = totalMicros / 1_000_000
        var micros = totalMicros % 1_000_000
        if micros < 0 { micros += 1_000_000; seconds -= 1 }
        var days = seconds / 86_400
        var rem = seconds % 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let (y, m, d) = civil(fromDays: days)
        let hh = rem / 3600, mm = (rem % 3600) / 60, ss = rem % 60
        let fraction = micros != 0 || alwaysFraction
        guard (0...9999).contains(y) else {
            var s = pad(y, 4) + "-" + pad(m, 2) + "-" + pad(d, 2) + "T" + pad(hh, 2) + ":" + pad(mm, 2) + ":" + pad(ss, 2)
            if fraction { s += "." + pad(micros, 6) }
            return s + (zulu ? "Z" : "+00:00")
        }
        // The common case, written digit by digit into one buffer.
        let length = 19 + (fraction ? 7 : 0) + (zulu ? 1 : 6)
        return String(unsafeUninitializedCapacity: length) { out in
            var i = 0
            func digits(_ v: Int64, _ width: Int) {
                var v = v
                for k in stride(from: width - 1, through: 0, by: -1) {
                    out[i + k] = UInt8(0x30 + v % 10)
                    v /= 10
                }
                i += width
            }
            func put(_ c: Unicode.Scalar) {
                out[i] = UInt8(ascii: c)
                i += 1
            }
            digits(y, 4); put("-"); digits(m, 2); put("-"); digits(d, 2); put("T")
            digits(hh, 2); put(":"); digits(mm, 2); put(":"); digits(ss, 2)
            if fraction { put("."); digits(micros, 6) }
            if zulu { put("Z") } else { put("+"); digits(0, 2); put(":"); digits(0, 2) }
            return i
        }
    }

    /// Parses the formats written by ``rfc3339Z(_:)`` and ``iso(_:)``: `YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)`,
    /// keeping microseconds.
    public static func parse(_ string: String) -> Date? {
        let u = Array(string.utf8)
        func num(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= u.count else { return nil }
            var v: Int64 = 0
            for c in u[from..<(from + count)] {
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int64(c - 48)
            }
            return v
        }
        guard u.count >= 20, u[4] == 45, u[7] == 45, u[10] == 84 || u[10] == 116, u[13] == 58, u[16] == 58,
            let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
            let sec = num(17, 2), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61
        else { return nil }
        var i = 19
        var micros: Int64 = 0
        if i < u.count, u[i] == 46 {
            i += 1
            var digits = 0
            while i < u.count, u[i] >= 48, u[i] <= 57 {
                if digits < 6 { micros = micros * 10 + Int64(u[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 6) { micros *= 10 }
        }
        var offset: Int64 = 0
        if i < u.count, u[i] == 90 || u[i] == 122 {
            i += 1
        } else if i < u.count, u[i] == 43 || u[i] == 45, let oh = num(i + 1, 2), u.count > i + 3, u[i + 3] == 58,
            let om = num(i + 4, 2)
        {
            offset = (oh * 3600 + om * 60) * (u[i] == 45 ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == u.count else { return nil }
        // Days from civil (Howard Hinnant).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let mp = mo > 2 ? mo - 3 : mo + 9
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = days * 86_400 + h * 3600 + mi * 60 + sec - offset
        return Date(timeIntervalSince1970: TimeInterval(seconds) + TimeInterval(micros) / 1_000_000)
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
