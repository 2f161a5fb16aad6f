import Foundation

/// What the policy says about one offer (SPEC §9.2): the deciding rule, whether to refuse, preferences and limits.
public struct PolicyDecision: Sendable, Hashable {
    /// The first matching rule, or `nil` for the default decision.
    public var ruleName: String?
    /// Whether the offer must not be paid (the rule denies, a rule restriction is violated, or default-deny).
    public var deny: Bool
    /// Why, when ``deny`` is set (the rule's `reason`, else a description).
    public var denialMessage: String?
    /// Rails to prefer, best first (empty: no preference).
    public var prefer: [RailID]
    /// Limit for one call in minor units of ``currency``; check with ``checkMaxPerCall(_:)``.
    public var maxPerCallMinorUnits: Int64?
    /// The policy currency (the unit of ``maxPerCallMinorUnits``).
    public var currency: Currency?
    /// The rule's `reason`.
    public var reason: String?
    /// The rule's rail restriction, if any (already applied to ``deny``).
    public var allowedRails: [RailID]?
    /// The rule's network restriction, if any (already applied to ``deny``).
    public var allowedNetworks: [String]?

    public init(ruleName: String? = nil, deny: Bool = false, denialMessage: String? = nil, prefer: [RailID] = [],
                maxPerCallMinorUnits: Int64? = nil, currency: Currency? = nil, reason: String? = nil,
                allowedRails: [RailID]? = nil, allowedNetworks: [String]? = nil) {
        self.ruleName = ruleName
        self.deny = deny
        self.denialMessage = denialMessage
        self.prefer = prefer
        self.maxPerCallMinorUnits = maxPerCallMinorUnits
        self.currency = currency
        self.reason = reason
        self.allowedRails = allowedRails
        self.allowedNetworks = allowedNetworks
    }

    /// The error to report (and trace with the rule's name) when ``deny`` is set; `nil` otherwise.
    public var deniedError: PolicyDeniedError? {
        guard deny else { return nil }
        return PolicyDeniedError(denialMessage ?? reason ?? ruleName ?? "policy denied this payment", ruleName: ruleName)
    }

    /// Checks a value (minor units of ``currency``, buffered and rounded up) against ``maxPerCallMinorUnits``.
    /// - Throws: ``PolicyMaxPerCallExceededError`` when it is larger.
    public func checkMaxPerCall(minorUnits: Int64) throws(PolicyMaxPerCallExceededError) {
        guard let limit = maxPerCallMinorUnits, minorUnits > limit else { return }
        throw PolicyMaxPerCallExceededError(ruleName: ruleName, requested: minorUnits, limit: limit)
    }

    /// Checks an FMV quote against ``maxPerCallMinorUnits`` using its rounded-up, buffered ``FmvQuote/capMinorUnits``.
    /// - Throws: ``PolicyMaxPerCallExceededError`` when it is larger; ``ConfigurationError`` when the quote is not
    ///   in the policy currency.
    public func checkMaxPerCall(_ quote: FmvQuote) throws {
        guard maxPerCallMinorUnits != nil else { return }
        guard quote.envelopeCurrency == currency else {
            throw ConfigurationError(
                "max_per_call is in \(currency?.code ?? "no currency") but the quote is in \(quote.envelopeCurrency.code)")
        }
        try checkMaxPerCall(minorUnits: quote.capMinorUnits)
    }
}

/// Evaluates a validated ``Policy`` against offers; first match wins (SPEC §9.2 with the §16.16 fixes).
///
/// ```swift
/// let engine = try PolicyEngine(policy: policy)
/// for offer in offers {
///     let decision = engine.evaluate(challenge: offer.challenge, requestURL: url)
///     if decision.deny { reject(offer, decision.deniedError!) ; continue }
///     if decision.maxPerCallMinorUnits != nil, let cur = decision.currency {
///         try decision.checkMaxPerCall(try await converter.quote(offer.challenge.price, in: cur, provider: fmv))
///     }
/// }
/// ```
///
/// URL conditions (`url_matches`, `host`, `origin`, `allowed_origins`) look at the URL the client requested,
/// not at `challenge.resource.url`, which the server writes and could point at a more lenient rule.
public struct PolicyEngine: Sendable {
    /// The policy.
    public let policy: Policy
    /// ``Policy/hash``, computed once.
    public let policyHash: String

    /// Validates `policy` and prepares it.
    /// - Throws: ``PolicyConfigurationError``.
    public init(policy: Policy) throws(PolicyConfigurationError) {
        try policy.validate()
        self.policy = policy
        self.policyHash = policy.hash
    }

    /// Decides one offer.
    /// - Parameters:
    ///   - requestURL: The URL the client requested.
    ///   - networks: The challenge's networks (x402: every accepted network, CAIP-2 or short); `nil` derives them
    ///     from the challenge (``networks(of:)``).
    public func evaluate(challenge: NormalizedChallenge, requestURL: URL, networks: [String]? = nil) -> PolicyDecision {
        Self.evaluate(policy, challenge: challenge, requestURL: requestURL,
                      networks: networks ?? Self.networks(of: challenge))
    }

