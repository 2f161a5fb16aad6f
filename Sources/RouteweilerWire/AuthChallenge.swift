/// Why a `WWW-Authenticate` field (or a scheme-specific challenge built from one) could not be parsed.
///
/// `kind` is for code to switch on; `message` is a human-readable explanation; `offset` is the
/// UTF-8 byte offset inside the offending field value when the error comes from the tokenizer.
public struct ChallengeParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The category of a challenge parse failure.
    public enum Kind: Sendable, Hashable {
        /// No challenge at all: no field values, or only empty list elements.
        case noChallenges
        /// A parameter or value appears where an auth-scheme was expected (e.g. `id="x"` first on a line).
        case missingScheme
        /// `=` without a parameter name before it (e.g. `=foo`).
        case missingParameterName
        /// `name=` with no value after it (e.g. `L402 invoice=`).
        case missingParameterValue
        /// A quoted-string without its closing `"` (or ending in a lone backslash).
        case unterminatedQuotedString
        /// A character that is not allowed at this position (control character, stray quote, …).
        case unexpectedCharacter
        /// Two parameters (or a parameter and a challenge) not separated by a comma.
        case missingComma
        /// A scheme-specific parser was given a challenge of another scheme.
        case wrongScheme
        /// A parameter the scheme requires is absent or empty.
        case missingParameter
        /// A parameter is present but its value is unusable.
        case invalidParameter
    }

    /// The category of the failure.
    public var kind: Kind
    /// A human-readable explanation.
    public var message: String
    /// UTF-8 byte offset into the field value where the problem was found, if known.
    public var offset: Int?

    /// Creates an error of the given kind.
    public init(_ kind: Kind, _ message: String, offset: Int? = nil) {
        self.kind = kind
        self.message = message
        self.offset = offset
    }

    /// The message, with the byte offset when known.
    public var description: String {
        if let offset { return "\(message) (at byte \(offset))" }
        return message
    }
}

/// One challenge from a `WWW-Authenticate` response field (RFC 9110 §11.6.1).
///
/// ```
/// challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
/// auth-param = token BWS "=" BWS ( token / quoted-string )
/// ```
///
/// Parameters are kept in the order the server sent them, duplicates and unknown names included;
/// lookups are case-insensitive and return the **first** occurrence (so an appended duplicate
/// cannot override a value the origin set).
public struct AuthChallenge: Sendable, Hashable {
    /// One `name=value` auth-param, with the name as sent and the value unquoted/unescaped.
    public struct Parameter: Sendable, Hashable {
        /// The parameter name as sent (compare case-insensitively).
        public var name: String
        /// The value: a token as sent, or a quoted-string with quotes and backslash escapes removed.
        public var value: String

        /// Creates a parameter.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The auth-scheme exactly as sent (compare case-insensitively, e.g. with ``hasScheme(_:)``).
    public var scheme: String
    /// The auth-params in the order sent. Empty when the challenge uses the token68 form.
    public var parameters: [Parameter]
    /// The token68 form (`Negotiate YIIB…==`), if the challenge used it.
    public var token68: String?

    /// Creates a challenge.
    public init(scheme: String, parameters: [Parameter] = [], token68: String? = nil) {
        self.scheme = scheme
        self.parameters = parameters
        self.token68 = token68
    }

    /// Whether the scheme equals `name`, ignoring ASCII case.
    public func hasScheme(_ name: String) -> Bool {
        asciiCaseInsensitiveEquals(scheme, name)
    }

