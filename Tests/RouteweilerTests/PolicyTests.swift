import Foundation
import Testing
@testable import Routeweiler

/// Namespace so `swift test --filter PolicyTests` selects these suites.
@Suite enum PolicyTests {}

private func challenge(_ rail: RailID = .l402, url: String = "https://api.example.com/paid",
                       currency: String = "btc-lightning", amount: UInt64 = 10, scheme: String = "exact",
                       raw: [String: String] = [:]) -> NormalizedChallenge {
    NormalizedChallenge(
        rail: rail, resource: .init(method: "GET", url: url),
        price: .init(amount: amount, currency: currency, humanAmount: "\(amount)"), payee: .init(identifier: "p"),
        scheme: scheme, nonce: "n", expiresAt: Date(timeIntervalSince1970: 2_000_000_000), raw: raw)
}

private func url(_ s: String) -> URL { URL(string: s)! }

private let baseUSDCCurrency = "eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"

extension PolicyTests {
    @Suite struct PolicyHashTests {
        @Test func emptyPolicyVector() {
            let p = Policy()
            #expect(p.canonicalJSON == #"{"currency":null,"default_rail":"x402","rules":[]}"#)
            #expect(p.hash == "sha256:89215a103d7244d092f99b00841dbbdb739cb60275fd5982c9d0d1f65411c6c7")
            #expect(p.hash == RouteweilerClient.defaultPolicyHash)
        }

        @Test func capRuleVector() {
            let p = Policy(currency: .usd,
                           rules: [PolicyRule(name: "cap", when: RuleMatch(urlMatches: "*"), maxPerCallMinorUnits: 500)])
            #expect(
                p.canonicalJSON
                    == #"{"currency":"usd","default_rail":"x402","rules":[{"deny":false,"max_per_call_minor_units":500,"name":"cap","prefer":null,"reason":null,"when":{"any":null,"network":null,"scheme":null,"url_matches":"*"}}]}"#
            )
            #expect(p.hash == "sha256:5ceb1bc4bcde1632ea91e052f95d32c738ddad05d822a1549d5ced76f9e90d8d")
        }

        @Test func capRuleVectorLoadedFromJSONAndYAML() throws {
            let json = #"{"currency": "usd", "rules": [{"name": "cap", "when": {"url_matches": "*"}, "max_per_call_minor_units": 500}]}"#
            let yaml = """
                currency: usd
                rules:
                  - name: cap
                    when:
                      url_matches: "*"
                    max_per_call_minor_units: 500
                """
            let expected = "sha256:5ceb1bc4bcde1632ea91e052f95d32c738ddad05d822a1549d5ced76f9e90d8d"
            #expect(try Policy(json: Data(json.utf8)).hash == expected)
            #expect(try Policy(yaml: yaml).hash == expected)
        }

        @Test func hashIsSensitiveToEveryField() {
            let base = Policy(currency: .usd,
                              rules: [PolicyRule(name: "cap", when: RuleMatch(urlMatches: "*"), maxPerCallMinorUnits: 500)])
            var variants: [Policy] = []
            var v = base
            v.rules[0].maxPerCallMinorUnits = 501
            variants.append(v)
            v = base
            v.currency = .eur
            variants.append(v)
            v = base
            v.defaultRail = .l402
            variants.append(v)
            v = base
            v.defaultAction = .deny
            variants.append(v)
            v = base
            v.rules[0].when.host = "*.example.com"
            variants.append(v)
            v = base
            v.rules[0].allowedRails = [.l402]
            variants.append(v)
            v = base
            v.rules[0].prefer = []
            variants.append(v)
            v = base
            v.rules[0].deny = true
            variants.append(v)
            v = base
            v.rules.append(PolicyRule(name: "x", when: RuleMatch(scheme: "exact")))
            variants.append(v)
            let hashes = Set(([base] + variants).map(\.hash))
            #expect(hashes.count == variants.count + 1)
        }

        @Test func extensionsAreOmittedOnlyAtTheirDefaults() {
            var p = Policy(rules: [PolicyRule(name: "r", when: RuleMatch(host: "a.com"))])
            #expect(!p.canonicalJSON.contains("default_action"))
            #expect(!p.canonicalJSON.contains("allowed_rails"))
            #expect(p.canonicalJSON.contains(#""host":"a.com""#))
            p.defaultAction = .deny
            p.rules[0].allowedRails = [.l402]
            #expect(p.canonicalJSON.contains(#""default_action":"deny""#))
            #expect(p.canonicalJSON.contains(#""allowed_rails":["l402"]"#))
        }

