import Crypto

/// One challenge of the `Payment` HTTP authentication scheme (MPP, the Machine Payments Protocol):
///
/// ```
/// WWW-Authenticate: Payment id="…", realm="…", method="tempo", intent="charge", request="<base64url JSON>",
///                   expires="2026-03-15T12:05:00Z", digest="…", description="…", opaque="<base64url JSON>"
/// ```
///
/// `id`, `method` and `request` are required (`intent` defaults to `charge`); `request` must be base64url of a JSON object.
/// The parameters are kept exactly as sent, so the credential can echo them.
public struct MPPChallenge: Sendable, Hashable {
    public var id: String
    public var realm: String
    /// The payment method as sent (`tempo`, `stripe`, `card`, `lightning`, …; compare lower-cased).
    public var method: String
    /// The intent as sent (`charge`, `session`, …), empty when absent.
    public var intent: String
    /// The `request` parameter as sent (base64url).
    public var request: String
    /// The decoded `request` JSON object.
    public var requestJSON: JSONValue
    /// The `expires` parameter as sent (RFC 3339), if any.
    public var expires: String?
    public var digest: String?
    public var description: String?
    /// The `opaque` parameter as sent (base64url JSON), if any.
    public var opaque: String?

    /// Builds a challenge from its parts (servers and tests); `requestJSON` is encoded canonically into `request`.
    public init(id: String, realm: String, method: String, intent: String = "charge", request: JSONValue,
                expires: String? = nil, digest: String? = nil, description: String? = nil, opaque: String? = nil) {
        self.id = id
        self.realm = realm
        self.method = method
        self.intent = intent
        self.requestJSON = request
        self.request = Base64.encodeURL(request.canonical)
        self.expires = expires
        self.digest = digest
        self.description = description
        self.opaque = opaque
    }

    /// The method, lower-cased.
    public var methodName: String { method.lowercased() }
    /// The intent, lower-cased; `charge` when the server sent none.
    public var effectiveIntent: String { intent.isEmpty ? "charge" : intent.lowercased() }

    /// Reads a `Payment` challenge from a parsed `WWW-Authenticate` challenge.
    /// - Throws: ``ChallengeParseError`` (`.wrongScheme`, `.missingParameter`, `.invalidParameter`).
    public init(_ challenge: AuthChallenge) throws(ChallengeParseError) {
        guard challenge.hasScheme("Payment") else {
            throw ChallengeParseError(.wrongScheme, "not a Payment challenge (\(challenge.scheme))")
        }
        func required(_ name: String) throws(ChallengeParseError) -> String {
            guard let v = challenge[name], !v.isEmpty else {
                throw ChallengeParseError(.missingParameter, "Payment challenge missing '\(name)'")
            }
            return v
        }
        id = try required("id")
        request = try required("request")
        method = try required("method")
        realm = challenge["realm"] ?? ""
        intent = challenge["intent"] ?? ""
        guard let bytes = Base64.decode(request, alphabet: .url) else {
            throw ChallengeParseError(.invalidParameter, "failed to decode 'request': not base64url")
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(bytes)
        } catch {
            throw ChallengeParseError(.invalidParameter, "failed to decode 'request': \(error)")
        }
        guard case .object = json else {
            throw ChallengeParseError(.invalidParameter, "failed to decode 'request': not a JSON object")
        }
        requestJSON = json
        expires = challenge["expires"]
        digest = challenge["digest"]
        description = challenge["description"]
        opaque = challenge["opaque"]
    }

    /// Every structurally complete `Payment` challenge in the given `WWW-Authenticate` field values, in order.
    ///
    /// Challenges of other schemes are skipped; an incomplete `Payment` offer (no `id`, no `request`) is skipped
    /// too (it is not fatal for the others).
    /// - Throws: ``ChallengeParseError`` when the fields are malformed or hold no complete `Payment` challenge.
    public static func parseAll(_ fieldValues: [String]) throws(ChallengeParseError) -> [AuthChallenge] {
        let all = try AuthChallenge.parse(fieldValues)
        let complete = all.filter { c in
            c.hasScheme("Payment") && ["id", "realm", "method", "intent", "request"].allSatisfy { c[$0] != nil }
        }
        guard !complete.isEmpty else {
            throw ChallengeParseError(.missingParameter, "no complete Payment challenge")
        }
        return complete
    }

