import Foundation

/// Turns a ``PolicyValue`` tree into a validated ``Policy``, refusing unknown keys with their path.
enum PolicyParser {
    static let policyKeys: Set<String> = ["default_rail", "currency", "rules", "default_action"]
    static let ruleKeys: Set<String> = [
        "name", "when", "prefer", "deny", "max_per_call_minor_units", "reason", "allowed_rails", "allowed_networks",
        "allowed_origins",
    ]
    static let matchKeys: Set<String> = ["url_matches", "host", "origin", "scheme", "network", "any"]

    static func policy(from value: PolicyValue) throws(PolicyConfigurationError) -> Policy {
        let o = try Object(value, path: "", allowed: policyKeys)
        var p = Policy()
        if let rail = try o.string("default_rail") { p.defaultRail = try self.rail(rail, path: o.child("default_rail")) }
        if let code = try o.string("currency") {
            do throws(UnknownCurrencyError) {
                p.currency = try Currency(envelopeCode: code)
            } catch {
                throw PolicyConfigurationError(code: .invalidValue, path: o.child("currency"), error.message)
            }
        }
        if let action = try o.string("default_action") {
            guard let a = Policy.DefaultAction(rawValue: action) else {
                throw PolicyConfigurationError(code: .invalidValue, path: o.child("default_action"),
                                               "must be 'allow' or 'deny', not '\(action)'")
            }
            p.defaultAction = a
        }
        if let rules = try o.array("rules") {
            var parsed: [PolicyRule] = []
            for (i, r) in rules.enumerated() { parsed.append(try rule(from: r, path: o.child("rules") + "[\(i)]")) }
            p.rules = parsed
        }
        try validate(p)
        return p
    }

    static func rule(from value: PolicyValue, path: String) throws(PolicyConfigurationError) -> PolicyRule {
        let o = try Object(value, path: path, allowed: ruleKeys)
        guard let name = try o.string("name") else {
            throw PolicyConfigurationError(code: .missingKey, path: path, key: "name", "a rule needs a 'name'")
        }
        guard let whenValue = o.values["when"], whenValue != .null else {
            throw PolicyConfigurationError(code: .missingKey, path: path, key: "when",
                                           "rule '\(name)' needs a 'when' condition")
        }
        var rule = PolicyRule(name: name, when: try match(from: whenValue, path: o.child("when")))
        rule.prefer = try o.railArray("prefer")
        rule.deny = try o.bool("deny") ?? false
        rule.maxPerCallMinorUnits = try o.integer("max_per_call_minor_units")
        rule.reason = try o.string("reason")
        rule.allowedRails = try o.railArray("allowed_rails")
        rule.allowedNetworks = try o.stringArray("allowed_networks")
        rule.allowedOrigins = try o.stringArray("allowed_origins")
        return rule
    }

    static func match(from value: PolicyValue, path: String) throws(PolicyConfigurationError) -> RuleMatch {
        let o = try Object(value, path: path, allowed: matchKeys)
        var m = RuleMatch()
        m.urlMatches = try o.string("url_matches")
        m.host = try o.string("host")
        m.origin = try o.string("origin")
        m.scheme = try o.string("scheme")
        m.network = try o.string("network")
        if let list = try o.array("any") {
            var subs: [RuleMatch] = []
            for (i, v) in list.enumerated() { subs.append(try match(from: v, path: o.child("any") + "[\(i)]")) }
            m.any = subs
        }
        return m
    }

    static func rail(_ s: String, path: String) throws(PolicyConfigurationError) -> RailID {
        let id = RailID(s)
        guard RailID.registrationOrder.contains(id) else {
            throw PolicyConfigurationError(
                code: .invalidValue, path: path,
                "unknown rail '\(s)' (one of \(RailID.registrationOrder.map(\.rawValue).joined(separator: ", ")))")
        }
        return id
    }

    // MARK: Validation

