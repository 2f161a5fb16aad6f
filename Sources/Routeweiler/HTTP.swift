import Foundation
public import HTTPTypes

/// An HTTP request the client can send, pay for and send again with a proof. The body is buffered so the paid
/// retry carries the same bytes.
public struct RouteweilerRequest: Sendable {
    public var method: HTTPRequest.Method
    public var url: URL {
        didSet { origin = url.routeweilerOrigin }
    }
    public var headerFields: HTTPFields
    public var body: [UInt8]?
    /// `scheme://host:port` with the default port made explicit (443 for https, else 80); kept with ``url`` (a call
    /// reads it several times).
    public private(set) var origin: String

    public init(method: HTTPRequest.Method = .get, url: URL, headerFields: HTTPFields = [:], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headerFields = headerFields
        self.body = body
        self.origin = url.routeweilerOrigin
    }
}

extension URL {
    /// `scheme://host:port`, lower-cased, with the default port made explicit.
    package var routeweilerOrigin: String {
        let scheme = (self.scheme ?? "http").lowercased()
        let host = (self.host ?? "").lowercased()
        let port = self.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(host):\(port)"
    }
}

/// The final response of a call: status, headers, the whole body, and the payment made for it, if any.
public struct RouteweilerResponse: Sendable {
    public var status: HTTPResponse.Status
    public var headerFields: HTTPFields
    public var body: [UInt8]
    /// The payment made to obtain this response, or `nil` for a free call.
    public var payment: PaymentReceipt?
    /// The id of this call's trace row.
    public var requestID: String

    public init(status: HTTPResponse.Status, headerFields: HTTPFields, body: [UInt8], payment: PaymentReceipt?,
                requestID: String) {
        self.status = status
        self.headerFields = headerFields
        self.body = body
        self.payment = payment
        self.requestID = requestID
    }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// Decodes the body as JSON.
    public func decode<T: Decodable>(_ type: T.Type = T.self, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: Data(body))
    }
}

/// What the transport returns for one HTTP exchange.
public struct TransportResponse: Sendable {
    public var status: HTTPResponse.Status
    public var headerFields: HTTPFields
    public var body: [UInt8]
    public init(status: HTTPResponse.Status, headerFields: HTTPFields, body: [UInt8]) {
        self.status = status
        self.headerFields = headerFields
        self.body = body
    }
}

/// Sends one HTTP request. Implementations never follow redirects and never retry on their own.
public protocol HTTPTransport: Sendable {
    func send(_ request: RouteweilerRequest, timeout: Duration) async throws -> TransportResponse
}

/// A network failure while talking to the server (connect, TLS, timeout, reset).
public struct TransportError: RouteweilerError {
    public var errorName: String { "TransportError" }
    public var message: String
    public var cause: (any Error & Sendable)?
    public init(_ message: String, cause: (any Error & Sendable)? = nil) {
        self.message = message
        self.cause = cause
    }
}