    /// The `WWW-Authenticate` field value for this challenge (quoted-strings, RFC 9110 escapes).
    public var headerValue: String {
        var parts = [("id", id), ("realm", realm), ("method", method), ("intent", intent), ("request", request)]
            .filter { $0.0 == "id" || $0.0 == "request" || $0.0 == "method" || !$0.1.isEmpty }
        if let expires { parts.append(("expires", expires)) }
        if let digest { parts.append(("digest", digest)) }
        if let description { parts.append(("description", description)) }
        if let opaque { parts.append(("opaque", opaque)) }
        return "Payment " + parts.map { "\($0.0)=\(Self.quoted($0.1))" }.joined(separator: ", ")
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for c in s {
            if c == "\"" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out + "\""
    }

    /// The challenge echo a credential carries: the parameters exactly as sent (case included), empty ones omitted.
    public var echo: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("id", .string(id))]
        for (k, v) in [("realm", realm), ("method", method), ("intent", intent), ("request", request),
                       ("expires", expires), ("digest", digest), ("description", description), ("opaque", opaque)] {
            if let v, !v.isEmpty { members.append((k, .string(v))) }
        }
        return .object(members)
    }

    /// The HMAC input a server binds its challenge id to: `realm|method|intent|request|expires|digest|opaque`
    /// (empty strings for absent optional slots; `description` is not covered).
    public var idBindingInput: String {
        [realm, method, intent, request, expires ?? "", digest ?? "", opaque ?? ""].joined(separator: "|")
    }

    /// The HMAC-SHA256 challenge id (base64url, no padding) a server with `secret` issues for these parameters.
    public static func boundID(secret: [UInt8], input: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: secret))
        return Base64.encodeURL(Array(mac))
    }

    /// The `request` object's member, when it is a string or an integer (`amount`, `currency`, `recipient`).
    public func requestField(_ name: String) -> JSONValue? { requestJSON[name] }
}

/// The credential of the `Payment` scheme: `Authorization: Payment <base64url(JCS(credential))>` with
/// `{"challenge": <echo>, "payload": {…}, "source": "…"}`.
public struct MPPCredential: Sendable, Hashable {
    /// The echoed challenge parameters.
    public var challenge: JSONValue
    /// The method-specific proof (`{"type":"transaction","signature":"0x76…"}`, `{"preimage":"…"}`).
    public var payload: JSONValue
    /// Who pays (`did:pkh:eip155:<chain>:<address>`, `stripe:customer:<id>`), if stated.
    public var source: String?

    public init(challenge: JSONValue, payload: JSONValue, source: String? = nil) {
        self.challenge = challenge
        self.payload = payload
        self.source = source
    }

    /// The credential JSON object.
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [("challenge", challenge), ("payload", payload)]
        if let source, !source.isEmpty { members.append(("source", .string(source))) }
        return .object(members)
    }

    /// The token: base64url (no padding) of the canonical (JCS) JSON.
    public var token: String { Base64.encodeURL(json.canonical) }

    /// `Payment <token>`.
    public var authorizationValue: String { "Payment " + token }

    /// The challenge id the credential answers.
    public var challengeID: String? { challenge["id"]?.stringValue }

    /// Parses an `Authorization: Payment <token>` value (servers and tests).
    /// - Throws: ``ChallengeParseError`` for another scheme, an empty or non-base64url token, non-JSON, or a
    ///   credential without `challenge.id` or `payload`.
    public init(authorization: String) throws(ChallengeParseError) {
        let trimmed = authorization.drop { $0 == " " }
        guard let space = trimmed.firstIndex(of: " "), trimmed[..<space].lowercased() == "payment" else {
            throw ChallengeParseError(.wrongScheme, "not a Payment credential")
        }
        let token = trimmed[trimmed.index(after: space)...].trimmingSpaces
        guard !token.isEmpty else { throw ChallengeParseError(.missingParameter, "empty Payment credential") }
        guard let bytes = Base64.decode(token, alphabet: .url) else {
            throw ChallengeParseError(.invalidParameter, "Payment credential is not base64url")
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(bytes)
        } catch {
            throw ChallengeParseError(.invalidParameter, "Payment credential is not JSON: \(error)")
        }
        guard let challenge = json["challenge"], case .object = challenge,
            let id = challenge["id"]?.stringValue, !id.isEmpty
        else { throw ChallengeParseError(.missingParameter, "Payment credential missing 'challenge.id'") }
        guard let payload = json["payload"], case .object = payload else {
            throw ChallengeParseError(.missingParameter, "Payment credential missing 'payload'")
        }
        self.challenge = challenge
        self.payload = payload
        self.source = json["source"]?.stringValue
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}

/// Why a `Payment-Receipt` could not be read.
public struct MPPReceiptError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The `Payment-Receipt` header: base64url of a JSON object `{status, method, timestamp, reference,
/// challengeId?, settlement?: {amount, currency}, …}`; unknown members are kept in ``json``.
public struct MPPReceipt: Sendable, Hashable {
    /// `success` or `failure`.
    public var status: String
    public var method: String
    public var timestamp: String?
    /// The on-chain transaction hash, PaymentIntent id or payment hash.
    public var reference: String?
    public var challengeID: String?
    /// `settlement.amount` as sent (a base-10 string or integer).
    public var amount: String?
    public var currency: String?
    /// The whole receipt as received.
    public var json: JSONValue