    /// The networks a challenge names: the prefix of an x402 `…/erc20:` currency, and `raw["network"]` if present.
    public static func networks(of challenge: NormalizedChallenge) -> [String] {
        var out: [String] = []
        let currency = challenge.price.currency
        if let n = networkPrefix(currency), !n.isEmpty { out.append(n) }
        if let n = challenge.raw["network"], !n.isEmpty, !out.contains(n) { out.append(n) }
        return out
    }

    /// What comes before the last `/erc20:` (any case) of an x402 currency, or `nil`: an ASCII search on the
    /// bytes (Foundation's case-insensitive `range(of:)` cost ~9 µs a call).
    package static func networkPrefix(_ currency: String) -> String? {
        let marker = Array("/erc20:".utf8)
        let bytes = Array(currency.utf8)
        guard bytes.count >= marker.count else { return nil }
        for start in stride(from: bytes.count - marker.count, through: 0, by: -1) {
            var equal = true
            for k in 0..<marker.count {
                let b = bytes[start + k]
                if (b >= 0x41 && b <= 0x5A ? b | 0x20 : b) != marker[k] { equal = false; break }
            }
            if equal { return String(decoding: bytes[..<start], as: UTF8.self) }
        }
        return nil
    }

    static func evaluate(_ policy: Policy, challenge: NormalizedChallenge, requestURL: URL, networks: [String])
        -> PolicyDecision
    {
        let target = MatchTarget(url: requestURL, scheme: challenge.scheme, networks: networks)
        for rule in policy.rules where matches(rule.when, target) {
            var d = PolicyDecision(
                ruleName: rule.name, deny: rule.deny, prefer: rule.prefer ?? [],
                maxPerCallMinorUnits: rule.maxPerCallMinorUnits, currency: policy.currency, reason: rule.reason,
                allowedRails: rule.allowedRails, allowedNetworks: rule.allowedNetworks)
            if rule.deny {
                d.denialMessage = rule.reason ?? rule.name
            } else if let rails = rule.allowedRails, !rails.contains(challenge.rail) {
                d.deny = true
                let allowed = rails.map(\.rawValue).joined(separator: ", ")
                d.denialMessage = rule.reason
                    ?? "Rule '\(rule.name)': rail \(challenge.rail) is not allowed (allowed: \(allowed))"
            } else if let allowed = rule.allowedNetworks,
                !networks.contains(where: { n in allowed.contains { KnownNetworks.same($0, n) } })
            {
                d.deny = true
                let offered = networks.isEmpty ? "no network" : networks.joined(separator: ", ")
                d.denialMessage = rule.reason
                    ?? "Rule '\(rule.name)': network \(offered) is not allowed (allowed: \(allowed.joined(separator: ", ")))"
            } else if let origins = rule.allowedOrigins,
                !origins.contains(where: { originAllowed($0, target) })
            {
                d.deny = true
                d.denialMessage = rule.reason ?? "Rule '\(rule.name)': origin \(target.origin) is not allowed"
            }
            return d
        }
        switch policy.defaultAction {
        case .allow:
            return PolicyDecision(currency: policy.currency)
        case .deny:
            return PolicyDecision(
                deny: true, denialMessage: "no policy rule matches \(target.origin) and the default action is deny",
                currency: policy.currency)
        }
    }

    // MARK: Matching

    package struct MatchTarget {
        var urlString: String
        var host: String
        var origin: String
        var scheme: String
        var networks: [String]

        init(url: URL, scheme: String, networks: [String]) {
            self.urlString = url.absoluteString
            (host, origin) = Self.hostAndOrigin(urlString) ?? Self.foundationHostAndOrigin(url)
            self.scheme = scheme
            self.networks = networks
        }

        /// The lower-cased host and the origin without a default port, read from a plain http(s) URL string's
        /// bytes (``URL/plainHTTPOrigin(_:)``); `nil` for other URLs.
        package static func hostAndOrigin(_ urlString: String) -> (host: String, origin: String)? {
            guard let full = URL.plainHTTPOrigin(urlString) else { return nil }
            let utf8 = full.utf8
            guard let colon = utf8.lastIndex(of: UInt8(ascii: ":")),
                let schemeEnd = utf8.firstIndex(of: UInt8(ascii: ":"))
            else { return nil }
            let hostStart = utf8.index(schemeEnd, offsetBy: 3)
            let host = String(full[hostStart..<colon])
            let isDefault = full.hasPrefix("https:") ? full.hasSuffix(":443") : full.hasSuffix(":80")
            return (host, isDefault ? String(full[..<colon]) : full)
        }

        /// The same through Foundation's accessors (any URL).
        package static func foundationHostAndOrigin(_ url: URL) -> (host: String, origin: String) {
            let host = (url.host ?? "").lowercased()
            let urlScheme = (url.scheme ?? "").lowercased()
            var origin = "\(urlScheme)://\(host.contains(":") ? "[\(host)]" : host)"
            if let port = url.port, !(urlScheme == "http" && port == 80) && !(urlScheme == "https" && port == 443) {
                origin += ":\(port)"
            }
            return (host, origin)
        }
    }

