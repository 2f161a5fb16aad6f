import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RouteweilerWire
import Synchronization

/// Stripe's shared-payment-token endpoint over real HTTP on 127.0.0.1 (port 0), answering with Stripe's JSON
/// shapes and error objects: `POST /v1/shared_payment/issued_tokens` (form-encoded, `Authorization: Bearer`,
/// `Stripe-Version`). Scripts: a declined card, an invalid key, a Stripe outage.
public final class FakeStripe: Sendable {
    /// How the next token requests are answered.
    public enum Mode: Sendable, Hashable {
        case normal
        /// HTTP 402 `card_error` / `card_declined` / `generic_decline`.
        case cardDeclined
        /// HTTP 500 `api_error`.
        case apiError
    }

    /// A token the fake minted.
    public struct IssuedToken: Sendable, Hashable {
        public var id: String
        public var customer: String?
        public var paymentMethod: String
        public var currency: String
        public var maxAmount: UInt64
        public var expiresAt: UInt64
        public var sellerDetails: [String: String]
    }

    public struct Stats: Sendable, Hashable {
        public var requests = 0
        /// `Stripe-Version` of each request.
        public var stripeVersions: [String?] = []
        /// The raw form bodies, in order.
        public var forms: [String] = []
        public var issued: [IssuedToken] = []
    }

    /// The secret key the fake accepts.
    public let apiKey: String
    private let state: Mutex<(mode: Mode, stats: Stats, port: Int?)>
    private let server = LocalHTTPServer()

    public init(apiKey: String = "sk_test_routeweiler_fake_0123456789") {
        self.apiKey = apiKey
        state = Mutex((.normal, Stats(), nil))
    }

    public var port: Int { state.withLock { $0.port ?? 0 } }
    /// `http://127.0.0.1:<port>`: the source's `apiBaseURL`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public var stats: Stats { state.withLock { $0.stats } }
    public func setMode(_ mode: Mode) { state.withLock { $0.mode = mode } }
    /// The token with this id, if the fake minted it.
    public func token(_ id: String) -> IssuedToken? { state.withLock { s in s.stats.issued.first { $0.id == id } } }

    public static func withStripe<R: Sendable>(apiKey: String = "sk_test_routeweiler_fake_0123456789",
                                               _ body: (FakeStripe) async throws -> R) async throws -> R {
        let stripe = FakeStripe(apiKey: apiKey)
        try await stripe.start()
        do {
            let r = try await body(stripe)
            await stripe.shutdown()
            return r
        } catch {
            await stripe.shutdown()
            throw error
        }
    }

    public func start() async throws {
        let router = Router()
        router.post("/v1/shared_payment/issued_tokens") { request, _ in try await self.issue(request) }
        let port = try await server.start(router, label: "fake-stripe")
        state.withLock { $0.port = port }
    }

    public func shutdown() async { await server.shutdown() }

    private func issue(_ request: Request) async throws -> Response {
        var request = request
        let body = String(decoding: Array(buffer: try await request.collectBody(upTo: 1 << 20)), as: UTF8.self)
        let version = request.headers[HTTPField.Name("Stripe-Version")!]
        let mode = state.withLock { s -> Mode in
            s.stats.requests += 1
            s.stats.stripeVersions.append(version)
            s.stats.forms.append(body)
            return s.mode
        }
        guard request.headers[.authorization] == "Bearer " + apiKey else {
            let key = request.headers[.authorization]?.split(separator: " ").last.map(String.init) ?? ""
            let masked = key.count > 12 ? String(key.prefix(8)) + "********" + String(key.suffix(4)) : "****"
            return Self.error(.unauthorized, type: "invalid_request_error", code: nil,
                              message: "Invalid API Key provided: \(masked)")
        }
        guard version != nil else {
            return Self.error(.badRequest, type: "invalid_request_error", code: "parameter_unknown",
                              message: "shared_payment/issued_tokens requires a preview Stripe-Version")
        }
        switch mode {
        case .cardDeclined:
            return Self.error(.init(code: 402), type: "card_error", code: "card_declined", declineCode: "generic_decline",
                              message: "Your card was declined.")
        case .apiError:
            return Self.error(.internalServerError, type: "api_error", code: nil,
                              message: "An unknown error occurred")
        case .normal: break
        }
        var form: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            if kv.count == 2 { form[kv[0]] = kv[1] }
        }
        guard let pm = form["payment_method"], let currency = form["usage_limits[currency]"],
            let max = form["usage_limits[max_amount]"].flatMap({ UInt64($0) })
        else {
            return Self.error(.badRequest, type: "invalid_request_error", code: "parameter_missing",
                              message: "Missing required param: payment_method or usage_limits.")
        }
        var seller: [String: String] = [:]
        for (k, v) in form where k.hasPrefix("seller_details[") && k.hasSuffix("]") {
            seller[String(k.dropFirst("seller_details[".count).dropLast())] = v
        }
        let expires = form["usage_limits[expires_at]"].flatMap { UInt64($0) } ?? 0
        let id = "spt_" + String((0..<24).map { _ in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".randomElement()! })
        let token = IssuedToken(id: id, customer: form["customer"], paymentMethod: pm, currency: currency,
                                maxAmount: max, expiresAt: expires, sellerDetails: seller)
        state.withLock { $0.stats.issued.append(token) }
        let sellerJSON = seller.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",")
        let json = """
            {"id":"\(id)","object":"shared_payment.issued_token","created":\(Int(Date().timeIntervalSince1970)),\
            "deactivated_at":null,"deactivated_reason":null,"livemode":false,"payment_method":"\(pm)",\
            "seller_details":{\(sellerJSON)},"setup_future_usage":null,"shared_metadata":{},"status":"active",\
            "usage_details":{"amount_captured":{"value":0,"currency":"\(currency)"}},\
            "usage_limits":{"currency":"\(currency)","expires_at":\(expires),"max_amount":\(max)}}
            """
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    static func error(_ status: HTTPResponse.Status, type: String, code: String?, declineCode: String? = nil,
                      message: String) -> Response {
        var fields = [#""type":"\#(type)""#, #""message":"\#(message)""#]
        if let code { fields.append(#""code":"\#(code)""#) }
        if let declineCode { fields.append(#""decline_code":"\#(declineCode)""#) }
        fields.append(#""request_log_url":"https://dashboard.stripe.com/test/logs/req_fake""#)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: #"{"error":{\#(fields.joined(separator: ","))}}"#)))
    }
}
