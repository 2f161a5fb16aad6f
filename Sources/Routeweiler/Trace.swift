import Foundation

/// One finished call, as stored in `trace_events` (SPEC §12). Encoded as camelCase JSON with nulls present.
public struct TraceEvent: Sendable, Codable, Hashable {
    public struct Outcome: Sendable, Codable, Hashable {
        public struct ErrorInfo: Sendable, Codable, Hashable {
            public var code: String
            public var message: String
            public init(code: String, message: String) {
                self.code = code
                self.message = message
            }
        }
        public var httpStatus: Int?
        public var serviceDelivered: Bool
        public var serviceLatencyMs: Int
        public var error: ErrorInfo?
        public init(httpStatus: Int?, serviceDelivered: Bool, serviceLatencyMs: Int, error: ErrorInfo? = nil) {
            self.httpStatus = httpStatus
            self.serviceDelivered = serviceDelivered
            self.serviceLatencyMs = serviceLatencyMs
            self.error = error
        }
        enum CodingKeys: String, CodingKey { case httpStatus, serviceDelivered, serviceLatencyMs, error }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(httpStatus, forKey: .httpStatus)
            try c.encode(serviceDelivered, forKey: .serviceDelivered)
            try c.encode(serviceLatencyMs, forKey: .serviceLatencyMs)
            try c.encode(error, forKey: .error)
        }
    }

    public struct Payment: Sendable, Codable, Hashable {
        public var proofType: ProofType
        public var proofValue: String?
        public var amountNative: UInt64
        public var amountNativeCurrency: String
        public var amountEnvelope: Double?
        public var amountEnvelopeCurrency: String?
        public var fmvQuality: FmvQuality
        public var settlementLatencyMs: Int
        /// The server's settlement receipt (x402 `PAYMENT-RESPONSE`, MPP `Payment-Receipt`), when it sent one.
        public var settlement: SettlementReceipt?
        public init(proofType: ProofType, proofValue: String?, amountNative: UInt64, amountNativeCurrency: String,
                    amountEnvelope: Double?, amountEnvelopeCurrency: String?, fmvQuality: FmvQuality,
                    settlementLatencyMs: Int, settlement: SettlementReceipt? = nil) {
            self.settlement = settlement
            self.proofType = proofType
            self.proofValue = proofValue
            self.amountNative = amountNative
            self.amountNativeCurrency = amountNativeCurrency
            self.amountEnvelope = amountEnvelope
            self.amountEnvelopeCurrency = amountEnvelopeCurrency
            self.fmvQuality = fmvQuality
            self.settlementLatencyMs = settlementLatencyMs
        }
        enum CodingKeys: String, CodingKey {
            case proofType, proofValue, amountNative, amountNativeCurrency, amountEnvelope, amountEnvelopeCurrency,
                fmvQuality, settlementLatencyMs, settlement
        }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(proofType, forKey: .proofType)
            try c.encode(proofValue, forKey: .proofValue)
            try c.encode(amountNative, forKey: .amountNative)
            try c.encode(amountNativeCurrency, forKey: .amountNativeCurrency)
            try c.encode(amountEnvelope, forKey: .amountEnvelope)
            try c.encode(amountEnvelopeCurrency, forKey: .amountEnvelopeCurrency)
            try c.encode(fmvQuality, forKey: .fmvQuality)
            try c.encode(settlementLatencyMs, forKey: .settlementLatencyMs)
            try c.encode(settlement, forKey: .settlement)
        }
    }

    public struct Reconciliation: Sendable, Codable, Hashable {
        public var taxCategory: String?
        public var vatApplicable: Bool
        public var invoiceReference: String?
        public init(taxCategory: String? = nil, vatApplicable: Bool = false, invoiceReference: String? = nil) {
            self.taxCategory = taxCategory
            self.vatApplicable = vatApplicable
            self.invoiceReference = invoiceReference
        }
        enum CodingKeys: String, CodingKey { case taxCategory, vatApplicable, invoiceReference }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(taxCategory, forKey: .taxCategory)
            try c.encode(vatApplicable, forKey: .vatApplicable)
            try c.encode(invoiceReference, forKey: .invoiceReference)
        }
    }

    /// The policy's verdict on the offer that was paid or refused.
    public struct PolicyVerdict: Sendable, Codable, Hashable {
        /// `allow` or `deny`.
        public var verdict: String
        public var ruleName: String?
        public init(verdict: String, ruleName: String?) {
            self.verdict = verdict
            self.ruleName = ruleName
        }
        enum CodingKeys: String, CodingKey { case verdict, ruleName }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(verdict, forKey: .verdict)
            try c.encode(ruleName, forKey: .ruleName)
        }
    }

    /// The budget reservation of the call.
    public struct Reservation: Sendable, Codable, Hashable {
        public var envelopeId: String
        public var drawId: String?
        public var currency: String
        public var reservedMinorUnits: Int64?
        public var settledMinorUnits: Int64?
        /// `reserved` (outcome unknown), `settled`, `rolled_back`, or `none` (refused before reserving).
        public var state: String
        public init(envelopeId: String, drawId: String?, currency: String, reservedMinorUnits: Int64?,
                    settledMinorUnits: Int64?, state: String) {
            self.envelopeId = envelopeId
            self.drawId = drawId
            self.currency = currency
            self.reservedMinorUnits = reservedMinorUnits
            self.settledMinorUnits = settledMinorUnits
            self.state = state
        }
        enum CodingKeys: String, CodingKey { case envelopeId, drawId, currency, reservedMinorUnits, settledMinorUnits, state }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(envelopeId, forKey: .envelopeId)
            try c.encode(drawId, forKey: .drawId)
            try c.encode(currency, forKey: .currency)
            try c.encode(reservedMinorUnits, forKey: .reservedMinorUnits)
            try c.encode(settledMinorUnits, forKey: .settledMinorUnits)
            try c.encode(state, forKey: .state)
        }
    }

    public var requestId: String
    public var parentRequestId: String?
    public var agentId: String?
    public var envelopeId: String?
    public var policyHash: String
    /// The request's method and URL (also on free calls, unlike the reference).
    public var method: String?
    public var url: String?
    public var challenge: NormalizedChallenge?
    public var selectedRail: RailID?
    public var fallbackFrom: RailID?
    public var facilitator: String?
    public var fundingSource: String?
    public var payment: Payment?
    public var outcome: Outcome
    public var reconciliation: Reconciliation
    public var timestampStart: Date
    public var timestampEnd: Date
    public var credentialId: String?
    public var credentialState: String?
    public var policy: PolicyVerdict?
    public var reservation: Reservation?

    public init(requestId: String, parentRequestId: String? = nil, agentId: String?, envelopeId: String?,
                policyHash: String, method: String?, url: String?, challenge: NormalizedChallenge?,
                selectedRail: RailID?, fallbackFrom: RailID?, facilitator: String?, fundingSource: String?,
                payment: Payment?, outcome: Outcome, reconciliation: Reconciliation = .init(),
                timestampStart: Date, timestampEnd: Date, credentialId: String? = nil,
                credentialState: String? = nil) {
        self.requestId = requestId
        self.parentRequestId = parentRequestId
        self.agentId = agentId
        self.envelopeId = envelopeId
        self.policyHash = policyHash
        self.method = method
        self.url = url
        self.challenge = challenge
        self.selectedRail = selectedRail
        self.fallbackFrom = fallbackFrom
        self.facilitator = facilitator
        self.fundingSource = fundingSource
        self.payment = payment
        self.outcome = outcome
        self.reconciliation = reconciliation
        self.timestampStart = timestampStart
        self.timestampEnd = timestampEnd
        self.credentialId = credentialId
        self.credentialState = credentialState
    }

    enum CodingKeys: String, CodingKey {
        case requestId, parentRequestId, agentId, envelopeId, policyHash, method, url, challenge, selectedRail,
            fallbackFrom, facilitator, fundingSource, payment, outcome, reconciliation, timestampStart, timestampEnd,
            credentialId, credentialState, policy, reservation
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(requestId, forKey: .requestId)
        try c.encode(parentRequestId, forKey: .parentRequestId)
        try c.encode(agentId, forKey: .agentId)
        try c.encode(envelopeId, forKey: .envelopeId)
        try c.encode(policyHash, forKey: .policyHash)
        try c.encode(method, forKey: .method)
        try c.encode(url, forKey: .url)
        try c.encode(challenge, forKey: .challenge)
        try c.encode(selectedRail, forKey: .selectedRail)
        try c.encode(fallbackFrom, forKey: .fallbackFrom)
        try c.encode(facilitator, forKey: .facilitator)
        try c.encode(fundingSource, forKey: .fundingSource)
        try c.encode(payment, forKey: .payment)
        try c.encode(outcome, forKey: .outcome)
        try c.encode(reconciliation, forKey: .reconciliation)
        try c.encode(Timestamp.rfc3339Z(timestampStart), forKey: .timestampStart)
        try c.encode(Timestamp.rfc3339Z(timestampEnd), forKey: .timestampEnd)
        if credentialId != nil || credentialState != nil {
            try c.encode(credentialId, forKey: .credentialId)
            try c.encode(credentialState, forKey: .credentialState)
        }
        try c.encode(policy, forKey: .policy)
        try c.encode(reservation, forKey: .reservation)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        requestId = try c.decode(String.self, forKey: .requestId)
        parentRequestId = try c.decodeIfPresent(String.self, forKey: .parentRequestId)
        agentId = try c.decodeIfPresent(String.self, forKey: .agentId)
        envelopeId = try c.decodeIfPresent(String.self, forKey: .envelopeId)
        policyHash = try c.decode(String.self, forKey: .policyHash)
        method = try c.decodeIfPresent(String.self, forKey: .method)
        url = try c.decodeIfPresent(String.self, forKey: .url)
        challenge = try c.decodeIfPresent(NormalizedChallenge.self, forKey: .challenge)
        selectedRail = try c.decodeIfPresent(RailID.self, forKey: .selectedRail)
        fallbackFrom = try c.decodeIfPresent(RailID.self, forKey: .fallbackFrom)
        facilitator = try c.decodeIfPresent(String.self, forKey: .facilitator)
        fundingSource = try c.decodeIfPresent(String.self, forKey: .fundingSource)
        payment = try c.decodeIfPresent(Payment.self, forKey: .payment)
        outcome = try c.decode(Outcome.self, forKey: .outcome)
        reconciliation = try c.decode(Reconciliation.self, forKey: .reconciliation)
        func date(_ k: CodingKeys) throws -> Date {
            let s = try c.decode(String.self, forKey: k)
            guard let d = Timestamp.parse(s) else {
                throw DecodingError.dataCorruptedError(forKey: k, in: c, debugDescription: "bad date \(s)")
            }
            return d
        }
        timestampStart = try date(.timestampStart)
        timestampEnd = try date(.timestampEnd)
        credentialId = try c.decodeIfPresent(String.self, forKey: .credentialId)
        credentialState = try c.decodeIfPresent(String.self, forKey: .credentialState)
        policy = try c.decodeIfPresent(PolicyVerdict.self, forKey: .policy)
        reservation = try c.decodeIfPresent(Reservation.self, forKey: .reservation)
    }

    /// The compact JSON payload stored in `trace_events.payload`.
    /// The payload JSON: compact, keys sorted, nulls written, slashes unescaped — byte for byte what `JSONEncoder`
    /// with `[.sortedKeys, .withoutEscapingSlashes]` writes (tested), but written by hand, except a non-integral
    /// envelope amount and strings that need escaping (JSONEncoder costs ~150 µs a row; this is on every call).
    public func payloadJSON() throws -> String {
        var w = TraceJSON()
        w.raw("{")
        w.key("agentId", first: true); w.string(agentId)
        w.key("challenge"); w.challenge(challenge)
        if credentialId != nil || credentialState != nil {
            w.key("credentialId"); w.string(credentialId)
            w.key("credentialState"); w.string(credentialState)
        }
        w.key("envelopeId"); w.string(envelopeId)
        w.key("facilitator"); w.string(facilitator)
        w.key("fallbackFrom"); w.string(fallbackFrom?.rawValue)
        w.key("fundingSource"); w.string(fundingSource)
        w.key("method"); w.string(method)
        w.key("outcome")
        w.raw("{")
        w.key("error", first: true)
        if let error = outcome.error {
            w.raw("{")
            w.key("code", first: true); w.string(error.code)
            w.key("message"); w.string(error.message)
            w.raw("}")
        } else {
            w.raw("null")
        }
        w.key("httpStatus"); w.int(outcome.httpStatus.map(Int64.init))
        w.key("serviceDelivered"); w.raw(outcome.serviceDelivered ? "true" : "false")
        w.key("serviceLatencyMs"); w.int(Int64(outcome.serviceLatencyMs))
        w.raw("}")
        w.key("parentRequestId"); w.string(parentRequestId)
        w.key("payment"); try w.payment(payment)
        w.key("policy")
        if let policy {
            w.raw("{")
            w.key("ruleName", first: true); w.string(policy.ruleName)
            w.key("verdict"); w.string(policy.verdict)
            w.raw("}")
        } else {
            w.raw("null")
        }
        w.key("policyHash"); w.string(policyHash)
        w.key("reconciliation")
        w.raw("{")
        w.key("invoiceReference", first: true); w.string(reconciliation.invoiceReference)
        w.key("taxCategory"); w.string(reconciliation.taxCategory)
        w.key("vatApplicable"); w.raw(reconciliation.vatApplicable ? "true" : "false")
        w.raw("}")
        w.key("requestId"); w.string(requestId)
        w.key("reservation")
        if let r = reservation {
            w.raw("{")
            w.key("currency", first: true); w.string(r.currency)
            w.key("drawId"); w.string(r.drawId)
            w.key("envelopeId"); w.string(r.envelopeId)
            w.key("reservedMinorUnits"); w.int(r.reservedMinorUnits)
            w.key("settledMinorUnits"); w.int(r.settledMinorUnits)
            w.key("state"); w.string(r.state)
            w.raw("}")
        } else {
            w.raw("null")
        }
        w.key("selectedRail"); w.string(selectedRail?.rawValue)
        w.key("timestampEnd"); w.string(Timestamp.rfc3339Z(timestampEnd))
        w.key("timestampStart"); w.string(Timestamp.rfc3339Z(timestampStart))
        w.key("url"); w.string(url)
        w.raw("}")
        return String(decoding: w.bytes, as: UTF8.self)
    }

    /// The same payload through `JSONEncoder` (the reference the hand-written ``payloadJSON()`` is tested against).
    public func payloadJSONViaEncoder() throws -> String {
        String(decoding: try TraceJSON.encoder.encode(self), as: UTF8.self)
    }
}

