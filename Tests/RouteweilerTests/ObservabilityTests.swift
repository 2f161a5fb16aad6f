import Foundation
import InMemoryTracing
import Logging
import MetricsTestKit
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire
import Testing
import Tracing

/// Metrics and spans for paid, free and failed calls; and no secret in any label, attribute or log line.
@Suite(.serialized) struct ObservabilityTests {
    @Test func aPaidCallIsASpanWithChildrenAndCountedInMetrics() async throws {
        try await Stack.run { stack in
            let metrics = TestMetrics()
            let tracer = InMemoryTracer()
            let handler = CollectingLogHandler()
            var config = stack.configuration()
            config.metricsFactory = metrics
            config.tracer = tracer
            config.logger = Logger(label: "test", factory: { _ in handler })
            config.reuseCredentials = false
            let (paid, free) = try await RouteweilerClient.withClient(configuration: config) { rw in
                (try await rw.get(stack.paywall.url("/protected")), try await rw.get(stack.paywall.url("/free")))
            }
            #expect(paid.payment != nil && free.payment == nil)

            let spans = tracer.finishedSpans
            let calls = spans.filter { $0.operationName == "routeweiler.call" }
            #expect(calls.count == 2)
            let paidCall = try #require(calls.first { $0.attributes["routeweiler.rail"]?.toSpanAttribute() == .string("l402") })
            for child in ["routeweiler.challenge", "routeweiler.pay", "routeweiler.retry"] {
                let span = try #require(spans.first { $0.operationName == child }, "\(child)")
                #expect(span.traceID == paidCall.traceID)
                #expect(span.spanContext.parentSpanID == paidCall.spanID)
            }
            #expect(paidCall.attributes["routeweiler.amount_native"]?.toSpanAttribute() == .int64(10))
            #expect(paidCall.attributes["http.response.status_code"]?.toSpanAttribute() == .int64(200))

            let paidCounter = try metrics.expectCounter("routeweiler_calls_total", [("outcome", "paid"), ("rail", "l402")])
            #expect(paidCounter.totalValue == 1)
            #expect(try metrics.expectCounter("routeweiler_calls_total", [("outcome", "free"), ("rail", "none")]).totalValue == 1)
            #expect(try metrics.expectCounter("routeweiler_payments_total", [("rail", "l402")]).totalValue == 1)
            #expect(try metrics.expectCounter("routeweiler_amount_native_total",
                                              [("rail", "l402"), ("currency", "btc-lightning")]).totalValue == 10)
            #expect(try metrics.expectTimer("routeweiler_call_duration_seconds", [("outcome", "paid")]).values.count == 1)

            // No secret anywhere: the macaroon, the preimage, the L402 header.
            let preimage = try #require(paid.payment?.proofValue)
            var exported: [String] = []
            for span in spans {
                exported.append(span.operationName)
                span.attributes.forEach { key, value in exported.append("\(key)=\(value)") }
            }
            exported += metrics.counters.flatMap { c in [c.label] + c.dimensions.map { "\($0.0)=\($0.1)" } }
            exported += handler.lines.withLock { $0 }
            for line in exported {
                #expect(!line.contains(preimage), "preimage in \(line)")
                #expect(!line.contains("AgEM"), "macaroon in \(line)")
                #expect(!line.contains("L402 "), "credential in \(line)")
            }
        }
    }

    @Test func aFailedCallCountsItsReason() async throws {
        var paywall = FakePaywall.Configuration()
        paywall.network = .bitcoin  // the node is on regtest: refused before paying
        try await Stack.run(paywall: paywall) { stack in
            let metrics = TestMetrics()
            let tracer = InMemoryTracer()
            var config = stack.configuration()
            config.metricsFactory = metrics
            config.tracer = tracer
            await #expect(throws: NoFundingForRailError.self) {
                try await RouteweilerClient.withClient(configuration: config) { rw in
                    _ = try await rw.get(stack.paywall.url("/protected"))
                }
            }
            #expect(try metrics.expectCounter("routeweiler_failures_total",
                                              [("rail", "none"), ("reason", "NoFundingForRailError")]).totalValue == 1)
            let call = try #require(tracer.finishedSpans.first { $0.operationName == "routeweiler.call" })
            #expect(call.status?.code == .error)
            #expect(call.attributes["error.type"]?.toSpanAttribute() == .string("NoFundingForRailError"))
            #expect(!tracer.finishedSpans.contains { $0.operationName == "routeweiler.pay" })
        }
    }
}