    /// The value of the first parameter named `name` (ASCII case-insensitive), or `nil`.
    public func parameter(_ name: String) -> String? {
        parameters.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    /// The value of the first parameter named `name` (ASCII case-insensitive), or `nil`.
    public subscript(parameter name: String) -> String? {
        parameter(name)
    }

    /// The value of the first parameter named `name` (ASCII case-insensitive), or `nil`.
    public subscript(_ name: String) -> String? {
        parameter(name)
    }

    /// Parses the values of one or more `WWW-Authenticate` header lines into challenges, in order.
    ///
    /// Each field value is a comma-separated list of challenges; a challenge's parameters are also
    /// comma-separated, so a token followed by whitespace and then something other than `=`
    /// starts a new challenge, while `name=` continues the current one. Empty list elements and
    /// optional whitespace are tolerated. Each field value must start with an auth-scheme (a
    /// challenge is never continued across lines).
    ///
    /// Leniency beyond RFC 9110: an unquoted value runs until `,` or whitespace, so base64 with
    /// `/`, `+` and `=` padding is accepted unquoted (`macaroon=AgEE…==`).
    ///
    /// Ambiguity resolved by rule: right after a scheme, `name=` followed by nothing (end or `,`)
    /// is reported as ``ChallengeParseError/Kind/missingParameterValue`` rather than read as a
    /// token68 with one padding character, unless the text contains `/` (which a parameter name
    /// cannot).
    ///
    /// - Throws: ``ChallengeParseError`` for malformed input, or `.noChallenges` when no field
    ///   contains a challenge.
    public static func parse(_ fieldValues: [String]) throws(ChallengeParseError) -> [AuthChallenge] {
        var result: [AuthChallenge] = []
        for value in fieldValues {
            var parser = ChallengeFieldParser(Array(value.utf8))
            result += try parser.parseAll()
        }
        guard !result.isEmpty else {
            throw ChallengeParseError(.noChallenges, "WWW-Authenticate contains no challenge")
        }
        return result
    }

    /// Parses a single `WWW-Authenticate` field value (same rules as the `[String]` overload).
    public static func parse(_ fieldValue: String) throws(ChallengeParseError) -> [AuthChallenge] {
        try parse([fieldValue])
    }
}

// MARK: - Tokenizer

/// ASCII case-insensitive string equality (scheme and parameter names are ASCII tokens).
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    let x = a.utf8, y = b.utf8
    guard x.count == y.count else { return false }
    for (c, d) in zip(x, y) where asciiLower(c) != asciiLower(d) {
        return false
    }
    return true
}

@inline(__always)
private func asciiLower(_ c: UInt8) -> UInt8 {
    (c >= 0x41 && c <= 0x5A) ? c | 0x20 : c
}

/// RFC 9110 `tchar`.
@inline(__always)
private func isTchar(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
         UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
         UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}

/// RFC 9110 `token68` characters other than the trailing `=`.
@inline(__always)
private func isToken68Char(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
         UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
        return true
    default:
        return false
    }
}

@inline(__always)
private func isWhitespace(_ c: UInt8) -> Bool {
    c == UInt8(ascii: " ") || c == UInt8(ascii: "\t")
}

private let comma = UInt8(ascii: ",")
private let equals = UInt8(ascii: "=")
private let dquote = UInt8(ascii: "\"")
private let backslash = UInt8(ascii: "\\")

/// Recursive-descent parser over one field value's UTF-8 bytes.
private struct ChallengeFieldParser {
    let bytes: [UInt8]
    var pos = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var atEnd: Bool { pos >= bytes.count }
    var current: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    mutating func skipWhitespace() {
        while let c = current, isWhitespace(c) { pos += 1 }
    }

