import AsyncHTTPClient
import Foundation
import NIOCore
import Routeweiler
import RouteweilerSQLite

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

struct SequentialPaidReport: Codable, Sendable {
    var calls: Int
    var reuseCredentials: Bool
    var totalMs: Summary
    /// challenge (first round trip), pay (the LND call), paid_retry (second round trip), bookkeeping (the rest).
    var phasesMs: [String: Summary]
    /// Bookkeeping split: route (parse, policy, FMV, and what is left of the invoice signature check running on
    /// another thread, up to the reservation), reserve_journal (reservation and intent, up to the payment),
    /// settle_resolve, trace (finish and trace row).
    var bookkeepingSplitMs: [String: Summary]
    /// Payments the payee side saw (fake LND payments or ledger transfers); `nil` for an external target.
    var payeePayments: Int?
}

struct FreeReport: Codable, Sendable {
    var calls: Int
    var plainAsyncHTTPClientMs: Summary
    var routeweilerBareMs: Summary
    var routeweilerTracedMs: Summary
    /// (routeweiler p50 − AHC p50) / AHC p50, in percent.
    var bareOverheadP50Percent: Double
    var tracedOverheadP50Percent: Double
    var bareOverheadMeanPercent: Double
    var tracedOverheadMeanPercent: Double
}

struct ConcurrentReport: Codable, Sendable {
    var inFlight: Int
    var reuseCredentials: Bool
    var calls: Int
    var seconds: Double
    var callsPerSecond: Double
    var latencyMs: Summary
    var paidCalls: Int
    /// Payments the payee side saw (fake LND payments or ledger transfers); `nil` for an external target.
    var payeePayments: Int?
    var traceRows: Int
    var settledMinorUnits: Int64
    var reservedMinorUnits: Int64
    /// One trace row per call, nothing left reserved, the settled sum equals one settle amount per payment.
    var moneyChecksPass: Bool
}

struct CapReport: Codable, Sendable {
    var inFlight: Int
    var capMinorUnits: Int64
    var calls: Int
    var paidCalls: Int
    var refusedBudgetExceeded: Int
    var otherErrors: Int
    /// Payments the payee side saw (fake LND payments or ledger transfers); `nil` for an external target.
    var payeePayments: Int?
    var settledMinorUnits: Int64
    var reservedMinorUnits: Int64
    var traceRows: Int
    var holds: Bool
}

struct Scenarios {
    let target: BenchTarget
    let log: @Sendable (String) -> Void

    // MARK: Sequential paid calls, phases split

    func sequentialPaid(count: Int, warmup: Int) async throws -> SequentialPaidReport {
        let dir = try BenchConfig.freshDirectory("seq")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try BenchConfig.full(target: target, directory: dir, reuse: false, probe: true)
        let lndBefore = target.payeePayments?()
        var probes: [CallProbe] = []
        probes.reserveCapacity(count)
        try await RouteweilerClient.withClient(configuration: config) { rw in
            for i in 0..<(warmup + count) {
                let probe = CallProbe()
                probe.start = nowNanos()
                let response = try await CallProbe.$current.withValue(probe) { try await rw.get(target.paidURL) }
                probe.end = nowNanos()
                guard response.status.code == 200, response.payment != nil else {
                    throw BenchFailure("paid call \(i) answered \(response.status.code), payment \(response.payment == nil ? "none" : "made")")
                }
                guard probe.complete else { throw BenchFailure("paid call \(i) did not report every step") }
                if i >= warmup { probes.append(probe) }
                if (i + 1) % 1000 == 0 { log("  sequential paid: \(i + 1)/\(warmup + count), RSS \(Memory.currentMiB.map { fmt($0, 1) } ?? "?") MiB") }
            }
        }
        func s(_ f: (CallProbe) -> UInt64) -> Summary { .ms(probes.map(f)) }
        let challenge = s { $0.challenged - $0.start }
        let pay = s { $0.payEnd - $0.payStart }
        let retry = s { $0.completed - $0.retrying }
        let bookkeeping = s { p in
            (p.end - p.start) - (p.challenged - p.start) - (p.payEnd - p.payStart) - (p.completed - p.retrying)
        }
        return SequentialPaidReport(
            calls: count, reuseCredentials: false, totalMs: s { $0.end - $0.start },
            phasesMs: ["challenge": challenge, "pay": pay, "paid_retry": retry, "bookkeeping": bookkeeping],
            bookkeepingSplitMs: [
                "route": s { $0.reserveStart - $0.challenged },
                "reserve_journal": s { $0.payStart - $0.reserveStart },
                "reserve_journal.transaction": s { $0.reserveEnd - $0.reserveStart },
                "settle_resolve": s { $0.paid - $0.payEnd },
                "to_retry": s { $0.retrying - $0.paid },
                "trace": s { $0.end - $0.completed },
            ],
            payeePayments: lndBefore.map { (target.payeePayments?() ?? 0) - $0 })
    }