        @Test func nonASCIIIsEscapedLikePython() {
            let p = Policy(rules: [PolicyRule(name: "café ☕ 😀 \"q\" a/b\n", when: RuleMatch(urlMatches: "*"))])
            #expect(p.canonicalJSON.contains(#""name":"caf\u00e9 \u2615 \ud83d\ude00 \"q\" a/b\n""#))
            let allASCII = p.canonicalJSON.unicodeScalars.allSatisfy(\.isASCII)
            #expect(allASCII)
        }
    }
}

extension PolicyTests {
    @Suite struct PolicyEvaluationTests {
        @Test func firstMatchWins() {
            let p = Policy(rules: [
                PolicyRule(name: "block-evil", when: RuleMatch(host: "evil.example.com"), deny: true, reason: "evil"),
                PolicyRule(name: "prefer-l402", when: RuleMatch(host: "*.example.com"), prefer: [.l402, .x402]),
                PolicyRule(name: "never-reached", when: RuleMatch(urlMatches: "*"), deny: true),
            ])
            let evil = p.evaluate(challenge: challenge(), requestURL: url("https://evil.example.com/x"))
            #expect(evil.ruleName == "block-evil")
            #expect(evil.deny)
            #expect(evil.deniedError?.message == "evil")
            #expect(evil.deniedError?.ruleName == "block-evil")
            let api = p.evaluate(challenge: challenge(), requestURL: url("https://api.example.com/x"))
            #expect(api.ruleName == "prefer-l402")
            #expect(!api.deny)
            #expect(api.deniedError == nil)
            #expect(api.prefer == [.l402, .x402])
            let other = p.evaluate(challenge: challenge(), requestURL: url("https://other.org/"))
            #expect(other.ruleName == "never-reached")
        }

        @Test func denyMessageFallsBackToRuleName() {
            let p = Policy(rules: [PolicyRule(name: "no", when: RuleMatch(urlMatches: "*"), deny: true)])
            let d = p.evaluate(challenge: challenge(), requestURL: url("https://a.com/"))
            #expect(d.deniedError?.message == "no")
            #expect(d.deniedError?.errorName == "PolicyDeniedError")
        }

        @Test func noMatchFallsThroughToTheDefault() {
            let p = Policy(rules: [PolicyRule(name: "only-a", when: RuleMatch(host: "a.com"), deny: true)])
            let d = p.evaluate(challenge: challenge(), requestURL: url("https://b.com/"))
            #expect(d == PolicyDecision())
            #expect(d.ruleName == nil && !d.deny && d.prefer.isEmpty && d.maxPerCallMinorUnits == nil)
        }

        @Test func defaultDenyRefusesWhatNoRuleAllows() {
            let p = Policy(rules: [PolicyRule(name: "trusted", when: RuleMatch(host: "*.trusted.io"))], defaultAction: .deny)
            let trusted = p.evaluate(challenge: challenge(), requestURL: url("https://api.trusted.io/v1"))
            #expect(!trusted.deny)
            #expect(trusted.ruleName == "trusted")
            let other = p.evaluate(challenge: challenge(), requestURL: url("https://api.untrusted.io/v1"))
            #expect(other.deny)
            #expect(other.ruleName == nil)
            #expect(other.deniedError?.message.contains("default action is deny") == true)
        }

        @Test(arguments: [
            ("https://api.tracking.io/path/deep?q=1", true),
            ("https://API.Tracking.IO/", true),
            ("https://a.b.tracking.io:8443/x", true),
            ("https://tracking.io/path", false),  // the apex is not a subdomain
            ("https://tracking.io.evil.com/", false),
            ("https://eviltracking.io/", false),
        ])
        func hostGlobMatchesAnyPathOnTheHost(target: String, expected: Bool) {
            let byHost = Policy(rules: [PolicyRule(name: "t", when: RuleMatch(host: "*.tracking.io"), deny: true)])
            // The README example: a url_matches pattern without '/' or ':' is a host pattern (SPEC §16.16 fix).
            let byURL = Policy(rules: [PolicyRule(name: "t", when: RuleMatch(urlMatches: "*.tracking.io"), deny: true)])
            #expect(byHost.evaluate(challenge: challenge(), requestURL: url(target)).deny == expected)
            #expect(byURL.evaluate(challenge: challenge(), requestURL: url(target)).deny == expected)
        }

