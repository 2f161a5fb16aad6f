import Crypto
import Foundation

/// The payment policy (SPEC §9): ordered rules, first match wins, plus a default.
///
/// ```swift
/// let policy = try Policy(contentsOfFile: "policy.yaml")
/// // rules:
/// //   - name: no-trackers
/// //     when: { host: "*.tracking.io" }
/// //     deny: true
/// //   - name: cap
/// //     when: { url_matches: "*" }
/// //     max_per_call_minor_units: 500
/// // currency: usd
/// let decision = policy.evaluate(challenge: offer.challenge, requestURL: url, networks: ["eip155:8453"])
/// if let denied = decision.deniedError { throw denied }
/// ```
///
/// Files use the snake_case keys of SPEC §9.1; unknown keys are refused at every level with
/// ``PolicyConfigurationError`` naming the key and its path. The Swift extensions (`default_action`, `host`,
/// `origin`, `allowed_rails`, `allowed_networks`, `allowed_origins`) are left out of the hashed canonical form
/// while they hold their defaults, so ``hash`` matches the reference for every reference policy.
public struct Policy: Sendable, Codable, Hashable {
    /// What happens to a challenge that no rule matches.
    public enum DefaultAction: String, Sendable, Codable, Hashable, CaseIterable {
        /// Pay (subject to budgets) — the reference behaviour.
        case allow
        /// Refuse: only what a rule explicitly matches (and does not deny) is paid.
        case deny
    }

    /// The rail preferred when several are equally good. Default `x402`.
    public var defaultRail: RailID
    /// The currency of every `max_per_call_minor_units`; required when a rule sets one.
    public var currency: Currency?
    /// Checked in order; the first whose `when` matches decides.
    public var rules: [PolicyRule]
    /// What happens when no rule matches. Default ``DefaultAction/allow``.
    public var defaultAction: DefaultAction

    public init(defaultRail: RailID = .x402, currency: Currency? = nil, rules: [PolicyRule] = [],
                defaultAction: DefaultAction = .allow) {
        self.defaultRail = defaultRail
        self.currency = currency
        self.rules = rules
        self.defaultAction = defaultAction
    }