    // MARK: Free calls against plain AsyncHTTPClient

    func free(count: Int, warmup: Int) async throws -> FreeReport? {
        guard let url = target.freeURL else { return nil }
        let dir = try BenchConfig.freshDirectory("free")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var ahcConfig = HTTPClient.Configuration()
        ahcConfig.redirectConfiguration = .disallow
        ahcConfig.decompression = .enabled(limit: .ratio(50))
        // One HTTP client (one connection, one event loop) under all three: the figures differ only by the work
        // done around it. (With a client each, which event loop each connection landed on moved the gaps by up to
        // ±5 points from run to run.)
        let ahc = HTTPClient(eventLoopGroupProvider: .singleton, configuration: ahcConfig)
        var bareConfig = BenchConfig.bare(target: target)
        bareConfig.httpClient = ahc
        var tracedConfig = try BenchConfig.full(target: target, directory: dir, reuse: true, probe: false)
        tracedConfig.httpClient = ahc
        let bare = try RouteweilerClient(configuration: bareConfig)
        let traced = try RouteweilerClient(configuration: tracedConfig)
        var a: [UInt64] = [], b: [UInt64] = [], t: [UInt64] = []
        do {
            try await bare.start()
            try await traced.start()
            // In blocks of 250 calls per client (~0.1 s), rotating the order, so that the three share the machine's
            // load over the run while each block's background work (the traced client's write-behind rows) stays in
            // its own block: calls interleaved one by one would bill it to whichever client runs next. A block is
            // several times the trace's gather window (25 ms), so its rows are written while its calls run, as in
            // use, not all in the flush at its end.
            let block = 250
            var done = 0, warm = 0
            var round = 0
            while done < count {
                let n = warm < warmup ? min(block, warmup - warm) : min(block, count - done)
                let measured = warm >= warmup
                let order = [[0, 1, 2], [1, 2, 0], [2, 0, 1]][round % 3]
                round += 1
                for client in order {
                    for _ in 0..<n {
                        let s = nowNanos()
                        let code: Int
                        switch client {
                        case 0:
                            var request = HTTPClientRequest(url: url)
                            request.method = .GET
                            let response = try await ahc.execute(request, timeout: .seconds(30))
                            _ = try await response.body.collect(upTo: 32 * 1024 * 1024)
                            code = Int(response.status.code)
                        case 1: code = try await bare.get(url).status.code
                        default: code = try await traced.get(url).status.code
                        }
                        let ns = nowNanos() - s
                        guard code == 200 else { throw BenchFailure("free call answered \(code)") }
                        if measured { [0: { a.append(ns) }, 1: { b.append(ns) }, 2: { t.append(ns) }][client]!() }
                    }
                    if client == 2 {
                        // The rows still gathering are written now, and charged to this block (to its last call):
                        // the traced client's background work stays in its own block, and in its figures.
                        let s = nowNanos()
                        try await traced.configuration.traceSink?.flush()
                        if measured, !t.isEmpty { t[t.count - 1] += nowNanos() - s }
                    }
                }
                if measured { done += n } else { warm += n }
            }
        } catch {
            try? await bare.shutdown()
            try? await traced.shutdown()
            try? await ahc.shutdown()
            throw error
        }
        try await bare.shutdown()
        try await traced.shutdown()
        try await ahc.shutdown()
        let sa = Summary.ms(a), sb = Summary.ms(b), st = Summary.ms(t)
        func pct(_ x: Double, _ base: Double) -> Double { base > 0 ? (x - base) / base * 100 : 0 }
        return FreeReport(calls: count, plainAsyncHTTPClientMs: sa, routeweilerBareMs: sb, routeweilerTracedMs: st,
                          bareOverheadP50Percent: pct(sb.p50, sa.p50), tracedOverheadP50Percent: pct(st.p50, sa.p50),
                          bareOverheadMeanPercent: pct(sb.mean, sa.mean), tracedOverheadMeanPercent: pct(st.mean, sa.mean))
    }

    // MARK: Concurrent paid calls

