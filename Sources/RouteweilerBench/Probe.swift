import Foundation
import Routeweiler
import RouteweilerL402
import RouteweilerWire

/// Timestamps of one call's steps, filled from ``FlowEvent``s and the timed Lightning node. A call runs in one task
/// chain, so the probe is reached through a task-local and written without locks.
final class CallProbe: @unchecked Sendable {
    @TaskLocal static var current: CallProbe?

    var start: UInt64 = 0
    var challenged: UInt64 = 0
    var selected: UInt64 = 0
    var payStart: UInt64 = 0
    var payEnd: UInt64 = 0
    var paid: UInt64 = 0
    var retrying: UInt64 = 0
    var completed: UInt64 = 0
    var end: UInt64 = 0

    /// The `onEvent` hook that stamps the current call's probe.
    static let onEvent: @Sendable (FlowEvent) -> Void = { event in
        guard let probe = CallProbe.current else { return }
        let t = nowNanos()
        switch event {
        case .challenged: probe.challenged = t
        case .offerSelected: probe.selected = t
        case .paid: probe.paid = t
        case .retrying: if probe.retrying == 0 { probe.retrying = t }
        case .completed: probe.completed = t
        default: break
        }
    }

    /// Whether every step of a paid call was seen.
    var complete: Bool {
        start > 0 && challenged >= start && selected >= challenged && payStart >= selected && payEnd >= payStart
            && paid >= payEnd && retrying >= paid && completed >= retrying && end >= completed
    }
}

/// A Lightning node that stamps the start and end of each payment on the current call's probe; everything else
/// goes straight to the wrapped node (one LND client, one gRPC channel, shared by every call).
struct TimedNode: LightningNode {
    let inner: any LightningNode

    func nodeInfo() async throws -> LightningNodeInfo { try await inner.nodeInfo() }

    func pay(invoice: Bolt11Invoice, maxFeeMsat: UInt64, timeout: Duration) async throws -> LightningPayment {
        let probe = CallProbe.current
        probe?.payStart = nowNanos()
        defer { probe?.payEnd = nowNanos() }
        return try await inner.pay(invoice: invoice, maxFeeMsat: maxFeeMsat, timeout: timeout)
    }

    func paymentStatus(paymentHash: [UInt8]) async throws -> LightningPaymentStatus {
        try await inner.paymentStatus(paymentHash: paymentHash)
    }
}