    func string(_ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    func describe(_ c: UInt8) -> String {
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x\(Hex.encode([c]))"
    }

    mutating func readToken() -> Range<Int> {
        let start = pos
        while let c = current, isTchar(c) { pos += 1 }
        return start..<pos
    }

    /// After a value or token68: optional whitespace, then end or a comma (consumed).
    mutating func expectListSeparator(after what: String) throws(ChallengeParseError) {
        skipWhitespace()
        guard let c = current else { return }
        guard c == comma else {
            if c == dquote {
                throw ChallengeParseError(.unexpectedCharacter, "unexpected '\"' after \(what)", offset: pos)
            }
            throw ChallengeParseError(.missingComma, "expected ',' or end of field after \(what), found \(describe(c))", offset: pos)
        }
        pos += 1
    }

    mutating func parseAll() throws(ChallengeParseError) -> [AuthChallenge] {
        var challenges: [AuthChallenge] = []
        var currentChallenge: AuthChallenge?
        // The scheme of the token68 challenge just finished, for a clearer error if `name=` follows.
        var lastToken68Scheme: String?
        while true {
            // Skip whitespace and empty list elements.
            skipWhitespace()
            while current == comma {
                pos += 1
                skipWhitespace()
            }
            guard let c = current else { break }
            if c == equals {
                throw ChallengeParseError(.missingParameterName, "'=' without a parameter name", offset: pos)
            }
            if c == dquote {
                throw ChallengeParseError(
                    currentChallenge == nil ? .missingScheme : .missingParameterName,
                    currentChallenge == nil ? "quoted-string where an auth-scheme was expected" : "quoted-string without a parameter name",
                    offset: pos
                )
            }
            let tokenStart = pos
            let token = readToken()
            if token.isEmpty {
                throw ChallengeParseError(.unexpectedCharacter, "unexpected \(describe(c)) where an auth-scheme or parameter name was expected", offset: pos)
            }
            let afterToken = pos
            skipWhitespace()
            if current == equals {
                // name = value → a parameter of the current challenge.
                let name = string(token)
                guard currentChallenge != nil else {
                    if let scheme = lastToken68Scheme {
                        throw ChallengeParseError(.missingScheme, "parameter '\(name)' follows the token68 of '\(scheme)', which takes no parameters", offset: tokenStart)
                    }
                    throw ChallengeParseError(.missingScheme, "parameter '\(name)' appears before any auth-scheme", offset: tokenStart)
                }
                pos += 1
                let value = try parseValue(name: name)
                currentChallenge!.parameters.append(.init(name: name, value: value))
                try expectListSeparator(after: "parameter '\(name)'")
                continue
            }
            // A new challenge.
            lastToken68Scheme = nil
            if let finished = currentChallenge { challenges.append(finished) }
            var challenge = AuthChallenge(scheme: string(token))
            guard pos > afterToken || atEnd || current == comma else {
                // Something glued to the scheme, e.g. `L402"x"` or `Basic/abc`.
                throw ChallengeParseError(.unexpectedCharacter, "unexpected \(describe(current!)) after auth-scheme '\(challenge.scheme)'", offset: pos)
            }
            guard let next = current, next != comma else {
                // Scheme with no parameters.
                if current == comma { pos += 1 }
                currentChallenge = challenge
                continue
            }
            if let token68 = try parseToken68IfPresent(startingWith: next) {
                challenge.token68 = token68
                challenges.append(challenge)
                currentChallenge = nil
                lastToken68Scheme = challenge.scheme
                try expectListSeparator(after: "token68 of '\(challenge.scheme)'")
                // A token68 challenge takes no parameters; the next element must be a scheme.
                continue
            }
            currentChallenge = challenge
        }
        if let finished = currentChallenge { challenges.append(finished) }
        return challenges
    }

    /// Looks ahead for `token68 OWS (end / ",")`. Returns the token68 and leaves `pos` after it,
    /// or returns `nil` and leaves `pos` unchanged (an auth-param list follows).
    mutating func parseToken68IfPresent(startingWith first: UInt8) throws(ChallengeParseError) -> String? {
        guard isToken68Char(first) else { return nil }
        let start = pos
        var end = pos
        var hasSlash = false
        while end < bytes.count, isToken68Char(bytes[end]) {
            if bytes[end] == UInt8(ascii: "/") { hasSlash = true }
            end += 1
        }
        let bodyEnd = end
        while end < bytes.count, bytes[end] == equals { end += 1 }
        let padding = end - bodyEnd
        var probe = end
        while probe < bytes.count, isWhitespace(bytes[probe]) { probe += 1 }
        guard probe == bytes.count || bytes[probe] == comma else {
            return nil  // `name=value` (or something the param parser will reject).
        }
        if padding == 1 && !hasSlash {
            let name = string(start..<bodyEnd)
            throw ChallengeParseError(.missingParameterValue, "parameter '\(name)' has no value", offset: bodyEnd)
        }
        pos = end
        return string(start..<end)
    }

    /// Parses a parameter value after `=`: BWS, then a quoted-string or a lenient unquoted value.
    mutating func parseValue(name: String) throws(ChallengeParseError) -> String {
        skipWhitespace()
        guard let c = current, c != comma else {
            throw ChallengeParseError(.missingParameterValue, "parameter '\(name)' has no value", offset: pos)
        }
        if c == dquote {
            return try parseQuotedString(name: name)
        }
        // Lenient token: anything up to ',' or whitespace (so base64 with '/', '+', '=' works).
        let start = pos
        while let d = current, d != comma, !isWhitespace(d) {
            if d == dquote {
                throw ChallengeParseError(.unexpectedCharacter, "unexpected '\"' inside the unquoted value of '\(name)'", offset: pos)
            }
            if d < 0x20 || d == 0x7F {
                throw ChallengeParseError(.unexpectedCharacter, "control character \(describe(d)) in the value of '\(name)'", offset: pos)
            }
            pos += 1
        }
        return string(start..<pos)
    }

    /// Parses `"…"` with `\x` quoted-pairs; HTAB and obs-text are allowed verbatim, other controls are not.
    mutating func parseQuotedString(name: String) throws(ChallengeParseError) -> String {
        let open = pos
        pos += 1
        // The common case: no escapes and no control characters before the closing quote, one slice.
        var end = pos
        while end < bytes.count {
            let c = bytes[end]
            if c == dquote || c == backslash || c < 0x20 && c != 0x09 || c == 0x7F { break }
            end += 1
        }
        if end < bytes.count, bytes[end] == dquote {
            defer { pos = end + 1 }
            return string(pos..<end)
        }
        var out: [UInt8] = []
        out.reserveCapacity(end - pos + 16)
        while true {
            guard let c = current else {
                throw ChallengeParseError(.unterminatedQuotedString, "unterminated quoted-string in the value of '\(name)'", offset: open)
            }
            pos += 1
            switch c {
            case dquote:
                return String(decoding: out, as: UTF8.self)
            case backslash:
                guard let escaped = current else {
                    throw ChallengeParseError(.unterminatedQuotedString, "unterminated quoted-string (trailing backslash) in the value of '\(name)'", offset: open)
                }
                if escaped < 0x20 && escaped != 0x09 || escaped == 0x7F {
                    throw ChallengeParseError(.unexpectedCharacter, "control character \(describe(escaped)) in the value of '\(name)'", offset: pos)
                }
                out.append(escaped)
                pos += 1
            default:
                if c < 0x20 && c != 0x09 || c == 0x7F {
                    throw ChallengeParseError(.unexpectedCharacter, "control character \(describe(c)) in the value of '\(name)'", offset: pos - 1)
                }
                out.append(c)
            }
        }
    }
}
