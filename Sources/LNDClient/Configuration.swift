import Foundation

extension LNDClient {
    /// Where to find the node's TLS certificate (LND's `tls.cert`).
    public enum CertificateSource: Sendable, Hashable, CustomStringConvertible {
        /// A PEM file on disk, e.g. `~/.lnd/tls.cert`.
        case file(String)
        /// The PEM text itself.
        case pem(String)

        /// `file(<path>)` or `pem(<n> bytes)`.
        public var description: String {
            switch self {
            case .file(let path): return "file(\(path))"
            case .pem(let pem): return "pem(\(pem.utf8.count) bytes)"
            }
        }
    }

    /// Where to find the macaroon that authenticates every call.
    ///
    /// The macaroon is a bearer secret: its textual descriptions are redacted.
    public enum MacaroonSource: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
        CustomReflectable
    {
        /// A binary macaroon file on disk, e.g. `admin.macaroon`; it is hex-encoded when loaded.
        case file(String)
        /// The macaroon as hex (as printed by `xxd -p -c 1000 admin.macaroon`).
        case hex(String)

        /// `file(<path>)` or `hex(<redacted>)`: never the macaroon itself.
        public var description: String {
            switch self {
            case .file(let path): return "file(\(path))"
            case .hex: return "hex(<redacted>)"
            }
        }

        /// Same as ``description``.
        public var debugDescription: String { self.description }

        /// A mirror that hides the macaroon.
        public var customMirror: Mirror {
            Mirror(self, children: ["source": self.description], displayStyle: .enum)
        }
    }

    /// How to reach and authenticate to an LND node over gRPC.
    ///
    /// Its descriptions (and `dump` output) never include the macaroon.
    public struct Configuration: Sendable, CustomStringConvertible, CustomDebugStringConvertible,
        CustomReflectable
    {
        /// The node's gRPC host: a DNS name, an IPv4 or an IPv6 literal.
        public var host: String
        /// The node's gRPC port (LND's default is 10009).
        public var port: Int
        /// The node's `tls.cert`: the only certificate the client trusts.
        public var tlsCertificate: CertificateSource
        /// The macaroon sent with every call.
        public var macaroon: MacaroonSource
        /// The deadline of each RPC (default 60 seconds). A payment's deadline is at least its
        /// `timeoutSeconds` plus this value.
        public var timeout: Duration
        /// An optional host name to send as TLS SNI / `:authority` and to verify the node's
        /// certificate against, instead of ``host``. Useful when connecting by an IP address
        /// that is not in the certificate (e.g. a Docker node whose cert names `localhost`).
        public var serverHostname: String?
        /// Whether the certificate's names must match ``serverHostname`` (or ``host``).
        /// Defaults to `true`. When `false`, the chain is still verified against the pinned
        /// certificate, so only the node holding that certificate's key is accepted.
        public var verifyHostname: Bool

        /// Creates a configuration.
        public init(
            host: String,
            port: Int = 10009,
            tlsCertificate: CertificateSource,
            macaroon: MacaroonSource,
            timeout: Duration = .seconds(60),
            serverHostname: String? = nil,
            verifyHostname: Bool = true
        ) {
            self.host = host
            self.port = port
            self.tlsCertificate = tlsCertificate
            self.macaroon = macaroon
            self.timeout = timeout
            self.serverHostname = serverHostname
            self.verifyHostname = verifyHostname
        }

        /// A description without secrets.
        public var description: String {
            var text = "LNDClient.Configuration(host: \(self.host), port: \(self.port), "
            text += "tlsCertificate: \(self.tlsCertificate), macaroon: \(self.macaroon), "
            text += "timeout: \(self.timeout)"
            if let serverHostname = self.serverHostname {
                text += ", serverHostname: \(serverHostname)"
            }
            if !self.verifyHostname {
                text += ", verifyHostname: false"
            }
            return text + ")"
        }

        /// Same as ``description``.
        public var debugDescription: String { self.description }

        /// A mirror that hides the macaroon.
        public var customMirror: Mirror {
            Mirror(
                self,
                children: [
                    "host": self.host,
                    "port": self.port,
                    "tlsCertificate": self.tlsCertificate.description,
                    "macaroon": self.macaroon.description,
                    "timeout": self.timeout,
                    "serverHostname": self.serverHostname as Any,
                    "verifyHostname": self.verifyHostname,
                ],
                displayStyle: .struct
            )
        }
    }
}

