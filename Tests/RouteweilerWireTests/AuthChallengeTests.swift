import Foundation
import Testing
@testable import RouteweilerWire

// MARK: - Generic WWW-Authenticate parsing

@Suite("WWW-Authenticate parser")
struct AuthChallengeParserTests {
    @Test func severalChallengesInOneLine() throws {
        let challenges = try AuthChallenge.parse([#"L402 macaroon="a", invoice="b", Payment id="x", method="tempo""#])
        #expect(challenges.count == 2)
        #expect(challenges[0].scheme == "L402")
        #expect(challenges[0].parameters == [.init(name: "macaroon", value: "a"), .init(name: "invoice", value: "b")])
        #expect(challenges[1].scheme == "Payment")
        #expect(challenges[1]["id"] == "x")
        #expect(challenges[1][parameter: "method"] == "tempo")
        #expect(challenges[1].parameter("macaroon") == nil)
    }

    @Test func severalLines() throws {
        let challenges = try AuthChallenge.parse([
            #"Basic realm="api""#,
            #"LSAT macaroon="m", invoice="i", L402 macaroon="m", invoice="i""#,
            #"Bearer"#,
        ])
        #expect(challenges.map(\.scheme) == ["Basic", "LSAT", "L402", "Bearer"])
        #expect(challenges[3].parameters.isEmpty && challenges[3].token68 == nil)
        #expect(challenges[0]["REALM"] == "api")
    }

    @Test func quotedStringEscapesAndSeparators() throws {
        let c = try #require(try AuthChallenge.parse(#"Basic realm="a \"b\" \\ c", x="one, two=three", e="""#).first)
        #expect(c["realm"] == #"a "b" \ c"#)
        #expect(c["x"] == "one, two=three")
        #expect(c["e"] == "")
        #expect(c.parameters.count == 3)
    }

    @Test func unquotedValuesIncludingBase64Padding() throws {
        let c = try #require(try AuthChallenge.parse("L402 macaroon=AgEE+/x9==, invoice=lnbcrt1abc,version=0").first)
        #expect(c["macaroon"] == "AgEE+/x9==")
        #expect(c["invoice"] == "lnbcrt1abc")
        #expect(c["version"] == "0")
    }

    @Test func anyOrderUnknownParametersAndDuplicates() throws {
        let c = try #require(try AuthChallenge.parse(#"L402 invoice="i", foo=bar, macaroon="m", version="0", invoice="other""#).first)
        #expect(c.parameters.map(\.name) == ["invoice", "foo", "macaroon", "version", "invoice"])
        #expect(c["foo"] == "bar")
        #expect(c["invoice"] == "i")  // first occurrence wins
        let l402 = try L402Challenge(c)
        #expect(l402 == L402Challenge(scheme: .l402, macaroon: "m", invoice: "i", version: "0"))
    }

    @Test func caseInsensitiveSchemeAndNames() throws {
        let c = try #require(try AuthChallenge.parse(#"lsat MACAROON="m", Invoice="i""#).first)
        #expect(c.scheme == "lsat")
        #expect(c.hasScheme("LSAT"))
        #expect(!c.hasScheme("L402"))
        #expect(c["macaroon"] == "m")
        let l402 = try L402Challenge(c)
        #expect(l402.scheme == .lsat)
        #expect(l402.authorization(preimageHex: "00ff") == "LSAT m:00ff")
    }

    @Test func token68() throws {
        let challenges = try AuthChallenge.parse(["Negotiate YIIBhwYGKwYBBQUCoIIBezCC/Aeg==, Basic dXNlcjpwYXNz , Bearer realm=\"x\"", "Foo abc/="])
        #expect(challenges.map(\.scheme) == ["Negotiate", "Basic", "Bearer", "Foo"])
        #expect(challenges[0].token68 == "YIIBhwYGKwYBBQUCoIIBezCC/Aeg==")
        #expect(challenges[0].parameters.isEmpty)
        #expect(challenges[1].token68 == "dXNlcjpwYXNz")
        #expect(challenges[2].token68 == nil)
        #expect(challenges[2]["realm"] == "x")
        #expect(challenges[3].token68 == "abc/=")
    }

    @Test func emptyElementsAndWhitespace() throws {
        let challenges = try AuthChallenge.parse(["  ,  L402   macaroon = \"m\" ,, invoice=\"i\"\t, ,Payment  id=x  ,  "])
        #expect(challenges.count == 2)
        #expect(challenges[0]["macaroon"] == "m")
        #expect(challenges[0]["invoice"] == "i")
        #expect(challenges[1].parameters == [.init(name: "id", value: "x")])
    }

    @Test func quotedStringsWithAndWithoutEscapes() throws {
        let c = try AuthChallenge.parse([#"L402 macaroon="a\"b", invoice="x\\y", realm="a, b"# + "\t" + #"c", note="", id="\q""#])[0]
        #expect(c["macaroon"] == #"a"b"#)
        #expect(c["invoice"] == #"x\y"#)
        #expect(c["realm"] == "a, b\tc")
        #expect(c["note"] == "")
        #expect(c["id"] == "q")
    }

    @Test func schemeWithoutParametersBeforeAnother() throws {
        let challenges = try AuthChallenge.parse(["Basic, L402 macaroon=m, invoice=i, Digest"])
        #expect(challenges.map(\.scheme) == ["Basic", "L402", "Digest"])
        #expect(challenges[0].parameters.isEmpty)
        #expect(challenges[1].parameters.count == 2)
    }

    @Test("malformed input throws a typed error", arguments: [
        (#"L402 macaroon="abc"#, ChallengeParseError.Kind.unterminatedQuotedString),
        (#"L402 macaroon="abc\"#, .unterminatedQuotedString),
        ("L402 invoice=", .missingParameterValue),
        ("L402 invoice=  ", .missingParameterValue),
        (#"L402 macaroon=, invoice="b""#, .missingParameterValue),
        (#"L402 macaroon="a", invoice="#, .missingParameterValue),
        ("=foo", .missingParameterName),
        (#"L402 macaroon="a", =foo"#, .missingParameterName),
        ("", .noChallenges),
        (" , ,\t", .noChallenges),
        (#"macaroon="x""#, .missingScheme),
        (#""x""#, .missingScheme),
        (#"L402 "abc""#, .missingParameterName),
        (#"L402 macaroon="a" invoice="b""#, .missingComma),
        ("L402 macaroon=a invoice=b", .missingComma),
        (#"L402 macaroon="a""b""#, .unexpectedCharacter),
        (#"L402 macaroon=a"b"#, .unexpectedCharacter),
        ("L402 macaroon=\"a\u{01}\"", .unexpectedCharacter),
        ("L402 macaroon=\"a\nb\"", .unexpectedCharacter),
        ("L402; macaroon=a", .unexpectedCharacter),
        ("@ foo", .unexpectedCharacter),
        ("Basic dXNlcg==, realm=\"x\"", .missingScheme),
    ])
    func malformed(_ input: String, _ kind: ChallengeParseError.Kind) {
        do {
            let parsed = try AuthChallenge.parse([input])
            Issue.record("parsed \(parsed) instead of throwing \(kind)")
        } catch {
            #expect(error.kind == kind, "got \(error.kind): \(error)")
            #expect(!error.message.isEmpty)
        }
    }

    @Test func noFieldValuesAtAll() {
        #expect(throws: ChallengeParseError.self) { try AuthChallenge.parse([String]()) }
        do {
            _ = try AuthChallenge.parse([String]())
        } catch {
            #expect(error.kind == .noChallenges)
        }
    }

    @Test func errorReportsOffset() {
        do {
            _ = try AuthChallenge.parse(#"L402 macaroon="abc"#)
            Issue.record("expected an error")
        } catch {
            #expect(error.offset == 14)
            #expect(error.description.contains("macaroon"))
        }
    }

    @Test func nonASCIIInsideQuotedStringIsKept() throws {
        let c = try #require(try AuthChallenge.parse("Payment description=\"café über\", realm=\"tab\there\"").first)
        #expect(c["description"] == "café über")
        #expect(c["realm"] == "tab\there")
    }
}

// MARK: - L402 / LSAT

@Suite("L402 challenge")
struct L402ChallengeTests {
    @Test func tokenAliasAndCommaInMacaroon() throws {
        let c = try L402Challenge(#require(try AuthChallenge.parse(#"L402 token=" m1 , m2", invoice="lnbc1""#).first))
        #expect(c.macaroon == "m1")
        #expect(c.invoice == "lnbc1")
        #expect(c.authorization(preimageHex: "ab") == "L402 m1:ab")
        // macaroon= is preferred over token=
        let both = try L402Challenge(#require(try AuthChallenge.parse(#"L402 token="t", macaroon="m", invoice="i""#).first))
        #expect(both.macaroon == "m")
    }

    @Test("scheme-level errors", arguments: [
        (#"Basic realm="x""#, ChallengeParseError.Kind.wrongScheme),
        (#"L402 invoice="i""#, .missingParameter),
        (#"L402 macaroon="m""#, .missingParameter),
        (#"L402 macaroon="m", invoice="""#, .missingParameter),
        (#"L402 macaroon=",x", invoice="i""#, .missingParameter),
        (#"LSAT macaroon="a b", invoice="i""#, .invalidParameter),
        ("L402 abcdef==", .missingParameter),
    ])
    func schemeErrors(_ header: String, _ kind: ChallengeParseError.Kind) throws {
        let challenge = try #require(try AuthChallenge.parse(header).first)
        do {
            let parsed = try L402Challenge(challenge)
            Issue.record("parsed \(parsed)")
        } catch {
            #expect(error.kind == kind, "got \(error)")
            #expect(error.message.hasPrefix("Cannot parse WWW-Authenticate as L402/LSAT"))
        }
    }

    @Test func dedupePrefersL402AndKeepsDistinctOffers() throws {
        let challenges = try AuthChallenge.parse([
            #"Payment id="p", method="lightning""#,
            #"LSAT macaroon="m1", invoice="i1", version="0""#,
            #"L402 macaroon="m2", invoice="i2""#,
            #"L402 macaroon="m1", invoice="i1""#,
            #"L402 macaroon="broken""#,
            #"LSAT macaroon="m2", invoice="i2""#,
            #"LSAT macaroon="m3", invoice="i3""#,
            #"L402 macaroon="m1", invoice="i1-other""#,
        ])
        let all = L402Challenge.all(in: challenges)
        #expect(all == [
            L402Challenge(scheme: .l402, macaroon: "m1", invoice: "i1", version: "0"),
            L402Challenge(scheme: .l402, macaroon: "m2", invoice: "i2"),
            L402Challenge(scheme: .lsat, macaroon: "m3", invoice: "i3"),
            L402Challenge(scheme: .l402, macaroon: "m1", invoice: "i1-other"),
        ])
        #expect(all[2].authorization(preimageHex: "00") == "LSAT m3:00")
        #expect(L402Challenge.all(in: try AuthChallenge.parse("Basic realm=x")).isEmpty)
    }

    @Test func decodedMacaroonIsNilForNonMacaroons() throws {
        let c = L402Challenge(scheme: .l402, macaroon: "bm90IGEgbWFjYXJvb24=", invoice: "i")
        #expect(c.decodedMacaroon == nil)
    }
}

// MARK: - Cross-implementation Payment (MPP) challenge headers

struct MPPVectorFile: Decodable, Sendable {
    struct Header: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let header: String
        let parsed: [String: String]
        var testDescription: String { name }
    }

    struct List: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let header: String
        let challenges: [[String: String]]?
        let error: Bool?
        var testDescription: String { name }
    }

    let challengeHeaders: [Header]
    let challengeLists: [List]

    static func load() throws -> MPPVectorFile {
        try JSONDecoder().decode(MPPVectorFile.self, from: Vectors.load("mpp-aperture-vectors.json"))
    }
}

@Suite("WWW-Authenticate parser on MPP/Aperture vectors")
struct MPPChallengeVectorTests {
    static let required = ["id", "realm", "method", "intent", "request"]

    @Test("single Payment challenge headers", arguments: try MPPVectorFile.load().challengeHeaders)
    func header(_ v: MPPVectorFile.Header) throws {
        let challenges = try AuthChallenge.parse([v.header])
        #expect(challenges.count == 1)
        let c = try #require(challenges.first)
        #expect(c.hasScheme("Payment"))
        #expect(c.parameters.count == v.parsed.count)
        for (name, value) in v.parsed {
            #expect(c[name] == value, "parameter \(name)")
        }
    }

    /// The generic parser splits the list; the test applies the MPP rules that belong to the
    /// Payment scheme (scheme match, all five required parameters, first occurrence wins).
    @Test("challenge lists split into the right challenges", arguments: try MPPVectorFile.load().challengeLists)
    func list(_ v: MPPVectorFile.List) throws {
        let payments: [[String: String]]
        do {
            payments = try AuthChallenge.parse([v.header])
                .filter { $0.hasScheme("Payment") }
                .compactMap { c -> [String: String]? in
                    var dict: [String: String] = [:]
                    for name in Self.required {
                        guard let value = c[name] else { return nil }
                        dict[name] = value
                    }
                    return dict
                }
        } catch {
            #expect(v.error == true, "unexpected parse error \(error)")
            return
        }
        if v.error == true {
            #expect(payments.isEmpty)
        } else {
            #expect(payments == v.challenges)
        }
    }
}
