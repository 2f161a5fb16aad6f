import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore

/// The default transport over AsyncHTTPClient: no redirects, bodies collected up to a limit.
struct AsyncHTTPClientTransport: HTTPTransport {
    let client: HTTPClient
    let maxResponseBytes: Int

    func send(_ request: RouteweilerRequest, timeout: Duration) async throws -> TransportResponse {
        var r = HTTPClientRequest(url: request.url.absoluteString)
        r.method = .init(rawValue: request.method.rawValue)
        for field in request.headerFields {
            r.headers.add(name: field.name.rawName, value: field.value)
        }
        if let body = request.body {
            r.body = .bytes(body)
        }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            let ms = Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
            response = try await client.execute(r, timeout: .milliseconds(ms))
            body = try await response.body.collect(upTo: maxResponseBytes)
        } catch {
            throw TransportError("\(request.method) \(request.origin): \(error)", cause: error)
        }
        // Collected into an array and added at once: `HTTPFields.append` goes through its generic
        // `replaceSubrange` once per field.
        var list: [HTTPField] = []
        list.reserveCapacity(response.headers.count)
        for (name, value) in response.headers {
            if let n = HTTPField.Name(name) { list.append(HTTPField(name: n, value: value)) }
        }
        let fields = HTTPFields(list)
        return TransportResponse(
            status: HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase),
            headerFields: fields, body: Array(buffer: body))
    }
}
