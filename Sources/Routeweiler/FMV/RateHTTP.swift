import AsyncHTTPClient
import Foundation
import NIOCore

/// The one GET a rate provider makes: a deadline over the whole exchange, a bounded body, every failure mapped
/// to ``FmvUnavailableError``.
struct RateHTTP: Sendable {
    let client: HTTPClient
    let timeout: Duration
    let userAgent: String
    let maxResponseBytes: Int
    /// `CoinGecko`, `ECB`: the start of every error message.
    let serviceName: String

    func get(_ url: String, accept: String) async throws(FmvUnavailableError) -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "User-Agent", value: userAgent)
        request.headers.add(name: "Accept", value: accept)
        let deadline = NIODeadline.now() + .milliseconds(timeout.wholeMilliseconds)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, deadline: deadline)
        } catch {
            throw FmvUnavailableError(code: .fetchFailed, "\(serviceName) request failed: \(Self.describe(error))",
                                      cause: error)
        }
        guard response.status == .ok else {
            // Drain (bounded) so the connection can be reused; the content does not matter.
            _ = try? await response.body.collect(upTo: maxResponseBytes)
            throw FmvUnavailableError(code: .fetchFailed,
                                      "\(serviceName) answered HTTP \(response.status.code) \(response.status.reasonPhrase)")
        }
        do {
            let buffer = try await response.body.collect(upTo: maxResponseBytes)
            return Array(buffer: buffer)
        } catch {
            throw FmvUnavailableError(code: .fetchFailed,
                                      "\(serviceName) response could not be read: \(Self.describe(error))", cause: error)
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out (\(e))"
            default: return String(describing: e)
            }
        }
        return String(describing: error)
    }
}
