/// An L402 (formerly LSAT) payment challenge: a macaroon plus a BOLT-11 invoice whose payment
/// hash the macaroon's identifier commits to.
///
/// Built from a parsed ``AuthChallenge`` such as
/// `L402 macaroon="AgEE…", invoice="lnbc…"` (or `LSAT …`, or `token=` instead of `macaroon=`).
public struct L402Challenge: Sendable, Hashable {
    /// The auth-scheme the server used; the `Authorization` retry mirrors it.
    public enum Scheme: String, Sendable, Hashable {
        /// `L402`, the current name.
        case l402 = "L402"
        /// `LSAT`, the legacy name still sent by older Aperture versions.
        case lsat = "LSAT"

        /// Matches `L402` or `LSAT` ignoring ASCII case.
        public init?(schemeName: String) {
            if asciiCaseInsensitiveEquals(schemeName, "L402") {
                self = .l402
            } else if asciiCaseInsensitiveEquals(schemeName, "LSAT") {
                self = .lsat
            } else {
                return nil
            }
        }
    }

    /// Which scheme the server sent.
    public var scheme: Scheme
    /// The macaroon as sent (usually standard base64), first comma-separated part only.
    public var macaroon: String
    /// The BOLT-11 invoice to pay.
    public var invoice: String
    /// The `version` parameter (e.g. `"0"`), if sent.
    public var version: String?

    /// Creates a challenge from its parts.
    public init(scheme: Scheme, macaroon: String, invoice: String, version: String? = nil) {
        self.scheme = scheme
        self.macaroon = macaroon
        self.invoice = invoice
        self.version = version
    }

    /// Reads an `L402`/`LSAT` challenge.
    ///
    /// The macaroon comes from `macaroon=` (or `token=`); if it contains commas only the first
    /// part (trimmed) is kept. `invoice=` is required.
    /// - Throws: ``ChallengeParseError`` with `.wrongScheme`, `.missingParameter` or `.invalidParameter`.
    public init(_ challenge: AuthChallenge) throws(ChallengeParseError) {
        guard let scheme = Scheme(schemeName: challenge.scheme) else {
            throw ChallengeParseError(.wrongScheme, "Cannot parse WWW-Authenticate as L402/LSAT: scheme is '\(challenge.scheme)'")
        }
        guard let rawMacaroon = challenge.parameter("macaroon") ?? challenge.parameter("token") else {
            throw ChallengeParseError(.missingParameter, "Cannot parse WWW-Authenticate as L402/LSAT: no macaroon parameter")
        }
        let firstPart = rawMacaroon.utf8.firstIndex(of: UInt8(ascii: ",")).map { rawMacaroon[..<$0] } ?? rawMacaroon[...]
        let macaroon = trimmedASCIIWhitespace(firstPart)
        guard !macaroon.isEmpty else {
            throw ChallengeParseError(.missingParameter, "Cannot parse WWW-Authenticate as L402/LSAT: empty macaroon")
        }
        guard !macaroon.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) else {
            throw ChallengeParseError(.invalidParameter, "Cannot parse WWW-Authenticate as L402/LSAT: macaroon contains whitespace or non-ASCII characters")
        }
        guard let rawInvoice = challenge.parameter("invoice") else {
            throw ChallengeParseError(.missingParameter, "Cannot parse WWW-Authenticate as L402/LSAT: no invoice parameter")
        }
        let invoice = trimmedASCIIWhitespace(rawInvoice)
        guard !invoice.isEmpty else {
            throw ChallengeParseError(.missingParameter, "Cannot parse WWW-Authenticate as L402/LSAT: empty invoice")
        }
        self.init(scheme: scheme, macaroon: macaroon, invoice: invoice, version: challenge.parameter("version"))
    }

    /// All valid L402/LSAT challenges among `challenges`, in order, skipping other schemes and
    /// malformed L402/LSAT challenges.
    ///
    /// When the server offers the same macaroon and invoice under both `LSAT` and `L402`, one
    /// challenge is kept, at the position of the first, with the `L402` scheme.
    public static func all(in challenges: [AuthChallenge]) -> [L402Challenge] {
        var result: [L402Challenge] = []
        for challenge in challenges {
            guard Scheme(schemeName: challenge.scheme) != nil,
                  let parsed = try? L402Challenge(challenge) else { continue }
            if let index = result.firstIndex(where: { $0.macaroon == parsed.macaroon && $0.invoice == parsed.invoice }) {
                if parsed.scheme == .l402 && result[index].scheme == .lsat {
                    result[index].scheme = .l402
                }
                if result[index].version == nil { result[index].version = parsed.version }
                continue
            }
            result.append(parsed)
        }
        return result
    }

    /// The `Authorization` header value after paying: `"<SCHEME> <macaroon>:<preimage hex>"`,
    /// with the scheme the server sent (`L402` or `LSAT`).
    public func authorization(preimageHex: String) -> String {
        "\(scheme.rawValue) \(macaroon):\(preimageHex)"
    }

    /// The `Authorization` header value for a 32-byte preimage (hex-encoded lower-case).
    public func authorization(preimage: [UInt8]) -> String {
        authorization(preimageHex: Hex.encode(preimage))
    }

    /// The macaroon decoded, or `nil` if it is not a valid V1/V2 macaroon.
    public var decodedMacaroon: Macaroon? {
        try? Macaroon(base64: macaroon)
    }
}

/// Trims spaces, tabs, CR and LF from both ends.
func trimmedASCIIWhitespace(_ s: String) -> String { trimmedASCIIWhitespace(s[...]) }

func trimmedASCIIWhitespace(_ s: Substring) -> String {
    func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
    let u = s.utf8
    var lo = u.startIndex, hi = u.endIndex
    while lo < hi, isWhitespace(u[lo]) { lo = u.index(after: lo) }
    while hi > lo, isWhitespace(u[u.index(before: hi)]) { hi = u.index(before: hi) }
    return String(s[lo..<hi])
}
