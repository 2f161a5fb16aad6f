import GRPCCore
import NIOSSL

/// Helpers for the pinned node certificate.
enum PinnedCertificate {
    /// Parses PEM certificate(s); throws if none can be parsed.
    static func parse(_ pem: String) throws -> [NIOSSLCertificate] {
        let certificates = try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
        guard !certificates.isEmpty else {
            throw NIOSSLError.failedToLoadCertificate
        }
        return certificates
    }

    static func isIPv4Literal(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy(\.isASCII) && part.allSatisfy(\.isNumber)
                && (Int(part) ?? 256) <= 255
        }
    }

    static func isIPv6Literal(_ host: String) -> Bool {
        host.contains(":")
    }
}

/// Classifies transport errors by looking through `cause` chains.
enum ErrorClassifier {
    /// The error and its causes, outermost first.
    static func chain(_ error: any Error) -> [any Error] {
        var result: [any Error] = []
        var current: (any Error)? = error
        while let error = current, result.count < 16 {
            result.append(error)
            switch error {
            case let rpcError as RPCError:
                current = rpcError.cause
            case let runtimeError as RuntimeError:
                current = runtimeError.cause
            case let lndError as LNDError:
                current = lndError.cause
            default:
                current = nil
            }
        }
        return result
    }

    /// Whether a TLS handshake or certificate verification failure is in the chain.
    static func isTLSFailure(_ error: any Error) -> Bool {
        for error in self.chain(error) {
            if let sslError = error as? NIOSSLError {
                // An unclean shutdown is a dropped connection, not a certificate problem.
                if case .uncleanShutdown = sslError { continue }
                return true
            }
            if error is BoringSSLError || error is NIOSSLExtraError {
                return true
            }
            let text = String(describing: error)
            if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("handshakeFailed")
                || text.contains("unableToValidateCertificate")
            {
                return true
            }
        }
        return false
    }

    /// Whether the certificate chain was trusted but its names do not match the host.
    static func isHostnameMismatch(_ error: any Error) -> Bool {
        self.chain(error).contains { error in
            if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
                return true
            }
            return false
        }
    }

    /// Whether the error was raised before an RPC stream was opened, i.e. the request never
    /// left this process: no connection could be established (refused, DNS, TLS handshake),
    /// or the channel was not ready. Failures of an open stream (a connection dropped
    /// mid-call) are not included: the request may have reached the node.
    static func isPreSendFailure(_ error: any Error) -> Bool {
        let phrases = [
            "transient failure state", "channel isn't ready", "channel is shutdown", "channel is closed",
            "channel is shutting down", "subchannel shutdown", "subchannel isn't ready",
            "no subchannel available", "could not establish a connection",
            "before completing the http/2 connection preface",
        ]
        for error in self.chain(error) {
            guard let rpcError = error as? RPCError else { continue }
            let message = rpcError.message.lowercased()
            if phrases.contains(where: { message.contains($0) }) {
                return true
            }
        }
        return false
    }

    /// A short description of the innermost cause.
    static func rootCauseDescription(_ error: any Error, redact: (String) -> String) -> String {
        let chain = self.chain(error)
        guard let last = chain.last else { return "" }
        if let rpcError = last as? RPCError {
            return redact(rpcError.message)
        }
        if let runtimeError = last as? RuntimeError {
            return redact(runtimeError.message)
        }
        return redact(String(describing: last))
    }
}