    static func validate(_ p: Policy) throws(PolicyConfigurationError) {
        _ = try rail(p.defaultRail.rawValue, path: "default_rail")
        if let c = p.currency, !c.isEnvelopeCurrency {
            throw PolicyConfigurationError(code: .invalidValue, path: "currency",
                                           UnknownCurrencyError(code: c.code, envelopeOnly: true).message)
        }
        for (i, r) in p.rules.enumerated() {
            let path = "rules[\(i)]"
            guard !r.name.isEmpty else {
                throw PolicyConfigurationError(code: .invalidValue, path: path + ".name", "a rule name cannot be empty")
            }
            try validate(r.when, path: path + ".when")
            for (j, rail) in (r.prefer ?? []).enumerated() { _ = try self.rail(rail.rawValue, path: "\(path).prefer[\(j)]") }
            for (j, rail) in (r.allowedRails ?? []).enumerated() {
                _ = try self.rail(rail.rawValue, path: "\(path).allowed_rails[\(j)]")
            }
            if let max = r.maxPerCallMinorUnits {
                guard max >= 0 else {
                    throw PolicyConfigurationError(code: .invalidValue, path: path + ".max_per_call_minor_units",
                                                   "must not be negative")
                }
                guard p.currency != nil else {
                    throw PolicyConfigurationError(
                        code: .invalidValue, path: path + ".max_per_call_minor_units",
                        "rule '\(r.name)' sets max_per_call_minor_units but the policy has no currency")
                }
            }
            if let list = r.allowedRails, list.isEmpty {
                throw PolicyConfigurationError(code: .invalidValue, path: path + ".allowed_rails",
                                               "an empty list would refuse everything; use deny: true")
            }
            if let list = r.allowedNetworks, list.isEmpty {
                throw PolicyConfigurationError(code: .invalidValue, path: path + ".allowed_networks",
                                               "an empty list would refuse everything; use deny: true")
            }
            if let list = r.allowedOrigins, list.isEmpty {
                throw PolicyConfigurationError(code: .invalidValue, path: path + ".allowed_origins",
                                               "an empty list would refuse everything; use deny: true")
            }
        }
    }

    static func validate(_ m: RuleMatch, path: String) throws(PolicyConfigurationError) {
        if let any = m.any {
            guard !any.isEmpty else {
                throw PolicyConfigurationError(code: .noCondition, path: path + ".any",
                                               "'any' must list at least one condition")
            }
            for (i, sub) in any.enumerated() { try validate(sub, path: "\(path).any[\(i)]") }
        }
        guard m.hasCondition else {
            throw PolicyConfigurationError(
                code: .noCondition, path: path,
                "set at least one of url_matches, host, origin, scheme, network, any")
        }
    }

    // MARK: Strict object access

    struct Object {
        let values: [String: PolicyValue]
        let path: String

        init(_ value: PolicyValue, path: String, allowed: Set<String>) throws(PolicyConfigurationError) {
            guard case .object(let o) = value else {
                throw PolicyConfigurationError(code: .invalidValue, path: path, "expected an object, found \(value.typeName)")
            }
            if let unknown = o.keys.filter({ !allowed.contains($0) }).sorted().first {
                let childPath = path.isEmpty ? unknown : "\(path).\(unknown)"
                throw PolicyConfigurationError(
                    code: .unknownKey, path: childPath, key: unknown,
                    "unknown key '\(unknown)' (allowed: \(allowed.sorted().joined(separator: ", ")))")
            }
            self.values = o
            self.path = path
        }

        func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

        private func present(_ key: String) -> PolicyValue? {
            guard let v = values[key], v != .null else { return nil }
            return v
        }

        private func wrongType(_ key: String, _ expected: String, _ v: PolicyValue) -> PolicyConfigurationError {
            PolicyConfigurationError(code: .invalidValue, path: child(key), "expected \(expected), found \(v.typeName)")
        }

        func string(_ key: String) throws(PolicyConfigurationError) -> String? {
            guard let v = present(key) else { return nil }
            guard case .string(let s) = v else { throw wrongType(key, "a string", v) }
            return s
        }

        func bool(_ key: String) throws(PolicyConfigurationError) -> Bool? {
            guard let v = present(key) else { return nil }
            guard case .bool(let b) = v else { throw wrongType(key, "true or false", v) }
            return b
        }

        func integer(_ key: String) throws(PolicyConfigurationError) -> Int64? {
            guard let v = present(key) else { return nil }
            guard case .integer(let i) = v else { throw wrongType(key, "an integer (minor units)", v) }
            return i
        }

        func array(_ key: String) throws(PolicyConfigurationError) -> [PolicyValue]? {
            guard let v = present(key) else { return nil }
            guard case .array(let a) = v else { throw wrongType(key, "a list", v) }
            return a
        }

        func stringArray(_ key: String) throws(PolicyConfigurationError) -> [String]? {
            guard let list = try array(key) else { return nil }
            var out: [String] = []
            for (i, v) in list.enumerated() {
                guard case .string(let s) = v else {
                    throw PolicyConfigurationError(code: .invalidValue, path: child(key) + "[\(i)]",
                                                   "expected a string, found \(v.typeName)")
                }
                out.append(s)
            }
            return out
        }

        func railArray(_ key: String) throws(PolicyConfigurationError) -> [RailID]? {
            guard let list = try stringArray(key) else { return nil }
            var out: [RailID] = []
            for (i, s) in list.enumerated() { out.append(try PolicyParser.rail(s, path: child(key) + "[\(i)]")) }
            return out
        }
    }
}
