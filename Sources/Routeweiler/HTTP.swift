import Foundation
public import HTTPTypes

/// An HTTP request the client can send, pay for and send again with a proof. The body is buffered so the paid
/// retry carries the same bytes.
public struct RouteweilerRequest: Sendable {
    public var method: HTTPRequest.Method
    public var url: URL {
        didSet {
            origin = url.routeweilerOrigin
            isPlainHTTP = false
        }
    }
    public var headerFields: HTTPFields
    public var body: [UInt8]?
    /// `scheme://host:port` with the default port made explicit (443 for https, else 80); kept with ``url`` (a call
    /// reads it several times).
    public private(set) var origin: String
    /// Whether ``url`` was made from a string ``URL/plainHTTPOrigin(_:)`` accepts: an http(s) URL without user
    /// info (`false` when not known).
    package private(set) var isPlainHTTP = false

    public init(method: HTTPRequest.Method = .get, url: URL, headerFields: HTTPFields = [:], body: [UInt8]? = nil) {
        self.method = method
        self.url = url
        self.headerFields = headerFields
        self.body = body
        self.origin = url.routeweilerOrigin
    }

    /// The lower-cased host, read from ``origin`` (between `://` and the port): `url.host`, lower-cased, without
    /// reading the URL again.
    package var originHost: String {
        let utf8 = origin.utf8
        guard let portColon = utf8.lastIndex(of: UInt8(ascii: ":")),
            let schemeColon = utf8.firstIndex(of: UInt8(ascii: ":")),
            let start = utf8.index(schemeColon, offsetBy: 3, limitedBy: portColon)
        else { return "" }
        return String(origin[start..<portColon])
    }

    /// A URL parsed from a string ``URL/plainHTTPOrigin(_:)`` accepted with `origin`.
    init(method: HTTPRequest.Method, plainHTTPURL url: URL, origin: String, headerFields: HTTPFields, body: [UInt8]?) {
        self.method = method
        self.url = url
        self.headerFields = headerFields
        self.body = body
        self.origin = origin
        self.isPlainHTTP = true
    }
}

extension URL {
    /// `scheme://host:port`, lower-cased, with the default port made explicit.
    package var routeweilerOrigin: String {
        if let origin = Self.plainHTTPOrigin(absoluteString) { return origin }
        return foundationOrigin
    }

    /// ``routeweilerOrigin`` through Foundation's accessors (any URL).
    package var foundationOrigin: String {
        let scheme = (self.scheme ?? "http").lowercased()
        let host = (self.host ?? "").lowercased()
        let port = self.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://\(host):\(port)"
    }

    /// The origin of a plain `http`/`https` URL string, read straight from its bytes (Foundation's `scheme`, `host`
    /// and `port` accessors cost microseconds each, on every call): ASCII letters, digits, `.`, `-`, `_` and `~` in
    /// the host, an optional decimal port, no user info. `nil` for anything else (IPv6 literals, percent escapes,
    /// user info, other schemes, no host), which the caller reads through Foundation instead; the result is
    /// ``foundationOrigin``'s for every string it accepts (tested on both).
    package static func plainHTTPOrigin(_ string: String) -> String? {
        var string = string
        return string.withUTF8 { bytes -> String? in
            func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
            func hasPrefix(_ prefix: StaticString) -> Bool {
                guard bytes.count >= prefix.utf8CodeUnitCount else { return false }
                for i in 0..<prefix.utf8CodeUnitCount where lower(bytes[i]) != prefix.utf8Start[i] { return false }
                return true
            }
            let https: Bool
            let hostStart: Int
            if hasPrefix("http://") {
                (https, hostStart) = (false, 7)
            } else if hasPrefix("https://") {
                (https, hostStart) = (true, 8)
            } else {
                return nil
            }
            var hostEnd = hostStart
            var port: Int?
            var portDigits = 0
            var i = hostStart
            scan: while i < bytes.count {
                let byte = bytes[i]
                switch byte {
                case UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "#"):
                    break scan
                case UInt8(ascii: "0")...UInt8(ascii: "9") where port != nil:
                    port = port! * 10 + Int(byte - 0x30)
                    portDigits += 1
                    guard port! <= 65_535 else { return nil }
                case _ where port != nil:
                    return nil
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"),
                    UInt8(ascii: "~"):
                    hostEnd = i + 1
                case UInt8(ascii: ":"):
                    port = 0
                default:
                    return nil
                }
                i += 1
            }
            guard hostEnd > hostStart else { return nil }
            // "host:" with no digits: Foundation reads no port; leave that to it.
            if port != nil, portDigits == 0 { return nil }
            let portNumber = port ?? (https ? 443 : 80)
            var digits = 1
            var rest = portNumber / 10
            while rest > 0 { digits += 1; rest /= 10 }
            return String(unsafeUninitializedCapacity: hostEnd + 1 + digits) { out in
                var o = 0
                for j in 0..<hostEnd { out[o] = lower(bytes[j]); o += 1 }
                out[o] = UInt8(ascii: ":")
                o += digits
                var value = portNumber
                for k in 0..<digits {
                    out[o - k] = UInt8(0x30 + value % 10)
                    value /= 10
                }
                o += 1
                return o
            }
        }
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