/// Where finished calls go. The client calls ``record(_:)`` exactly once per call, after settlement; a sink that
/// throws never turns a finished call into an error (the failure is logged).
public protocol TraceSink: Sendable {
    /// Stores one finished call.
    func record(_ event: TraceEvent) async throws
    /// The most recent calls, newest first (empty for a sink that cannot read back).
    func recentEvents(limit: Int) async throws -> [TraceEvent]
    /// Waits until every event recorded so far is stored (a sink that writes behind the call returns once its
    /// queue is empty). ``RouteweilerClient/shutdown()`` calls it. Throws if some queued events could not be stored.
    func flush() async throws
}

extension TraceSink {
    public func recentEvents(limit: Int) async throws -> [TraceEvent] { [] }
    public func flush() async throws {}
}

/// A sink that keeps events in memory, for tests and for agents that inspect their own history.
public actor InMemoryTraceSink: TraceSink {
    public private(set) var events: [TraceEvent] = []
    public init() {}
    public func record(_ event: TraceEvent) async throws { events.append(event) }
    public func recentEvents(limit: Int) async throws -> [TraceEvent] { Array(events.suffix(limit).reversed()) }
}

/// A sink that forwards each event to several sinks; every sink is tried, the first error is rethrown.
public struct MultiplexTraceSink: TraceSink {
    public var sinks: [any TraceSink]
    public init(_ sinks: [any TraceSink]) { self.sinks = sinks }
    public func record(_ event: TraceEvent) async throws {
        var firstError: (any Error)?
        for sink in sinks {
            do { try await sink.record(event) } catch { if firstError == nil { firstError = error } }
        }
        if let firstError { throw firstError }
    }
}