        @Test func urlPatternsWithASlashGlobTheFullURL() {
            let p = Policy(rules: [PolicyRule(name: "paid", when: RuleMatch(urlMatches: "https://api.example.com/paid/*"), deny: true)])
            #expect(p.evaluate(challenge: challenge(), requestURL: url("https://api.example.com/paid/a/b?x=1")).deny)
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("https://api.example.com/free")).deny)
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("http://api.example.com/paid/a")).deny)
            // Case-sensitive like fnmatchcase on POSIX.
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("https://api.example.com/PAID/a")).deny)
        }

        @Test func matchesTheRequestedURLNotTheServersClaim() {
            let p = Policy(rules: [PolicyRule(name: "block", when: RuleMatch(host: "evil.com"), deny: true)])
            let c = challenge(url: "https://innocent.com/")  // written by the server
            #expect(p.evaluate(challenge: c, requestURL: url("https://evil.com/")).deny)
        }

        @Test func anyMatchesWhenOneSubMatchDoes() {
            let p = Policy(rules: [PolicyRule(
                name: "ab", when: RuleMatch(any: [RuleMatch(host: "a.com"), RuleMatch(host: "b.com")]), deny: true)])
            #expect(p.evaluate(challenge: challenge(), requestURL: url("https://b.com/x")).deny)
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("https://c.com/x")).deny)
        }

        @Test func allConditionsMustHold() {
            let p = Policy(rules: [PolicyRule(
                name: "both", when: RuleMatch(host: "a.com", network: "base"), deny: true)])
            #expect(p.evaluate(challenge: challenge(), requestURL: url("https://a.com/"), networks: ["eip155:8453"]).deny)
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("https://a.com/"), networks: ["eip155:137"]).deny)
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("https://b.com/"), networks: ["eip155:8453"]).deny)
        }

        @Test(arguments: [
            ("base", ["eip155:8453"], true),
            ("eip155:8453", ["base"], true),
            ("BASE", ["eip155:8453"], true),
            ("base", ["eip155:84532"], false),
            ("base-sepolia", ["eip155:84532"], true),
            ("tempo", ["tempo-chain-42430"], true),
            ("base", [], false),
            ("solana", ["solana"], true),
        ])
        func networkMatchesCAIP2AndShortNames(network: String, offered: [String], expected: Bool) {
            let p = Policy(rules: [PolicyRule(name: "n", when: RuleMatch(network: network), deny: true)])
            #expect(p.evaluate(challenge: challenge(.x402), requestURL: url("https://a.com/"), networks: offered).deny == expected)
        }

        @Test func networksAreDerivedFromTheChallengeCurrency() {
            let c = challenge(.x402, currency: baseUSDCCurrency)
            #expect(PolicyEngine.networks(of: c) == ["eip155:8453"])
            let p = Policy(rules: [PolicyRule(name: "n", when: RuleMatch(network: "base"), deny: true)])
            #expect(p.evaluate(challenge: c, requestURL: url("https://a.com/")).deny)
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("https://a.com/")).deny)
        }

        @Test func schemeCondition() {
            let p = Policy(rules: [PolicyRule(name: "s", when: RuleMatch(scheme: "upto"), deny: true)])
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("https://a.com/")).deny)
            #expect(p.evaluate(challenge: challenge(scheme: "upto"), requestURL: url("https://a.com/")).deny)
        }

        @Test func allowedRailsRefuseOtherRails() {
            let p = Policy(rules: [PolicyRule(name: "ln-only", when: RuleMatch(host: "*.example.com"), allowedRails: [.l402])])
            let l402 = p.evaluate(challenge: challenge(.l402), requestURL: url("https://api.example.com/"))
            #expect(!l402.deny)
            let x402 = p.evaluate(challenge: challenge(.x402, currency: baseUSDCCurrency), requestURL: url("https://api.example.com/"))
            #expect(x402.deny)
            #expect(x402.ruleName == "ln-only")
            #expect(x402.deniedError?.message.contains("x402 is not allowed") == true)
        }

        @Test func allowedNetworksRefuseOtherNetworks() {
            let p = Policy(rules: [PolicyRule(name: "base-only", when: RuleMatch(urlMatches: "*"), allowedNetworks: ["base"])])
            #expect(!p.evaluate(challenge: challenge(.x402), requestURL: url("https://a.com/"), networks: ["eip155:8453"]).deny)
            #expect(p.evaluate(challenge: challenge(.x402), requestURL: url("https://a.com/"), networks: ["eip155:137"]).deny)
            #expect(p.evaluate(challenge: challenge(.l402), requestURL: url("https://a.com/"), networks: []).deny)
        }

        @Test func allowedOrigins() {
            let p = Policy(rules: [PolicyRule(
                name: "origins", when: RuleMatch(urlMatches: "*"), allowedOrigins: ["https://*.example.com", "localhost"])])
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("https://api.example.com/x")).deny)
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("https://api.example.com:443/x")).deny)
            #expect(p.evaluate(challenge: challenge(), requestURL: url("http://api.example.com/x")).deny)
            #expect(p.evaluate(challenge: challenge(), requestURL: url("https://api.example.com:8443/x")).deny)
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("http://localhost:8080/x")).deny)
            #expect(p.evaluate(challenge: challenge(), requestURL: url("https://other.org/")).deny)
        }

        @Test func originCondition() {
            let p = Policy(rules: [PolicyRule(name: "o", when: RuleMatch(origin: "http://127.0.0.1:*"), deny: true)])
            #expect(p.evaluate(challenge: challenge(), requestURL: url("http://127.0.0.1:8080/p")).deny)
            #expect(!p.evaluate(challenge: challenge(), requestURL: url("https://127.0.0.1:8080/p")).deny)
        }

        @Test func maxPerCall() throws {
            let p = Policy(currency: .usd, rules: [PolicyRule(name: "cap", when: RuleMatch(urlMatches: "*"), maxPerCallMinorUnits: 500)])
            let d = p.evaluate(challenge: challenge(), requestURL: url("https://a.com/"))
            #expect(d.maxPerCallMinorUnits == 500)
            #expect(d.currency == .usd)
            try d.checkMaxPerCall(minorUnits: 500)
            let error = #expect(throws: PolicyMaxPerCallExceededError.self) { try d.checkMaxPerCall(minorUnits: 501) }
            #expect(error?.message == "Rule 'cap': challenge amount 501 minor units exceeds max_per_call limit of 500.")
            #expect(error?.requested == 501 && error?.limit == 500 && error?.ruleName == "cap")
            #expect(error?.errorName == "PolicyMaxPerCallExceededError")
        }

        @Test func maxPerCallWithAQuoteUsesTheRoundedUpBufferedValue() throws {
            let p = Policy(currency: .usd, rules: [PolicyRule(name: "cap", when: RuleMatch(urlMatches: "*"), maxPerCallMinorUnits: 341)])
            let d = p.evaluate(challenge: challenge(), requestURL: url("https://a.com/"))
            let rate = FmvRate(base: .satoshi, quote: .usd, rate: Decimal(string: "0.00065")!, fetchedAt: Date(),
                               quality: .coingeckoSimple, source: "test")
            let q = try FmvConverter().quote(amount: 5_000, currency: "btc-lightning", in: .usd, rate: rate)  // 342
            #expect(throws: PolicyMaxPerCallExceededError.self) { try d.checkMaxPerCall(q) }
            let eurQuote = try FmvConverter().quote(amount: 1, currency: "eur-fiat", in: .eur, rate: nil)
            #expect(throws: ConfigurationError.self) { try d.checkMaxPerCall(eurQuote) }
        }
    }
}