    /// `"sha256:" + hex(sha256(canonicalJSON))` (SPEC §9.3); goes into every trace row.
    public var hash: String {
        "sha256:" + SHA256.hash(data: Array(canonicalJSON.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The hashed form: compact, keys sorted, nulls included, non-ASCII as `\uXXXX`, snake_case keys.
    public var canonicalJSON: String { tree.canonicalJSON }

    /// Checks the invariants the loader enforces (rules with conditions, non-empty `any`, valid rails, a currency
    /// for `max_per_call_minor_units`, non-negative limits).
    /// - Throws: ``PolicyConfigurationError`` naming the first problem.
    public func validate() throws(PolicyConfigurationError) {
        try PolicyParser.validate(self)
    }

    // MARK: Codable (snake_case, strict)

    public init(from decoder: any Decoder) throws {
        self = try PolicyParser.policy(from: PolicyValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try tree.encode(to: encoder)
    }

    // MARK: Loading

    /// Parses and validates a JSON policy.
    /// - Throws: ``PolicyConfigurationError``.
    public init(json: Data) throws(PolicyConfigurationError) {
        self = try PolicyParser.policy(from: PolicyValue.parseJSON(json))
    }

    /// Parses and validates a YAML policy (same keys as JSON).
    /// - Throws: ``PolicyConfigurationError``.
    public init(yaml: String) throws(PolicyConfigurationError) {
        self = try PolicyParser.policy(from: PolicyValue.parseYAML(yaml))
    }

    /// Loads a policy file: `.json` as JSON, `.yaml`/`.yml` as YAML, anything else as JSON when it starts with
    /// `{` and as YAML otherwise.
    /// - Throws: ``PolicyConfigurationError``.
    public init(contentsOfFile path: String) throws(PolicyConfigurationError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PolicyConfigurationError(code: .unreadable, path: "", "cannot read \(path): \(error.localizedDescription)")
        }
        let ext = (path as NSString).pathExtension.lowercased()
        let text = String(decoding: data, as: UTF8.self)
        let isJSON =
            ext == "json" || (ext != "yaml" && ext != "yml" && text.drop(while: { $0.isWhitespace }).first == "{")
        self = isJSON ? try Policy(json: data) : try Policy(yaml: text)
    }

    /// The canonical tree (reference keys always; extensions only when not default).
    var tree: PolicyValue {
        var o: [String: PolicyValue] = [
            "default_rail": .string(defaultRail.rawValue),
            "currency": currency.map { .string($0.code) } ?? .null,
            "rules": .array(rules.map(\.tree)),
        ]
        if defaultAction != .allow { o["default_action"] = .string(defaultAction.rawValue) }
        return .object(o)
    }
}

/// One policy rule (SPEC §9.1 plus Swift extensions).
public struct PolicyRule: Sendable, Codable, Hashable {
    /// Shown in traces and errors.
    public var name: String
    /// When the rule applies (all set conditions must hold).
    public var when: RuleMatch
    /// Rails to prefer, best first (a routing tiebreak).
    public var prefer: [RailID]?
    /// Refuse matching challenges.
    public var deny: Bool
    /// Largest value of one call, in minor units of ``Policy/currency`` (FMV with buffer, rounded up).
    public var maxPerCallMinorUnits: Int64?
    /// Shown in ``PolicyDeniedError`` instead of the rule name.
    public var reason: String?
    /// Extension: matching challenges on other rails are refused.
    public var allowedRails: [RailID]?
    /// Extension: matching challenges on other networks are refused (CAIP-2 and short names compare equal).
    public var allowedNetworks: [String]?
    /// Extension: matching requests to other origins are refused (globs over `scheme://host[:port]`).
    public var allowedOrigins: [String]?

    public init(name: String, when: RuleMatch, prefer: [RailID]? = nil, deny: Bool = false,
                maxPerCallMinorUnits: Int64? = nil, reason: String? = nil, allowedRails: [RailID]? = nil,
                allowedNetworks: [String]? = nil, allowedOrigins: [String]? = nil) {
        self.name = name
        self.when = when
        self.prefer = prefer
        self.deny = deny
        self.maxPerCallMinorUnits = maxPerCallMinorUnits
        self.reason = reason
        self.allowedRails = allowedRails
        self.allowedNetworks = allowedNetworks
        self.allowedOrigins = allowedOrigins
    }

    public init(from decoder: any Decoder) throws {
        self = try PolicyParser.rule(from: PolicyValue(from: decoder), path: "")
    }

    public func encode(to encoder: any Encoder) throws { try tree.encode(to: encoder) }

    var tree: PolicyValue {
        var o: [String: PolicyValue] = [
            "name": .string(name),
            "when": when.tree,
            "prefer": prefer.map { .array($0.map { .string($0.rawValue) }) } ?? .null,
            "deny": .bool(deny),
            "max_per_call_minor_units": maxPerCallMinorUnits.map { .integer($0) } ?? .null,
            "reason": reason.map { .string($0) } ?? .null,
        ]
        if let allowedRails { o["allowed_rails"] = .array(allowedRails.map { .string($0.rawValue) }) }
        if let allowedNetworks { o["allowed_networks"] = .array(allowedNetworks.map { .string($0) }) }
        if let allowedOrigins { o["allowed_origins"] = .array(allowedOrigins.map { .string($0) }) }
        return .object(o)
    }
}

/// The conditions of a rule; all that are set must hold, and at least one must be set.
///
/// - ``urlMatches``: a shell glob (`*` any run including `/`, `?` one character, `[abc]`, `[!abc]`), case-sensitive,
///   over the full request URL — **except** that a pattern with neither `/` nor `:` is a host pattern (so
///   `*.tracking.io` matches `https://api.tracking.io/any/path`, as users mean; SPEC §16.16).
/// - ``host``: a glob over the host alone, case-insensitive, any path and port. `*.example.com` matches
///   `api.example.com` and `a.b.example.com` but **not** the apex `example.com` (add it via ``any``).
/// - ``origin``: a glob over `scheme://host[:port]` (default ports omitted), case-insensitive.
/// - ``scheme``: the challenge scheme (`exact`).
/// - ``network``: any of the challenge's networks; `base` and `eip155:8453` are the same network.
/// - ``any``: at least one sub-match holds; an empty list is a validation error.
public struct RuleMatch: Sendable, Codable, Hashable {
    public var urlMatches: String?
    public var host: String?
    public var origin: String?
    public var scheme: String?
    public var network: String?
    public var any: [RuleMatch]?

    public init(urlMatches: String? = nil, host: String? = nil, origin: String? = nil, scheme: String? = nil,
                network: String? = nil, any: [RuleMatch]? = nil) {
        self.urlMatches = urlMatches
        self.host = host
        self.origin = origin
        self.scheme = scheme
        self.network = network
        self.any = any
    }

    /// Whether at least one condition is set (a non-empty ``any`` counts).
    public var hasCondition: Bool {
        urlMatches != nil || host != nil || origin != nil || scheme != nil || network != nil
            || !(any ?? []).isEmpty
    }

    public init(from decoder: any Decoder) throws {
        self = try PolicyParser.match(from: PolicyValue(from: decoder), path: "")
    }

    public func encode(to encoder: any Encoder) throws { try tree.encode(to: encoder) }

    var tree: PolicyValue {
        var o: [String: PolicyValue] = [
            "url_matches": urlMatches.map { .string($0) } ?? .null,
            "scheme": scheme.map { .string($0) } ?? .null,
            "network": network.map { .string($0) } ?? .null,
            "any": any.map { .array($0.map(\.tree)) } ?? .null,
        ]
        if let host { o["host"] = .string(host) }
        if let origin { o["origin"] = .string(origin) }
        return .object(o)
    }
}