/// The writer behind ``TraceEvent/payloadJSON()``.
private struct TraceJSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    var bytes: [UInt8] = {
        var b: [UInt8] = []
        b.reserveCapacity(2048)
        return b
    }()

    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func key(_ name: StaticString, first: Bool = false) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func int(_ v: Int64?) {
        guard let v else { return raw("null") }
        bytes.append(contentsOf: String(v).utf8)
    }

    /// A string, escaped as JSONEncoder escapes it (tested byte for byte on every ASCII character): `\"`, `\\`,
    /// the short escapes of backspace, tab, newline, form feed and carriage return, `\u00xx` (lower-case hex) for
    /// the other control characters; everything else, non-ASCII included, as is. (The raw challenge header of a
    /// paid call has quotes: this was a JSONEncoder run per trace row.)
    mutating func string(_ s: String?) {
        guard var s else { return raw("null") }
        s.withUTF8 { utf8 in
            bytes.append(UInt8(ascii: "\""))
            var start = 0
            for i in utf8.indices {
                let byte = utf8[i]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                start = i + 1
                bytes.append(UInt8(ascii: "\\"))
                switch byte {
                case 0x22: bytes.append(UInt8(ascii: "\""))
                case 0x5C: bytes.append(UInt8(ascii: "\\"))
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                              hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
            bytes.append(UInt8(ascii: "\""))
        }
    }

    mutating func int(_ v: Int) { bytes.append(contentsOf: String(v).utf8) }

    /// A `[String: String]` object, keys in `String` order (what JSONEncoder's `.sortedKeys` writes here).
    mutating func object(_ d: [String: String]) {
        raw("{")
        for (i, k) in d.keys.sorted().enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            string(k)
            bytes.append(UInt8(ascii: ":"))
            string(d[k])
        }
        raw("}")
    }

    /// ``NormalizedChallenge`` as its `encode(to:)` writes it, keys sorted.
    mutating func challenge(_ c: NormalizedChallenge?) {
        guard let c else { return raw("null") }
        raw("{")
        key("expiresAt", first: true); string(Timestamp.rfc3339Z(c.expiresAt))
        key("nonce"); string(c.nonce)
        key("payee"); raw("{")
        key("identifier", first: true); string(c.payee.identifier)
        key("metadata"); object(c.payee.metadata)
        raw("}")
        key("price"); raw("{")
        key("amount", first: true); bytes.append(contentsOf: String(c.price.amount).utf8)
        key("currency"); string(c.price.currency)
        key("humanAmount"); string(c.price.humanAmount)
        raw("}")
        key("rail"); string(c.rail.rawValue)
        key("raw"); object(c.raw)
        key("resource"); raw("{")
        key("method", first: true); string(c.resource.method)
        key("originalStatus"); int(c.resource.originalStatus)
        key("url"); string(c.resource.url)
        key("urlEncoding"); string(c.resource.urlEncoding)
        raw("}")
        key("scheme"); string(c.scheme)
        raw("}")
    }

    /// ``TraceEvent/Payment`` as its `encode(to:)` writes it, keys sorted.
    mutating func payment(_ p: TraceEvent.Payment?) throws {
        guard let p else { return raw("null") }
        raw("{")
        key("amountEnvelope", first: true)
        if let amount = p.amountEnvelope, amount.rounded() == amount, abs(amount) < 1e15 {
            int(Int64(amount))  // JSONEncoder writes an integral double without a fraction
        } else {
            try encoded(p.amountEnvelope)
        }
        key("amountEnvelopeCurrency"); string(p.amountEnvelopeCurrency)
        key("amountNative"); bytes.append(contentsOf: String(p.amountNative).utf8)
        key("amountNativeCurrency"); string(p.amountNativeCurrency)
        key("fmvQuality"); string(p.fmvQuality.rawValue)
        key("proofType"); string(p.proofType.rawValue)
        key("proofValue"); string(p.proofValue)
        key("settlement")
        if let r = p.settlement {
            raw("{")
            key("amountPaid", first: true)
            if let paid = r.amountPaid { bytes.append(contentsOf: String(paid).utf8) } else { raw("null") }
            key("facilitator"); string(r.facilitator)
            key("network"); string(r.network)
            key("payer"); string(r.payer)
            key("success"); raw(r.success ? "true" : "false")
            key("transactionHash"); string(r.transactionHash)
            raw("}")
        } else {
            raw("null")
        }
        key("settlementLatencyMs"); int(p.settlementLatencyMs)
        raw("}")
    }

    /// A nested value through JSONEncoder (same options), or `null`.
    mutating func encoded<T: Encodable>(_ value: T?) throws {
        guard let value else { return raw("null") }
        bytes.append(contentsOf: try Self.encoder.encode(value))
    }
}