extension PolicyTests {
    @Suite struct PolicyLoadingTests {
        static let fullJSON = """
            {
              "default_rail": "l402",
              "currency": "eur",
              "default_action": "deny",
              "rules": [
                {"name": "trackers", "when": {"host": "*.tracking.io"}, "deny": true, "reason": "no trackers"},
                {"name": "base", "when": {"any": [{"network": "base"}, {"url_matches": "https://x402.example.com/*"}]},
                 "prefer": ["x402", "l402"], "max_per_call_minor_units": 250, "allowed_rails": ["x402"],
                 "allowed_networks": ["base"], "allowed_origins": ["https://*.example.com"]},
                {"name": "lightning", "when": {"origin": "https://ln.example.com", "scheme": "exact"}}
              ]
            }
            """

        static let fullYAML = """
            # The same policy in YAML.
            default_rail: l402
            currency: eur
            default_action: deny
            rules:
              - name: trackers
                when: { host: "*.tracking.io" }
                deny: true
                reason: no trackers
              - name: base
                when:
                  any:
                    - network: base
                    - url_matches: "https://x402.example.com/*"
                prefer: [x402, l402]
                max_per_call_minor_units: 250
                allowed_rails: [x402]
                allowed_networks: [base]
                allowed_origins: ["https://*.example.com"]
              - name: lightning
                when:
                  origin: https://ln.example.com
                  scheme: exact
            """

