import Foundation
import Routeweiler

/// Writes to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Compact JSON text for `--json` output, keys sorted.
func jsonText(_ object: Any) -> String {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    else { return "{}" }
    return String(decoding: data, as: UTF8.self)
}

/// Exit codes: one table from error kind to code.
enum ExitCodes {
    /// Nothing was paid: bad challenge, no feasible rail, policy, a definite payment failure.
    static let notPaid: Int32 = 3
    /// Money moved (or may have) but the call did not deliver: proof refused, retry failed, outcome unknown.
    static let paidNotDelivered: Int32 = 4
    /// The server could not be reached at all.
    static let transport: Int32 = 5
    /// Bad flags or configuration.
    static let configuration: Int32 = 2

    static func code(for error: any Error) -> Int32 {
        if let e = error as? any RouteweilerError {
            if e is TransportError { return transport }
            if e is ConfigurationError { return configuration }
            return e.mayHaveMovedFunds ? paidNotDelivered : notPaid
        }
        return 1
    }
}

/// Truncates long values (tokens, invoices) for display.
func abbreviate(_ s: String, _ keep: Int = 24) -> String {
    s.count <= keep * 2 + 3 ? s : String(s.prefix(keep)) + "…" + String(s.suffix(8))
}
