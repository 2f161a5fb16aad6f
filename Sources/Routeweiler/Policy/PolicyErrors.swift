/// A policy (file or value) is invalid: a syntax error, an unknown key, a value of the wrong type, a rule without
/// conditions. Raised when the policy is loaded or the client created, before any request.
///
/// ``path`` locates the problem (`rules[1].when.url_match`), ``key`` names an offending key.
public struct PolicyConfigurationError: RouteweilerError {
    /// What is wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The text is not valid JSON or YAML.
        public static let syntax = Code("syntax")
        /// A key the schema does not know (typo, or a feature this version lacks).
        public static let unknownKey = Code("unknown_key")
        /// A required key is absent.
        public static let missingKey = Code("missing_key")
        /// A value has the wrong type or is out of range.
        public static let invalidValue = Code("invalid_value")
        /// A rule's `when` sets no condition, or `any` is empty.
        public static let noCondition = Code("no_condition")
        /// The file could not be read.
        public static let unreadable = Code("unreadable")
    }

    public var errorName: String { "ConfigurationError" }
    public var code: Code
    /// Where in the document, e.g. `rules[0].when` (empty for the top level).
    public var path: String
    /// The offending key, for ``Code/unknownKey`` and ``Code/missingKey``.
    public var key: String?
    public var message: String

    public init(code: Code, path: String, key: String? = nil, _ detail: String) {
        self.code = code
        self.path = path
        self.key = key
        let location = path.isEmpty ? "policy" : "policy at \(path)"
        self.message = "\(location): \(detail)"
    }
}

/// The challenge's value exceeds the matching rule's `max_per_call_minor_units`. Nothing was paid.
public struct PolicyMaxPerCallExceededError: RouteweilerError {
    public var errorName: String { "PolicyMaxPerCallExceededError" }
    /// The rule that set the limit.
    public var ruleName: String?
    /// The challenge's value in minor units of the policy currency (buffered, rounded up).
    public var requested: Int64
    /// The limit in the same units.
    public var limit: Int64
    public var message: String

    public init(ruleName: String?, requested: Int64, limit: Int64) {
        self.ruleName = ruleName
        self.requested = requested
        self.limit = limit
        self.message =
            "Rule '\(ruleName ?? "default")': challenge amount \(requested) minor units exceeds max_per_call limit of \(limit)."
    }
}