    static func matches(_ m: RuleMatch, _ t: MatchTarget) -> Bool {
        if let any = m.any, !any.contains(where: { matches($0, t) }) { return false }
        if let pattern = m.urlMatches {
            let hostOnly = !pattern.contains("/") && !pattern.contains(":")
            let ok = hostOnly ? Glob.matches(pattern.lowercased(), t.host) : Glob.matches(pattern, t.urlString)
            if !ok { return false }
        }
        if let host = m.host, !Glob.matches(host.lowercased(), t.host) { return false }
        if let origin = m.origin, !Glob.matches(origin.lowercased(), t.origin) { return false }
        if let scheme = m.scheme, scheme != t.scheme { return false }
        if let network = m.network, !t.networks.contains(where: { KnownNetworks.same($0, network) }) { return false }
        return m.hasCondition
    }

    /// An `allowed_origins` entry: a glob over the origin, or over the host when it has no `://`.
    static func originAllowed(_ pattern: String, _ t: MatchTarget) -> Bool {
        let p = pattern.lowercased()
        return p.contains("://") ? Glob.matches(p, t.origin) : Glob.matches(p, t.host)
    }
}

extension Policy {
    /// Decides one offer with this policy (first match wins). Validate first (``validate()`` or
    /// ``PolicyEngine/init(policy:)``); an unvalidated rule without conditions never matches.
    public func evaluate(challenge: NormalizedChallenge, requestURL: URL, networks: [String]? = nil) -> PolicyDecision {
        PolicyEngine.evaluate(self, challenge: challenge, requestURL: requestURL,
                              networks: networks ?? PolicyEngine.networks(of: challenge))
    }
}

/// Shell-style globs as Python's `fnmatch.fnmatchcase`: `*` any run (including `/`), `?` one character,
/// `[abc]`, `[a-z]`, `[!abc]`; an unclosed `[` is literal. Case-sensitive; callers lower-case for hosts.
enum Glob {
    private enum Token {
        case star
        case one
        case literal(Unicode.Scalar)
        case set(negated: Bool, ranges: [ClosedRange<Unicode.Scalar>])

        func accepts(_ c: Unicode.Scalar) -> Bool {
            switch self {
            case .star, .one: true
            case .literal(let l): l == c
            case .set(let negated, let ranges): ranges.contains { $0.contains(c) } != negated
            }
        }
    }

    static func matches(_ pattern: String, _ text: String) -> Bool {
        // The common patterns, without tokenising: "*" (every envelope's default origin glob) and plain names.
        if pattern == "*" { return true }
        if !pattern.utf8.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "[") }) {
            return pattern.unicodeScalars.elementsEqual(text.unicodeScalars)
        }
        let tokens = tokenize(Array(pattern.unicodeScalars))
        let s = Array(text.unicodeScalars)
        var ti = 0, si = 0
        var starToken = -1, starText = 0
        while si < s.count {
            if ti < tokens.count, case .star = tokens[ti] {
                starToken = ti
                starText = si
                ti += 1
            } else if ti < tokens.count, tokens[ti].accepts(s[si]) {
                ti += 1
                si += 1
            } else if starToken >= 0 {
                ti = starToken + 1
                starText += 1
                si = starText
            } else {
                return false
            }
        }
        while ti < tokens.count, case .star = tokens[ti] { ti += 1 }
        return ti == tokens.count
    }

    private static func tokenize(_ p: [Unicode.Scalar]) -> [Token] {
        var out: [Token] = []
        var i = 0
        while i < p.count {
            let c = p[i]
            switch c {
            case "*":
                if case .star? = out.last {} else { out.append(.star) }
                i += 1
            case "?":
                out.append(.one)
                i += 1
            case "[":
                if let (token, next) = parseSet(p, from: i) {
                    out.append(token)
                    i = next
                } else {
                    out.append(.literal("["))
                    i += 1
                }
            default:
                out.append(.literal(c))
                i += 1
            }
        }
        return out
    }

    /// Parses `[...]` starting at `start`; `nil` when unclosed.
    private static func parseSet(_ p: [Unicode.Scalar], from start: Int) -> (Token, Int)? {
        var j = start + 1
        var negated = false
        if j < p.count, p[j] == "!" {
            negated = true
            j += 1
        }
        var ranges: [ClosedRange<Unicode.Scalar>] = []
        var first = true
        while j < p.count {
            let c = p[j]
            if c == "]" && !first { return (.set(negated: negated, ranges: ranges), j + 1) }
            first = false
            if j + 2 < p.count, p[j + 1] == "-", p[j + 2] != "]" {
                let hi = p[j + 2]
                if c <= hi { ranges.append(c...hi) }
                j += 3
            } else {
                ranges.append(c...c)
                j += 1
            }
        }
        return nil
    }
}
