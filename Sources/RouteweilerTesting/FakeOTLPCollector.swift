import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// An OpenTelemetry collector's OTLP/HTTP receiver on 127.0.0.1: it accepts `POST /v1/traces`, `/v1/metrics` and
/// `/v1/logs` (protobuf or JSON) and keeps every export it receives, for tests of the exporter set-up.
public final class FakeOTLPCollector: Sendable {
    /// One export request.
    public struct Export: Sendable {
        public var path: String
        public var contentType: String?
        public var body: [UInt8]
        /// Whether the body contains `text` as raw bytes (protobuf carries strings verbatim).
        public func contains(_ text: String) -> Bool {
            let needle = Array(text.utf8)
            guard !needle.isEmpty, body.count >= needle.count else { return false }
            for i in 0...(body.count - needle.count) where body[i] == needle[0] {
                if Array(body[i..<(i + needle.count)]) == needle { return true }
            }
            return false
        }
    }

    private let state = Mutex<(exports: [Export], port: Int)>(([], 0))
    private let server = LocalHTTPServer()

    public init() {}

    public var exports: [Export] { state.withLock { $0.exports } }
    /// `http://127.0.0.1:<port>`.
    public var endpoint: String { "http://127.0.0.1:\(state.withLock { $0.port })" }

    public static func withCollector<R: Sendable>(_ body: (FakeOTLPCollector) async throws -> R) async throws -> R {
        let collector = FakeOTLPCollector()
        return try await withStarted(collector, start: collector.start, shutdown: collector.shutdown, body)
    }

    public func start() async throws {
        let router = Router()
        for signal in ["traces", "metrics", "logs"] {
            router.post("/v1/\(signal)") { request, _ -> Response in
                var request = request
                let body = try await request.collectBody(upTo: 16 << 20)
                self.state.withLock {
                    $0.exports.append(Export(path: "/v1/\(signal)", contentType: request.headers[.contentType],
                                             body: Array(buffer: body)))
                }
                // An empty Export*ServiceResponse.
                let type = request.headers[.contentType] ?? "application/x-protobuf"
                return Response(status: .ok, headers: [.contentType: type.contains("json") ? "application/json" : "application/x-protobuf"],
                                body: .init(byteBuffer: ByteBuffer(string: type.contains("json") ? "{}" : "")))
            }
        }
        let port = try await server.start(router, label: "fake-otlp-collector")
        state.withLock { $0.port = port }
    }

    public func shutdown() async { await server.shutdown() }
}