    /// Decodes a header value.
    /// - Throws: ``MPPReceiptError`` when it is not base64url JSON with `status` and `method` strings.
    public init(headerValue: String) throws(MPPReceiptError) {
        let text = Substring(headerValue).trimmingSpaces
        guard let bytes = Base64.decode(text, alphabet: .url) else {
            throw MPPReceiptError("failed to decode Payment-Receipt: not base64url")
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(bytes)
        } catch {
            throw MPPReceiptError("failed to decode Payment-Receipt: \(error)")
        }
        try self.init(json: json)
    }

    /// Reads a decoded receipt object.
    public init(json: JSONValue) throws(MPPReceiptError) {
        guard case .object = json else { throw MPPReceiptError("failed to decode Payment-Receipt: not an object") }
        guard let status = json["status"]?.stringValue else {
            throw MPPReceiptError("failed to decode Payment-Receipt: missing 'status'")
        }
        guard let method = json["method"]?.stringValue else {
            throw MPPReceiptError("failed to decode Payment-Receipt: missing 'method'")
        }
        self.status = status
        self.method = method
        self.timestamp = json["timestamp"]?.stringValue
        self.reference = json["reference"]?.stringValue
        self.challengeID = json["challengeId"]?.stringValue
        if let settlement = json["settlement"] {
            switch settlement["amount"] {
            case .string(let s)?: amount = s
            case .number(let n)?: amount = n
            default: amount = nil
            }
            currency = settlement["currency"]?.stringValue
        }
        self.json = json
    }

    /// Builds a receipt (servers and tests).
    public init(status: String = "success", method: String, timestamp: String, reference: String,
                challengeID: String?, amount: String? = nil, currency: String? = nil) {
        var members: [(key: String, value: JSONValue)] = [
            ("status", .string(status)), ("method", .string(method)), ("timestamp", .string(timestamp)),
            ("reference", .string(reference)),
        ]
        if let challengeID { members.append(("challengeId", .string(challengeID))) }
        if amount != nil || currency != nil {
            members.append(("settlement", .object([("amount", .string(amount ?? "0")),
                                                    ("currency", .string(currency ?? ""))])))
        }
        self.status = status
        self.method = method
        self.timestamp = timestamp
        self.reference = reference
        self.challengeID = challengeID
        self.amount = amount
        self.currency = currency
        self.json = .object(members)
    }

    /// The header value: base64url (no padding) of the canonical JSON.
    public var headerValue: String { Base64.encodeURL(json.canonical) }
}

/// An RFC 9457 problem-details body (`application/problem+json`): `type`, `title`, `status`, `detail`,
/// `instance`, plus extension members kept in ``json``.
public struct ProblemDetails: Sendable, Hashable {
    public var type: String
    public var title: String?
    public var status: Int?
    public var detail: String?
    public var instance: String?
    public var json: JSONValue

    /// Reads a problem-details body; `nil` when the body is not a JSON object with at least `type` or `title`.
    public init?(body: [UInt8]) {
        guard let json = try? JSONValue.parse(body), case .object = json else { return nil }
        let type = json["type"]?.stringValue
        let title = json["title"]?.stringValue
        guard type != nil || title != nil else { return nil }
        self.type = type ?? "about:blank"
        self.title = title
        if case .number(let n)? = json["status"] { status = Int(n) }
        detail = json["detail"]?.stringValue
        instance = json["instance"]?.stringValue
        self.json = json
    }

    /// The last path segment of `type` (`https://paymentauth.org/problems/verification-failed` →
    /// `verification-failed`).
    public var code: String {
        String(type.split(separator: "/").last ?? Substring(type))
    }
}

/// The `Accept-Payment` request header: the payment methods (and intents) a client prefers, with optional
/// quality values, e.g. `tempo, stripe;q=0.5, lightning/charge;q=0.1`.
public struct AcceptPayment: Sendable, Hashable {
    public struct Entry: Sendable, Hashable {
        /// The payment method (`tempo`, `stripe`, `lightning`, or `*`).
        public var method: String
        /// The intent (`charge`), if restricted.
        public var intent: String?
        /// The preference in 0…1; `nil` means 1.
        public var quality: Double?
        public init(method: String, intent: String? = nil, quality: Double? = nil) {
            self.method = method
            self.intent = intent
            self.quality = quality
        }
    }

    public var entries: [Entry]
    public init(_ entries: [Entry]) { self.entries = entries }

    /// The header value.
    public var headerValue: String {
        entries.map { e in
            var s = e.method.lowercased()
            if let intent = e.intent { s += "/" + intent.lowercased() }
            if let q = e.quality, q < 1 {
                let millis = Int((max(0, q) * 1000).rounded())
                var frac = String(millis)
                while frac.count < 3 { frac = "0" + frac }
                while frac.hasSuffix("0") { frac.removeLast() }
                s += ";q=0" + (frac.isEmpty ? "" : "." + frac)
            }
            return s
        }.joined(separator: ", ")
    }
}
