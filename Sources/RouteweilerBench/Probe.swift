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
    var reserveStart: UInt64 = 0
    var reserveEnd: UInt64 = 0
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
        start > 0 && challenged >= start && reserveStart >= challenged && selected >= reserveEnd && reserveEnd >= reserveStart
            && payStart >= selected && payEnd >= payStart
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

/// A budget store that stamps the reservation call (reserve + intent, one transaction) on the current call's probe;
/// everything goes to the wrapped store.
struct TimedBudgetStore: BudgetStore {
    let inner: any BudgetStore

    func reserve(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64, rail: RailID,
                 lease: Duration, now: Date, recording intent: PaymentIntent, in journal: any PaymentJournal)
        async throws -> DrawReceipt
    {
        let probe = CallProbe.current
        probe?.reserveStart = nowNanos()
        defer { probe?.reserveEnd = nowNanos() }
        return try await inner.reserve(envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                                       amountMinorUnits: amountMinorUnits, rail: rail, lease: lease, now: now,
                                       recording: intent, in: journal)
    }
    func reserveSigningLater(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64,
                             rail: RailID, lease: Duration, now: Date, recording intent: PaymentIntent,
                             in journal: any PaymentJournal, committingOnlyIf check: DeferredOfferCheck?)
        async throws -> DrawReceipt {
        let probe = CallProbe.current
        probe?.reserveStart = nowNanos()
        defer { probe?.reserveEnd = nowNanos() }
        return try await inner.reserveSigningLater(
            envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
            amountMinorUnits: amountMinorUnits, rail: rail, lease: lease, now: now, recording: intent, in: journal,
            committingOnlyIf: check)
    }
    func settle(drawID: String, amountMinorUnits: Int64, now: Date, resolving intentID: String, proof: String?,
                in journal: any PaymentJournal) async throws {
        try await inner.settle(drawID: drawID, amountMinorUnits: amountMinorUnits, now: now, resolving: intentID,
                               proof: proof, in: journal)
    }
    func createEnvelope(_ spec: BudgetEnvelope, now: Date) async throws -> EnvelopeRecord {
        try await inner.createEnvelope(spec, now: now)
    }
    func createEnvelopeIfAbsent(_ spec: BudgetEnvelope, now: Date) async throws -> Bool {
        try await inner.createEnvelopeIfAbsent(spec, now: now)
    }
    func envelope(id: String) async throws -> EnvelopeRecord? { try await inner.envelope(id: id) }
    func envelopes() async throws -> [EnvelopeRecord] { try await inner.envelopes() }
    func balance(envelopeID: String) async throws -> EnvelopeBalance { try await inner.balance(envelopeID: envelopeID) }
    func reserve(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64, rail: RailID,
                 lease: Duration, now: Date) async throws -> DrawReceipt {
        try await inner.reserve(envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                                amountMinorUnits: amountMinorUnits, rail: rail, lease: lease, now: now)
    }
    func settle(drawID: String, amountMinorUnits: Int64, now: Date) async throws {
        try await inner.settle(drawID: drawID, amountMinorUnits: amountMinorUnits, now: now)
    }
    func release(drawID: String, now: Date) async throws { try await inner.release(drawID: drawID, now: now) }
    func sweepExpired(now: Date) async throws -> Int { try await inner.sweepExpired(now: now) }
    func draws(envelopeID: String) async throws -> [DrawRecord] { try await inner.draws(envelopeID: envelopeID) }
    func verify(_ receipt: DrawReceipt) async throws { try await inner.verify(receipt) }
}
