import ArgumentParser
import Routeweiler
import Foundation

@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routeweiler-bench",
        abstract: "Measure what Routeweiler adds to a paid HTTP 402 call.",
        subcommands: [RunCommand.self, ServeCommand.self, LNDRSSCommand.self],
        defaultSubcommand: RunCommand.self
    )
}

struct BenchReport: Codable, Sendable {
    struct Machine: Codable, Sendable {
        var cores: Int
        var loadAverageStart: [Double]
        var loadAverageEnd: [Double]
        var date: String
    }
    var machine: Machine
    var target: String
    var rail: String
    var traceWrites: String?
    var sequentialPaid: SequentialPaidReport?
    var free: FreeReport?
    var concurrent: [ConcurrentReport]
    var capCheck: CapReport?
    var micro: [MicroResult]?
    var peakRSSMiB: Double?
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Drive the real client against --url and an LND node (flags or POLAR_*), or the built-in paywall and fake LND."
    )

    @OptionGroup var lnd: BenchLNDOptions
    @OptionGroup var evm: BenchEVMOptions

    @Option(name: .customLong("url"), help: "Paid URL (needs an LND node). Default: the built-in paywall's /protected.")
    var url: String?

    @Option(name: .customLong("free-url"), help: "Free URL for the free-call comparison (default: the built-in /free).")
    var freeURL: String?

    @Option(name: .customLong("rail"), help: "Rail to pay on: l402 (LND) or x402 (EIP-3009 USDC signed locally).")
    var rail: String = "l402"

    @Flag(name: .customLong("isolate"),
          help: "Run the built-in paywall (and fake LND) in a child process, so peak RSS and CPU are the client's alone.")
    var isolate = false

    @Option(name: .customLong("count"), help: "Sequential paid calls, and sequential free calls.")
    var count: Int = 1000

    @Option(name: .customLong("warmup"), help: "Untimed calls before each sequential series.")
    var warmup: Int = 50

    @Option(name: .customLong("concurrency"), help: "Comma-separated calls in flight for the concurrent runs.")
    var concurrency: String = "1,8,64,256"

    @Option(name: .customLong("concurrent-calls"), help: "Calls per concurrent run.")
    var concurrentCalls: Int = 1000

    @Option(name: .customLong("scenarios"), help: "Comma-separated: paid,free,concurrent,cap (default all).")
    var scenarios: String = "paid,free,concurrent,cap"

    @Flag(name: .customLong("no-reuse"), help: "Concurrent runs with credential reuse off only (every call pays).")
    var noReuse = false

    @Flag(name: .customLong("micro"), help: "Run the micro-benchmarks of our own work instead of the call benchmarks.")
    var micro = false

    @Flag(name: .customLong("micro-client-only"),
          help: "With --micro: only the free calls through the whole client (no network), bare and traced.")
    var microClientOnly = false

    @Option(name: .customLong("iterations"), help: "Iterations of each micro-benchmark.")
    var iterations: Int = 10_000

    @Option(name: .customLong("price-sats"), help: "Price of the built-in paywall in sats.")
    var priceSats: UInt64 = 10

    @Option(name: .customLong("trace-writes"), help: "SQLite trace rows: behind (the default: queued, written by a background task) or immediate (written before the call returns).")
    var traceWrites: String = "behind"

    @Flag(name: .customLong("json"), help: "Print the report as one JSON object.")
    var json = false

    @Option(name: .customLong("json-out"), help: "Also write the report as JSON to this file.")
    var jsonOut: String?

    func validate() throws {
        guard rail == "l402" || rail == "x402" else { throw ValidationError("--rail: l402 or x402") }
        guard ["behind", "immediate"].contains(traceWrites) else { throw ValidationError("--trace-writes: behind or immediate") }
        guard count > 0, concurrentCalls > 0, iterations > 0, warmup >= 0 else {
            throw ValidationError("counts must be positive")
        }
        guard levels.allSatisfy({ $0 > 0 }), !levels.isEmpty else { throw ValidationError("bad --concurrency") }
    }

    var levels: [Int] { concurrency.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
    var selected: Set<String> { Set(scenarios.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }

    func run() async throws {
        BenchConfig.traceWrites = traceWrites == "immediate" ? .immediate : .writeBehind
        let json = self.json
        let log: @Sendable (String) -> Void = { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        let loadStart = Self.loadAverage()
        var report = BenchReport(
            machine: .init(cores: ProcessInfo.processInfo.activeProcessorCount, loadAverageStart: loadStart,
                           loadAverageEnd: [], date: ISO8601DateFormatter().string(from: Date())),
            target: "", rail: rail, traceWrites: traceWrites, sequentialPaid: nil, free: nil, concurrent: [], capCheck: nil, micro: nil,
            peakRSSMiB: nil)
        if micro {
            report.target = "micro-benchmarks (no network)"
            report.micro = try await Micro(iterations: iterations, clientOnly: microClientOnly, log: log).run()
        } else {
            let selected = self.selected, levels = self.levels
            let (count, warmup, concurrentCalls, noReuse) = (self.count, self.warmup, self.concurrentCalls, self.noReuse)
            let initial = report
            report = try await BenchTargets.with(
                url: url, freeURL: freeURL, rail: RailID(rail), lnd: lnd, evm: evm, priceSats: priceSats,
                placement: isolate ? .isolated : .inProcess
            ) { target in
                var report = initial
                report.target = target.description
                let scenarios = Scenarios(target: target, log: log)
                if selected.contains("paid") {
                    log("sequential paid calls: \(count) (+\(warmup) warm-up), reuse off")
                    report.sequentialPaid = try await scenarios.sequentialPaid(count: count, warmup: warmup)
                }
                if selected.contains("free") {
                    log("sequential free calls: \(count) (+\(warmup) warm-up), interleaved with plain AsyncHTTPClient")
                    report.free = try await scenarios.free(count: count, warmup: warmup)
                }
                if selected.contains("concurrent") {
                    for reuse in noReuse ? [false] : [true, false] {
                        for level in levels {
                            log("concurrent: \(concurrentCalls) calls, \(level) in flight, reuse \(reuse ? "on" : "off")")
                            report.concurrent.append(try await scenarios.concurrent(
                                inFlight: level, calls: max(concurrentCalls, level), reuse: reuse))
                        }
                    }
                }
                if selected.contains("cap") {
                    let inFlight = levels.max() ?? 256
                    log("cap check: cap 100 cents, \(inFlight) in flight, \(max(400, inFlight * 2)) calls")
                    report.capCheck = try await scenarios.capCheck(inFlight: inFlight, cap: 100,
                                                                   calls: max(400, inFlight * 2))
                }
                return report
            }
        }
        report.machine.loadAverageEnd = Self.loadAverage()
        report.peakRSSMiB = Memory.peakMiB
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        if let jsonOut { try encoder.encode(report).write(to: URL(fileURLWithPath: jsonOut)) }
        if json {
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(TextReport.render(report))
        }
        if let cap = report.capCheck, !cap.holds { throw ExitCode(2) }
        if report.concurrent.contains(where: { !$0.moneyChecksPass }) { throw ExitCode(2) }
    }

    static func loadAverage() -> [Double] {
        var loads = [Double](repeating: 0, count: 3)
        let n = getloadavg(&loads, 3)
        return n == 3 ? loads : []
    }
}

enum TextReport {
    static func row(_ name: String, _ s: Summary) -> String {
        pad(name, 30) + lpad(fmt(s.mean), 9) + lpad(fmt(s.p50), 9) + lpad(fmt(s.p95), 9) + lpad(fmt(s.max), 10)
    }
    static let header = pad("", 30) + lpad("mean", 9) + lpad("p50", 9) + lpad("p95", 9) + lpad("max", 10)

    static func render(_ r: BenchReport) -> String {
        var out: [String] = []
        out.append("routeweiler-bench — \(r.target)")
        out.append("machine: \(r.machine.cores) cores, load average \(r.machine.loadAverageStart.map { fmt($0, 2) }.joined(separator: " ")) at start, \(r.machine.loadAverageEnd.map { fmt($0, 2) }.joined(separator: " ")) at end; \(r.machine.date)")
        if let s = r.sequentialPaid {
            out.append("")
            out.append("Sequential paid calls (\(s.calls), rail \(r.rail), every call pays: reuse off; SQLite trace + budget envelope + journal + policy), ms")
            out.append("  pay = \(r.rail == "x402" ? "the EIP-712 signature (local secp256k1)" : "the LND SendPaymentV2 call")")
            out.append(header)
            out.append(row("total", s.totalMs))
            for k in ["challenge", "pay", "paid_retry", "bookkeeping"] { if let v = s.phasesMs[k] { out.append(row("  " + k, v)) } }
            for k in ["route", "reserve_journal", "reserve_journal.transaction", "settle_resolve", "to_retry", "trace"] {
                if let v = s.bookkeepingSplitMs[k] { out.append(row("    bookkeeping." + k, v)) }
            }
            if let n = s.payeePayments { out.append("  payee payments: \(n)") }
        }
        if let f = r.free {
            out.append("")
            out.append("Sequential free calls (\(f.calls), interleaved), ms")
            out.append(header)
            out.append(row("plain AsyncHTTPClient", f.plainAsyncHTTPClientMs))
            out.append(row("routeweiler (bare)", f.routeweilerBareMs))
            out.append(row("routeweiler (SQLite trace)", f.routeweilerTracedMs))
            out.append("  overhead vs AHC at p50: bare \(fmt(f.bareOverheadP50Percent, 1)) %, traced \(fmt(f.tracedOverheadP50Percent, 1)) %; at mean: bare \(fmt(f.bareOverheadMeanPercent, 1)) %, traced \(fmt(f.tracedOverheadMeanPercent, 1)) %")
        }
        if !r.concurrent.isEmpty {
            out.append("")
            out.append("Concurrent paid calls (SQLite trace + budget envelope on)")
            out.append(pad("in flight", 10) + pad("reuse", 7) + lpad("calls", 7) + lpad("calls/s", 10) + lpad("p50 ms", 9)
                       + lpad("p95 ms", 9) + lpad("max ms", 9) + lpad("paid", 7) + lpad("rows", 7) + lpad("settled", 9) + "  money")
            for c in r.concurrent {
                out.append(pad("\(c.inFlight)", 10) + pad(c.reuseCredentials ? "on" : "off", 7) + lpad("\(c.calls)", 7)
                           + lpad(fmt(c.callsPerSecond, 0), 10) + lpad(fmt(c.latencyMs.p50, 2), 9)
                           + lpad(fmt(c.latencyMs.p95, 2), 9) + lpad(fmt(c.latencyMs.max, 2), 9) + lpad("\(c.paidCalls)", 7)
                           + lpad("\(c.traceRows)", 7) + lpad("\(c.settledMinorUnits)", 9) + "  " + (c.moneyChecksPass ? "ok" : "FAILED"))
            }
        }
        if let c = r.capCheck {
            out.append("")
            out.append("Cap under concurrency: cap \(c.capMinorUnits) cents, \(c.inFlight) in flight, \(c.calls) calls, reuse off → paid \(c.paidCalls), refused \(c.refusedBudgetExceeded), other errors \(c.otherErrors), payee payments \(c.payeePayments.map(String.init) ?? "-"), settled \(c.settledMinorUnits), reserved \(c.reservedMinorUnits), trace rows \(c.traceRows): \(c.holds ? "cap holds exactly" : "CAP CHECK FAILED")")
        }
        if let m = r.micro {
            out.append("")
            out.append("Micro-benchmarks, µs per operation")
            out.append(pad("", 36) + lpad("mean", 9) + lpad("p50", 9) + lpad("p95", 9) + lpad("iters", 8) + "  what")
            for x in m {
                out.append(pad(x.name, 36) + lpad(fmt(x.us.mean, 2), 9) + lpad(fmt(x.us.p50, 2), 9) + lpad(fmt(x.us.p95, 2), 9)
                           + lpad("\(x.iterations)", 8) + "  " + x.note)
            }
        }
        out.append("")
        out.append("peak RSS (VmHWM): \(r.peakRSSMiB.map { fmt($0, 1) } ?? "?") MiB")
        return out.joined(separator: "\n")
    }
}