        @Test func loadsJSON() throws {
            let p = try Policy(json: Data(Self.fullJSON.utf8))
            #expect(p.defaultRail == .l402)
            #expect(p.currency == .eur)
            #expect(p.defaultAction == .deny)
            #expect(p.rules.map(\.name) == ["trackers", "base", "lightning"])
            #expect(p.rules[0].deny && p.rules[0].reason == "no trackers")
            #expect(p.rules[1].when.any?.count == 2)
            #expect(p.rules[1].prefer == [.x402, .l402])
            #expect(p.rules[1].maxPerCallMinorUnits == 250)
            #expect(p.rules[1].allowedRails == [.x402])
            #expect(p.rules[1].allowedNetworks == ["base"])
            #expect(p.rules[1].allowedOrigins == ["https://*.example.com"])
            #expect(p.rules[2].when.origin == "https://ln.example.com")
        }

        @Test func yamlAndJSONGiveTheSamePolicy() throws {
            let json = try Policy(json: Data(Self.fullJSON.utf8))
            let yaml = try Policy(yaml: Self.fullYAML)
            #expect(yaml == json)
            #expect(yaml.hash == json.hash)
        }

        @Test func loadsFilesByExtensionAndContent() throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rw-policy-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let files = [("p.json", Self.fullJSON), ("p.yaml", Self.fullYAML), ("p.yml", Self.fullYAML),
                         ("p.policy", Self.fullJSON), ("q.policy", Self.fullYAML)]
            let expected = try Policy(json: Data(Self.fullJSON.utf8))
            for (name, text) in files {
                let path = dir.appendingPathComponent(name).path
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                #expect(try Policy(contentsOfFile: path) == expected, "\(name)")
            }
            let error = #expect(throws: PolicyConfigurationError.self) {
                try Policy(contentsOfFile: dir.appendingPathComponent("missing.json").path)
            }
            #expect(error?.code == .unreadable)
        }

        @Test func codableRoundTrip() throws {
            let p = try Policy(json: Data(Self.fullJSON.utf8))
            let data = try JSONEncoder().encode(p)
            #expect(try JSONDecoder().decode(Policy.self, from: data) == p)
            #expect(try Policy(json: data) == p)
            #expect(try JSONDecoder().decode(Policy.self, from: JSONEncoder().encode(Policy())) == Policy())
        }

        @Test(arguments: [
            (#"{"default_rial": "x402"}"#, "default_rial", "default_rial"),
            (#"{"rules": [{"name": "a", "when": {"url_match": "*"}}]}"#, "url_match", "rules[0].when.url_match"),
            (#"{"rules": [{"name": "a", "when": {"url_matches": "*"}, "max_per_call": 5}]}"#, "max_per_call", "rules[0].max_per_call"),
            (#"{"rules": [{"name": "a", "when": {"any": [{"hots": "a.com"}]}}]}"#, "hots", "rules[0].when.any[0].hots"),
        ])
        func unknownJSONKeysAreNamed(json: String, key: String, path: String) {
            let error = #expect(throws: PolicyConfigurationError.self) { try Policy(json: Data(json.utf8)) }
            #expect(error?.code == .unknownKey)
            #expect(error?.key == key)
            #expect(error?.path == path)
            #expect(error?.message.contains("'\(key)'") == true)
            #expect(error?.errorName == "ConfigurationError")
        }

        @Test func unknownYAMLKeysAreNamed() {
            let yaml = """
                rules:
                  - name: a
                    when: { url_matches: "*" }
                    dney: true
                """
            let error = #expect(throws: PolicyConfigurationError.self) { try Policy(yaml: yaml) }
            #expect(error?.key == "dney")
            #expect(error?.path == "rules[0].dney")
        }

        @Test func codableDecodingIsStrictToo() {
            #expect(throws: PolicyConfigurationError.self) {
                try JSONDecoder().decode(Policy.self, from: Data(#"{"rules": [], "extra": 1}"#.utf8))
            }
        }

        @Test(arguments: [
            (#"{"rules": [{"name": "a", "when": {}}]}"#, "rules[0].when"),
            (#"{"rules": [{"name": "a", "when": {"any": []}}]}"#, "rules[0].when.any"),
            (#"{"rules": [{"name": "a", "when": {"any": [{}]}}]}"#, "rules[0].when.any[0]"),
            (#"{"rules": [{"name": "a", "when": {"url_matches": null}}]}"#, "rules[0].when"),
        ])
        func whenNeedsAConditionAndAnyCannotBeEmpty(json: String, path: String) {
            let error = #expect(throws: PolicyConfigurationError.self) { try Policy(json: Data(json.utf8)) }
            #expect(error?.code == .noCondition)
            #expect(error?.path == path)
        }

        @Test(arguments: [
            (#"{"rules": [{"name": "a", "when": {"url_matches": "*"}, "max_per_call_minor_units": 5}]}"#, "no currency"),
            (#"{"currency": "usd", "rules": [{"name": "a", "when": {"url_matches": "*"}, "max_per_call_minor_units": -1}]}"#, "negative"),
            (#"{"currency": "usd", "rules": [{"name": "a", "when": {"url_matches": "*"}, "max_per_call_minor_units": 5.5}]}"#, "integer"),
            (#"{"currency": "chf"}"#, "cannot denominate"),
            (#"{"currency": "zzz"}"#, "unknown currency"),
            (#"{"default_rail": "paypal"}"#, "unknown rail"),
            (#"{"rules": [{"name": "a", "when": {"url_matches": "*"}, "prefer": ["x402", "lsat"]}]}"#, "unknown rail 'lsat'"),
            (#"{"rules": [{"name": "a", "when": {"url_matches": "*"}, "deny": "yes"}]}"#, "true or false"),
            (#"{"rules": [{"name": "a", "when": {"url_matches": "*"}, "allowed_rails": []}]}"#, "empty list"),
            (#"{"rules": [{"when": {"url_matches": "*"}}]}"#, "needs a 'name'"),
            (#"{"rules": [{"name": "a"}]}"#, "needs a 'when'"),
            (#"{"default_action": "maybe"}"#, "'allow' or 'deny'"),
            (#"{"rules": {"name": "a"}}"#, "expected a list"),
            (#"[1, 2]"#, "expected an object"),
            (#"{"rules": [ }"#, "not valid JSON"),
        ])
        func invalidPoliciesAreRefused(json: String, fragment: String) {
            let error = #expect(throws: PolicyConfigurationError.self) { try Policy(json: Data(json.utf8)) }
            #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "no error")")
        }

        @Test func invalidYAMLIsRefused() {
            #expect(throws: PolicyConfigurationError.self) { try Policy(yaml: "rules: [unclosed") }
            #expect(throws: PolicyConfigurationError.self) { try Policy(yaml: "") }
            #expect(throws: PolicyConfigurationError.self) { try Policy(yaml: "rules:\n  - name: a\n    when: {url_matches: '*'}\n    deny: maybe\n") }
        }

        @Test func yamlQuotedScalarsStayText() throws {
            // A quoted "true" is a rule name, not a boolean; plain `yes`-style words are not booleans in rule names.
            let p = try Policy(yaml: "rules:\n  - name: \"true\"\n    when: {host: \"123\"}\n")
            #expect(p.rules[0].name == "true")
            #expect(p.rules[0].when.host == "123")
        }

        @Test func engineValidatesHandBuiltPolicies() throws {
            #expect(throws: PolicyConfigurationError.self) {
                try PolicyEngine(policy: Policy(rules: [PolicyRule(name: "a", when: RuleMatch(any: []))]))
            }
            #expect(throws: PolicyConfigurationError.self) {
                try PolicyEngine(policy: Policy(rules: [PolicyRule(name: "a", when: RuleMatch(urlMatches: "*"), maxPerCallMinorUnits: 1)]))
            }
            let engine = try PolicyEngine(policy: Policy())
            #expect(engine.policyHash == "sha256:89215a103d7244d092f99b00841dbbdb739cb60275fd5982c9d0d1f65411c6c7")
            #expect(!engine.evaluate(challenge: challenge(), requestURL: url("https://a.com/")).deny)
        }
    }
}

extension PolicyTests {
    @Suite struct GlobTests {
        @Test(arguments: [
            ("*", "", true),
            ("*", "https://a/b/c", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("[!a-c]x", "dx", true),
            ("[!a-c]x", "ax", false),
            ("[]]", "]", true),
            ("[!]]", "a", true),
            ("a[", "a[", true),
            ("*.io", "x.io", true),
            ("*.io", "x.io/p", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("https://*/paid/*", "https://h/paid/x", true),
            ("ABC", "abc", false),
        ])
        func fnmatchSemantics(pattern: String, text: String, expected: Bool) {
            #expect(Glob.matches(pattern, text) == expected)
        }
    }
}
