import CoreMetrics
import Foundation
import Instrumentation
public import Tracing

/// Metrics and spans for each call, derived from its one trace event so that what is counted is what is recorded.
///
/// Metrics (swift-metrics, the factory bootstrapped by the application or ``RouteweilerClient/Configuration/metricsFactory``):
/// - `routeweiler_calls_total{outcome, rail}`: every call; outcome `free`, `paid`, `reused` or `failed`;
/// - `routeweiler_payments_total{rail}` and `routeweiler_amount_native_total{rail, currency}` for each payment;
/// - `routeweiler_amount_envelope_minor_units_total{rail, currency}` when the payment had a fair-market value;
/// - `routeweiler_failures_total{rail, reason}`: the error name (`BudgetExceededError`, …);
/// - `routeweiler_call_duration_seconds{outcome}` and `routeweiler_settlement_seconds{rail}` timers.
///
/// Spans (swift-distributed-tracing): `routeweiler.call` with children `routeweiler.challenge` (routing a 402),
/// `routeweiler.pay` and `routeweiler.retry`. Labels and attributes carry rails, statuses, amounts and error
/// names only: never a URL query, a token, a preimage, a key or a header value.
struct Observability: Sendable {
    let metrics: any MetricsFactory
    let tracer: any Tracer
    /// Whether spans go anywhere (a bootstrapped or configured tracer rather than the no-op one).
    let tracing: Bool
    /// Whether metrics go anywhere (a bootstrapped or configured factory rather than the no-op one).
    let counting: Bool

    init(metrics: any MetricsFactory, tracer: any Tracer) {
        self.metrics = metrics
        self.tracer = tracer
        self.tracing = !(tracer is NoOpTracer)
        self.counting = !(metrics is NOOPMetricsHandler)
    }

    /// Carries the call's trace event from the place it is recorded to the call span.
    final class CallRecord: @unchecked Sendable {
        // Written and read by the one task running the call.
        var event: TraceEvent?
    }

    @TaskLocal static var currentCall: CallRecord?

    /// Runs one call inside a `routeweiler.call` span and sets its attributes from the recorded event.
    func call<T: Sendable>(method: String, origin: String, _ body: () async throws -> T) async throws -> T {
        // No tracer bootstrapped (the default): no span to start, no task-locals to bind on every call.
        if tracing == false { return try await body() }
        let span = tracer.startSpan("routeweiler.call", ofKind: .client)
        defer { span.end() }
        span.attributes["http.request.method"] = method
        span.attributes["routeweiler.origin"] = origin
        let record = CallRecord()
        do {
            let result = try await Self.$currentCall.withValue(record) {
                try await InstrumentationContext.$current.withValue(span.context) { try await body() }
            }
            annotate(span, record.event)
            return result
        } catch {
            annotate(span, record.event)
            if let e = error as? any RouteweilerError {
                span.setStatus(.init(code: .error, message: e.errorName))
                span.attributes["error.type"] = e.errorName
            } else {
                span.setStatus(.init(code: .error, message: String(describing: type(of: error))))
            }
            throw error
        }
    }

    /// A child span of the current call (`routeweiler.challenge`, `routeweiler.pay`, `routeweiler.retry`).
    /// Without a tracer it is a shared no-op span, and the attributes are not even computed.
    func child(_ name: String, attributes: @autoclosure () -> [String: String] = [:]) -> any Span {
        guard tracing else { return Self.noSpan }
        let span = tracer.startSpan(name, ofKind: .internal)
        for (key, value) in attributes() { span.attributes[key] = value }
        return span
    }

    private static let noSpan: any Span = NoOpTracer().startSpan("routeweiler.none", ofKind: .internal)

    private func annotate(_ span: any Span, _ event: TraceEvent?) {
        guard let event else { return }
        if let rail = event.selectedRail { span.attributes["routeweiler.rail"] = rail.rawValue }
        if let status = event.outcome.httpStatus { span.attributes["http.response.status_code"] = status }
        if let p = event.payment {
            span.attributes["routeweiler.amount_native"] = Int64(clamping: p.amountNative)
            span.attributes["routeweiler.amount_native_currency"] = p.amountNativeCurrency
            span.attributes["routeweiler.proof_type"] = p.proofType.rawValue
        }
        if let reservation = event.reservation { span.attributes["routeweiler.envelope"] = reservation.envelopeId }
        if let error = event.outcome.error { span.attributes["routeweiler.error"] = error.code }
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
    }

    /// Counts one finished call.
    func observe(_ event: TraceEvent, elapsed: Duration) {
        Self.currentCall?.event = event
        guard counting else { return }
        let rail = event.selectedRail?.rawValue ?? "none"
        let outcome: String
        if event.outcome.error != nil {
            outcome = "failed"
        } else if event.credentialState == "reused" {
            outcome = "reused"
        } else if event.payment != nil {
            outcome = "paid"
        } else {
            outcome = "free"
        }
        Counter(label: "routeweiler_calls_total", dimensions: [("outcome", outcome), ("rail", rail)], factory: metrics)
            .increment()
        CoreMetrics.Timer(label: "routeweiler_call_duration_seconds", dimensions: [("outcome", outcome)], factory: metrics)
            .recordNanoseconds(Self.nanoseconds(elapsed))
        if let error = event.outcome.error {
            Counter(label: "routeweiler_failures_total", dimensions: [("rail", rail), ("reason", error.code)],
                    factory: metrics).increment()
        }
        if let p = event.payment {
            Counter(label: "routeweiler_payments_total", dimensions: [("rail", rail)], factory: metrics).increment()
            Counter(label: "routeweiler_amount_native_total",
                    dimensions: [("rail", rail), ("currency", p.amountNativeCurrency)], factory: metrics)
                .increment(by: Int64(clamping: p.amountNative))
            if let minor = event.reservation?.settledMinorUnits, let currency = p.amountEnvelopeCurrency {
                Counter(label: "routeweiler_amount_envelope_minor_units_total",
                        dimensions: [("rail", rail), ("currency", currency)], factory: metrics).increment(by: minor)
            }
            CoreMetrics.Timer(label: "routeweiler_settlement_seconds", dimensions: [("rail", rail)], factory: metrics)
                .recordMilliseconds(p.settlementLatencyMs)
        }
    }
}