    func concurrent(inFlight: Int, calls: Int, reuse: Bool) async throws -> ConcurrentReport {
        let dir = try BenchConfig.freshDirectory("conc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try BenchConfig.full(target: target, directory: dir, reuse: reuse, probe: false)
        let lndBefore = target.payeePayments?()
        let url = target.paidURL
        let (latencies, paid, seconds) = try await RouteweilerClient.withClient(configuration: config) { rw in
            try await rw.start()
            let t0 = nowNanos()
            let (latencies, paid) = try await withThrowingTaskGroup(of: ([UInt64], Int).self) { group in
                let base = calls / inFlight, extra = calls % inFlight
                for w in 0..<inFlight {
                    let n = base + (w < extra ? 1 : 0)
                    if n == 0 { continue }
                    group.addTask {
                        var l: [UInt64] = []
                        l.reserveCapacity(n)
                        var paid = 0
                        for _ in 0..<n {
                            let s = nowNanos()
                            let r = try await rw.get(url)
                            l.append(nowNanos() - s)
                            guard r.status.code == 200 else { throw BenchFailure("concurrent call answered \(r.status.code)") }
                            if r.payment != nil { paid += 1 }
                        }
                        return (l, paid)
                    }
                }
                var all: [UInt64] = []
                var paid = 0
                for try await (l, p) in group {
                    all += l
                    paid += p
                }
                return (all, paid)
            }
            return (latencies, paid, Double(nowNanos() - t0) / 1e9)
        }
        let db = dir + "/routeweiler.db"
        let rows = try await SQLiteTraceSink(path: db).count()
        let balance = try await SQLiteBudgetStore(path: db, keystore: EnvelopeKeystore(directory: dir + "/keys"))
            .balance(envelopeID: "bench")
        let lnd = lndBefore.map { (target.payeePayments?() ?? 0) - $0 }
        let ok = rows == calls && balance.reservedMinorUnits == 0 && (lnd == nil || lnd == paid)
            && (paid == 0 ? balance.settledMinorUnits == 0 : balance.settledMinorUnits % Int64(paid) == 0
                && balance.settledMinorUnits / Int64(paid) >= 1)
        return ConcurrentReport(inFlight: inFlight, reuseCredentials: reuse, calls: calls, seconds: seconds,
                                callsPerSecond: Double(calls) / seconds, latencyMs: .ms(latencies), paidCalls: paid,
                                payeePayments: lnd, traceRows: rows, settledMinorUnits: balance.settledMinorUnits,
                                reservedMinorUnits: balance.reservedMinorUnits, moneyChecksPass: ok)
    }

    // MARK: The cap under concurrency

    func capCheck(inFlight: Int, cap: Int64, calls: Int) async throws -> CapReport {
        let dir = try BenchConfig.freshDirectory("cap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try BenchConfig.full(target: target, directory: dir, reuse: false, capMinorUnits: cap, probe: false)
        let lndBefore = target.payeePayments?()
        let url = target.paidURL
        let counts = try await RouteweilerClient.withClient(configuration: config) { rw in
            try await rw.start()
            return try await withThrowingTaskGroup(of: [String: Int].self) { group in
                let base = calls / inFlight, extra = calls % inFlight
                for w in 0..<inFlight {
                    let n = base + (w < extra ? 1 : 0)
                    group.addTask {
                        var c: [String: Int] = [:]
                        for _ in 0..<n {
                            do {
                                let r = try await rw.get(url)
                                c[r.payment != nil && r.status.code == 200 ? "paid" : "other", default: 0] += 1
                            } catch is BudgetExceededError {
                                c["exceeded", default: 0] += 1
                            } catch {
                                c["other", default: 0] += 1
                            }
                        }
                        return c
                    }
                }
                var all: [String: Int] = [:]
                for try await c in group { all.merge(c, uniquingKeysWith: +) }
                return all
            }
        }
        let db = dir + "/routeweiler.db"
        let rows = try await SQLiteTraceSink(path: db).count()
        let balance = try await SQLiteBudgetStore(path: db, keystore: EnvelopeKeystore(directory: dir + "/keys"))
            .balance(envelopeID: "bench")
        let lnd = lndBefore.map { (target.payeePayments?() ?? 0) - $0 }
        let paid = counts["paid"] ?? 0
        let holds = balance.settledMinorUnits <= cap && balance.reservedMinorUnits == 0 && rows == calls
            && (lnd == nil || lnd == paid) && paid + (counts["exceeded"] ?? 0) == calls && paid > 0
            && cap - balance.settledMinorUnits < balance.settledMinorUnits / Int64(paid)  // no room for one more call
        return CapReport(inFlight: inFlight, capMinorUnits: cap, calls: calls, paidCalls: paid,
                         refusedBudgetExceeded: counts["exceeded"] ?? 0, otherErrors: counts["other"] ?? 0,
                         payeePayments: lnd, settledMinorUnits: balance.settledMinorUnits,
                         reservedMinorUnits: balance.reservedMinorUnits, traceRows: rows, holds: holds)
    }
}