/// The configuration with its files loaded and validated.
struct LoadedConfiguration: Sendable, CustomStringConvertible, CustomReflectable {
    var description: String { "LoadedConfiguration(\(self.host):\(self.port), macaroon: <redacted>)" }
    var customMirror: Mirror { Mirror(self, children: ["description": self.description]) }

    var host: String
    var port: Int
    var certificatePEM: String
    var macaroonHex: String
    var timeout: Duration
    var serverHostname: String?
    var verifyHostname: Bool

    init(_ configuration: LNDClient.Configuration) throws(LNDError) {
        let host = configuration.host.trimmingCharacters(in: .whitespaces)
        guard !host.isEmpty else {
            throw LNDError(code: .invalidConfiguration, message: "The LND host is empty.")
        }
        guard (1...65535).contains(configuration.port) else {
            throw LNDError(
                code: .invalidConfiguration,
                message: "The LND gRPC port \(configuration.port) is out of range."
            )
        }
        guard configuration.timeout > .zero else {
            throw LNDError(code: .invalidConfiguration, message: "The RPC timeout must be positive.")
        }
        self.host = host
        self.port = configuration.port
        self.timeout = configuration.timeout
        self.serverHostname = configuration.serverHostname.flatMap { $0.isEmpty ? nil : $0 }
        self.verifyHostname = configuration.verifyHostname

        switch configuration.tlsCertificate {
        case .file(let path):
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: Self.expandTilde(path)))
            } catch {
                throw LNDError(
                    code: .invalidConfiguration,
                    message: "Cannot read the LND TLS certificate at \(path).",
                    cause: error
                )
            }
            guard let pem = String(data: data, encoding: .utf8) else {
                throw LNDError(
                    code: .invalidConfiguration,
                    message: "The LND TLS certificate at \(path) is not a PEM file."
                )
            }
            self.certificatePEM = try Self.validatedPEM(pem, origin: "at \(path)")
        case .pem(let pem):
            self.certificatePEM = try Self.validatedPEM(pem, origin: "given inline")
        }

        switch configuration.macaroon {
        case .file(let path):
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: Self.expandTilde(path)))
            } catch {
                throw LNDError(
                    code: .invalidConfiguration,
                    message: "Cannot read the LND macaroon at \(path).",
                    cause: error
                )
            }
            guard !data.isEmpty else {
                throw LNDError(code: .invalidConfiguration, message: "The LND macaroon at \(path) is empty.")
            }
            self.macaroonHex = HexEncoding.encode(Array(data))
        case .hex(let hex):
            let trimmed = hex.filter { !$0.isWhitespace }
            guard !trimmed.isEmpty, trimmed.utf8.count % 2 == 0, HexEncoding.decode(trimmed) != nil else {
                throw LNDError(
                    code: .invalidConfiguration,
                    message: "The LND macaroon is not valid hex (expected the hex encoding of a macaroon file)."
                )
            }
            self.macaroonHex = trimmed.lowercased()
        }
    }

    private static func expandTilde(_ path: String) -> String {
        (path as NSString).expandingTildeInPath
    }

    private static func validatedPEM(_ pem: String, origin: String) throws(LNDError) -> String {
        guard pem.contains("-----BEGIN CERTIFICATE-----"), pem.contains("-----END CERTIFICATE-----") else {
            throw LNDError(
                code: .invalidConfiguration,
                message: "The LND TLS certificate \(origin) is not a PEM certificate."
            )
        }
        do {
            _ = try PinnedCertificate.parse(pem)
        } catch {
            throw LNDError(
                code: .invalidConfiguration,
                message: "The LND TLS certificate \(origin) cannot be parsed.",
                cause: error
            )
        }
        return pem
    }
}
