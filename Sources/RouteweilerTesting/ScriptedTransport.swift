import Foundation
import HTTPTypes
import Routeweiler
import Synchronization

/// An in-memory ``HTTPTransport`` that answers from a script, for pure client tests without sockets.
public final class ScriptedTransport: HTTPTransport {
    /// One scripted step: a response, or a transport failure.
    public enum Step: Sendable {
        case respond(TransportResponse)
        case fail(String)
    }

    private let state: Mutex<(steps: [Step], requests: [RouteweilerRequest])>

    public init(_ steps: [Step]) { state = Mutex((steps, [])) }

    /// Every request received, in order.
    public var requests: [RouteweilerRequest] { state.withLock { $0.requests } }

    public func send(_ request: RouteweilerRequest, timeout: Duration) async throws -> TransportResponse {
        let step = state.withLock { s -> Step? in
            s.requests.append(request)
            return s.steps.isEmpty ? nil : s.steps.removeFirst()
        }
        switch step {
        case .respond(let r): return r
        case .fail(let m): throw TransportError(m)
        case nil: throw TransportError("script exhausted")
        }
    }

    /// A 402 response carrying these `WWW-Authenticate` values.
    public static func challenge(_ values: [String]) -> TransportResponse {
        var fields = HTTPFields()
        for v in values { fields.append(HTTPField(name: .wwwAuthenticate, value: v)) }
        return TransportResponse(status: .init(code: 402), headerFields: fields, body: [])
    }

    /// A response with a status and a text body.
    public static func status(_ code: Int, _ body: String = "") -> TransportResponse {
        TransportResponse(status: .init(code: code), headerFields: [:], body: Array(body.utf8))
    }
}
