import Crypto

/// Why a macaroon could not be decoded (or an L402 identifier could not be read).
public enum MacaroonError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text is not base64 (standard or URL-safe, padding optional).
    case invalidBase64
    /// The data ends before the item named in the payload (zero bytes, a field, a section, the signature).
    case truncated(String)
    /// The first byte is neither `0x02` (V2 binary) nor an ASCII hex digit (V1).
    case unsupportedVersion(UInt8)
    /// A V2 varint never terminates or does not fit in 64 bits; payload = byte offset.
    case badVarint(offset: Int)
    /// A V2 field type that is not allowed in this section.
    case unknownField(type: UInt64, section: String)
    /// V2 fields inside a section are not in strictly increasing type order.
    case fieldsOutOfOrder(section: String)
    /// The header (or a caveat) has no identifier field.
    case missingIdentifier(section: String)
    /// No signature field where one is required (payload = what was found instead).
    case missingSignature(String)
    /// The signature is not 32 bytes; payload = its length.
    case wrongSignatureLength(Int)
    /// Bytes left over after the signature; payload = how many.
    case trailingData(Int)
    /// A V1 packet is malformed; payload explains how.
    case invalidV1Packet(String)
    /// A location is not valid UTF-8.
    case invalidUTF8(String)
    /// A V1 packet would exceed the 4-hex-digit length limit (65535 bytes).
    case packetTooLarge(Int)
    /// The identifier is not an L402 identifier (`uint16 version 0 ‖ payment hash 32 ‖ token id 32`).
    case invalidL402Identifier(String)

    /// A human-readable explanation.
    public var description: String {
        switch self {
        case .invalidBase64: return "macaroon is not valid base64"
        case .truncated(let what): return "macaroon data is truncated: \(what)"
        case .unsupportedVersion(let b): return "cannot determine macaroon format: first byte 0x\(Hex.encode([b])) is neither 0x02 (V2) nor an ASCII hex digit (V1)"
        case .badVarint(let offset): return "invalid varint at byte \(offset) (unterminated or wider than 64 bits)"
        case .unknownField(let type, let section): return "unexpected field type \(type) in macaroon \(section) section"
        case .fieldsOutOfOrder(let section): return "fields out of order in macaroon \(section) section"
        case .missingIdentifier(let section): return "macaroon \(section) section has no identifier"
        case .missingSignature(let found): return "macaroon has no signature (found \(found))"
        case .wrongSignatureLength(let n): return "macaroon signature has \(n) bytes, expected 32"
        case .trailingData(let n): return "\(n) unexpected byte(s) after the macaroon signature"
        case .invalidV1Packet(let why): return "invalid V1 macaroon packet: \(why)"
        case .invalidUTF8(let what): return "\(what) is not valid UTF-8"
        case .packetTooLarge(let n): return "V1 packet of \(n) bytes exceeds 65535"
        case .invalidL402Identifier(let why): return "not an L402 identifier: \(why)"
        }
    }
}

/// A macaroon (libmacaroons / gopkg.in/macaroon.v2 / pymacaroons compatible): location,
/// identifier, caveats and the HMAC-SHA256 chain signature.
///
/// Decodes V2 binary and V1 text serializations; encodes V2 (and V1). The signature chain:
/// `k = HMAC(key: "macaroons-key-generator", rootKey)`, `sig = HMAC(k, identifier)`, then per
/// first-party caveat `sig = HMAC(sig, caveatId)` and per third-party caveat
/// `sig = HMAC(sig, HMAC(sig, vid) ‖ HMAC(sig, caveatId))`.
public struct Macaroon: Sendable, Hashable {
    /// One caveat. First-party caveats have no verification id.
    public struct Caveat: Sendable, Hashable {
        /// The caveat location (third-party caveats); `nil` when absent.
        public var location: String?
        /// The caveat identifier (for first-party caveats, the predicate text such as `services=weather:0`).
        public var identifier: [UInt8]
        /// The verification id (`vid`) of a third-party caveat; `nil` for first-party caveats.
        public var verificationId: [UInt8]?

        /// Creates a caveat.
        public init(location: String? = nil, identifier: [UInt8], verificationId: [UInt8]? = nil) {
            self.location = location
            self.identifier = identifier
            self.verificationId = verificationId
        }

        /// Whether this is a first-party caveat (no or empty verification id, as in go-macaroon).
        public var isFirstParty: Bool { verificationId?.isEmpty ?? true }
    }

    /// The location hint. `nil` when the serialization omits it; `""` when it carries an empty
    /// one (pymacaroons writes `01 00`, go-macaroon omits it). Not covered by the signature.
    public var location: String?
    /// The identifier (for L402, see ``l402Identifier``).
    public var identifier: [UInt8]
    /// The caveats in order.
    public var caveats: [Caveat]
    /// The 32-byte chain signature.
    public var signature: [UInt8]

    /// Creates a macaroon from its parts (no signature check).
    public init(location: String?, identifier: [UInt8], caveats: [Caveat], signature: [UInt8]) {
        self.location = location
        self.identifier = identifier
        self.caveats = caveats
        self.signature = signature
    }

    // MARK: Decoding

    /// Decodes a base64 macaroon (standard or URL-safe alphabet, padding optional), V2 or V1.
    /// - Throws: ``MacaroonError``.
    public init(base64: String) throws(MacaroonError) {
        let trimmed = trimmedASCIIWhitespace(base64)
        guard let bytes = Base64.decode(trimmed) else { throw .invalidBase64 }
        try self.init(binary: bytes)
    }

    /// Decodes serialized bytes: V2 if the first byte is `0x02`, V1 if it is an ASCII hex digit.
    /// - Throws: ``MacaroonError``.
    public init(binary bytes: [UInt8]) throws(MacaroonError) {
        guard let first = bytes.first else { throw .truncated("no data") }
        if first == 0x02 {
            self = try Self.decodeV2(bytes)
        } else if Self.hexValue(first) != nil {
            self = try Self.decodeV1(bytes)
        } else {
            throw .unsupportedVersion(first)
        }
    }

    private enum Field: UInt64 {
        case eos = 0, location = 1, identifier = 2, verificationId = 4, signature = 6
    }

    private struct V2Reader {
        let bytes: [UInt8]
        var pos: Int

        var remaining: Int { bytes.count - pos }

        mutating func varint(_ what: @autoclosure () -> String) throws(MacaroonError) -> UInt64 {
            guard pos < bytes.count else { throw .truncated("expected \(what())") }
            let start = pos
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard pos < bytes.count else { throw .badVarint(offset: start) }
                let b = bytes[pos]
                pos += 1
                if shift == 63 && b > 1 { throw .badVarint(offset: start) }
                value |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return value }
                shift += 7
                if shift > 63 { throw .badVarint(offset: start) }
            }
        }

        /// One packet: field type, and (unless EOS) length and data.
        mutating func packet(_ context: @autoclosure () -> String) throws(MacaroonError) -> (type: UInt64, data: [UInt8]) {
            let type = try varint("a field type in the \(context())")
            if type == Field.eos.rawValue { return (type, []) }
            let length = try varint("a field length in the \(context())")
            guard length <= UInt64(remaining) else {
                throw .truncated("field data (\(length) bytes) extends past the end of the buffer in the \(context())")
            }
            let data = Array(bytes[pos..<pos + Int(length)])
            pos += Int(length)
            return (type, data)
        }

        /// The fields of one section, by type (each at most once: types strictly increase).
        struct Section {
            var location: [UInt8]?
            var identifier: [UInt8]?
            var verificationId: [UInt8]?
            var isEmpty: Bool { location == nil && identifier == nil && verificationId == nil }
        }

        /// A section: fields in increasing type order until EOS; `allowed` are the field types it may hold.
        mutating func section(_ context: StaticString, allowed: [Field]) throws(MacaroonError) -> Section {
            var fields = Section()
            var previous: UInt64?
            while true {
                let (type, data) = try packet("\(context) section")
                if type == Field.eos.rawValue { return fields }
                guard let field = Field(rawValue: type), allowed.contains(field) else {
                    throw .unknownField(type: type, section: "\(context)")
                }
                if let previous, type <= previous { throw .fieldsOutOfOrder(section: "\(context)") }
                previous = type
                switch field {
                case .location: fields.location = data
                case .identifier: fields.identifier = data
                case .verificationId: fields.verificationId = data
                case .eos, .signature: break  // not allowed in a section
                }
            }
        }
    }

    private static func utf8String(_ bytes: [UInt8], _ what: String) throws(MacaroonError) -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8(what) }
        return s
    }

    private static func decodeV2(_ bytes: [UInt8]) throws(MacaroonError) -> Macaroon {
        var reader = V2Reader(bytes: bytes, pos: 1)
        let header = try reader.section("header", allowed: [.location, .identifier])
        guard let identifier = header.identifier else { throw .missingIdentifier(section: "header") }
        let location = try header.location.map { (b: [UInt8]) throws(MacaroonError) in try utf8String(b, "location") }
        var caveats: [Caveat] = []
        while true {
            let fields = try reader.section("caveat", allowed: [.location, .identifier, .verificationId])
            if fields.isEmpty { break }
            guard let cid = fields.identifier else { throw .missingIdentifier(section: "caveat") }
            let cl = try fields.location.map { (b: [UInt8]) throws(MacaroonError) in try utf8String(b, "caveat location") }
            caveats.append(Caveat(location: cl, identifier: cid, verificationId: fields.verificationId))
        }
        let (type, signature) = try reader.packet("signature")
        guard type == Field.signature.rawValue else {
            throw .missingSignature(type == 0 ? "an extra end-of-section marker" : "field type \(type)")
        }
        guard signature.count == 32 else { throw .wrongSignatureLength(signature.count) }
        guard reader.remaining == 0 else { throw .trailingData(reader.remaining) }
        return Macaroon(location: location, identifier: identifier, caveats: caveats, signature: signature)
    }

    private static func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(c - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    private static func decodeV1(_ bytes: [UInt8]) throws(MacaroonError) -> Macaroon {
        var packets: [(key: String, value: [UInt8])] = []
        var pos = 0
        var signature: [UInt8]?
        while pos < bytes.count {
            guard bytes.count - pos >= 4 else { throw .truncated("V1 packet header at byte \(pos)") }
            var length = 0
            for i in 0..<4 {
                guard let v = hexValue(bytes[pos + i]) else {
                    throw .invalidV1Packet("non-hex length at byte \(pos + i)")
                }
                length = length << 4 | v
            }
            guard length >= 6 else { throw .invalidV1Packet("length \(length) is too short at byte \(pos)") }
            guard pos + length <= bytes.count else { throw .truncated("V1 packet of \(length) bytes at byte \(pos)") }
            let body = bytes[(pos + 4)..<(pos + length)]
            guard body.last == UInt8(ascii: "\n") else { throw .invalidV1Packet("packet at byte \(pos) does not end with a newline") }
            guard let space = body.firstIndex(of: UInt8(ascii: " ")) else {
                throw .invalidV1Packet("packet at byte \(pos) has no space between key and value")
            }
            let key = String(decoding: body[body.startIndex..<space], as: UTF8.self)
            let value = Array(body[(space + 1)..<(body.endIndex - 1)])
            pos += length
            if key == "signature" {
                signature = value
                break
            }
            packets.append((key, value))
        }
        guard let signature else { throw .missingSignature("end of data") }
        guard signature.count == 32 else { throw .wrongSignatureLength(signature.count) }
        guard pos == bytes.count else { throw .trailingData(bytes.count - pos) }

        var location: String?
        var identifier: [UInt8]?
        var caveats: [Caveat] = []
        for (index, packet) in packets.enumerated() {
            switch packet.key {
            case "location":
                guard index == 0 else { throw .invalidV1Packet("'location' must be the first packet") }
                location = try utf8String(packet.value, "location")
            case "identifier":
                guard identifier == nil, caveats.isEmpty else { throw .invalidV1Packet("unexpected 'identifier' packet") }
                identifier = packet.value
            case "cid":
                guard identifier != nil else { throw .invalidV1Packet("'cid' before 'identifier'") }
                caveats.append(Caveat(identifier: packet.value))
            case "vid":
                guard !caveats.isEmpty, caveats[caveats.count - 1].verificationId == nil else {
                    throw .invalidV1Packet("'vid' without a preceding 'cid'")
                }
                caveats[caveats.count - 1].verificationId = packet.value
            case "cl":
                guard !caveats.isEmpty, caveats[caveats.count - 1].location == nil else {
                    throw .invalidV1Packet("'cl' without a preceding 'cid'")
                }
                caveats[caveats.count - 1].location = try utf8String(packet.value, "caveat location")
            default:
                throw .invalidV1Packet("unknown key '\(packet.key)'")
            }
        }
        guard let identifier else { throw .missingIdentifier(section: "V1") }
        return Macaroon(location: location, identifier: identifier, caveats: caveats, signature: signature)
    }

    // MARK: Encoding

    /// The V2 binary serialization (as pymacaroons and go-macaroon write it; a `nil` location is
    /// omitted, an empty one is written as an empty field).
    public var serializedV2: [UInt8] {
        var out: [UInt8] = [0x02]
        func field(_ type: Field, _ data: [UInt8]) {
            appendVarint(type.rawValue, to: &out)
            appendVarint(UInt64(data.count), to: &out)
            out += data
        }
        if let location { field(.location, Array(location.utf8)) }
        field(.identifier, identifier)
        out.append(0)
        for caveat in caveats {
            if let location = caveat.location { field(.location, Array(location.utf8)) }
            field(.identifier, caveat.identifier)
            if let vid = caveat.verificationId { field(.verificationId, vid) }
            out.append(0)
        }
        out.append(0)
        field(.signature, signature)
        return out
    }

    /// ``serializedV2`` in standard base64 with padding (what Aperture sends in L402 headers).
    public var base64: String { Base64.encode(serializedV2) }

    /// ``serializedV2`` in URL-safe base64 without padding (what pymacaroons' `serialize()` returns).
    public var base64URL: String { Base64.encodeURL(serializedV2) }

    /// The V1 serialization: packets of 4 hex digits (total packet length), `key value\n`;
    /// keys `location`, `identifier`, then `cid`/`vid`/`cl` per caveat, then `signature`.
    /// - Throws: ``MacaroonError/packetTooLarge(_:)`` if a packet exceeds 65535 bytes.
    public func serializedV1() throws(MacaroonError) -> [UInt8] {
        var out: [UInt8] = []
        func packet(_ key: String, _ value: [UInt8]) throws(MacaroonError) {
            let length = 4 + key.utf8.count + 1 + value.count + 1
            guard length <= 0xFFFF else { throw .packetTooLarge(length) }
            let hex = Hex.encode([UInt8(length >> 8), UInt8(length & 0xFF)])
            out += Array(hex.utf8)
            out += Array(key.utf8)
            out.append(UInt8(ascii: " "))
            out += value
            out.append(UInt8(ascii: "\n"))
        }
        try packet("location", Array((location ?? "").utf8))
        try packet("identifier", identifier)
        for caveat in caveats {
            try packet("cid", caveat.identifier)
            if let vid = caveat.verificationId { try packet("vid", vid) }
            if let cl = caveat.location { try packet("cl", Array(cl.utf8)) }
        }
        try packet("signature", signature)
        return out
    }

    private func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    // MARK: Signatures

    private static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// The key derived from a root key: `HMAC-SHA256(key: "macaroons-key-generator", message: rootKey)`.
    public static func derivedKey(rootKey: [UInt8]) -> [UInt8] {
        hmac(key: Array("macaroons-key-generator".utf8), message: rootKey)
    }

    /// The signature after folding one caveat into `signature`.
    static func chain(_ signature: [UInt8], _ caveat: Caveat) -> [UInt8] {
        if caveat.isFirstParty {
            return hmac(key: signature, message: caveat.identifier)
        }
        let vidMac = hmac(key: signature, message: caveat.verificationId ?? [])
        let cidMac = hmac(key: signature, message: caveat.identifier)
        return hmac(key: signature, message: vidMac + cidMac)
    }

    /// The signatures a root key yields: after the identifier, then after each caveat
    /// (`caveats.count + 1` entries; the last should equal ``signature``).
    public func signatureChain(rootKey: [UInt8]) -> [[UInt8]] {
        var sig = Self.hmac(key: Self.derivedKey(rootKey: rootKey), message: identifier)
        var chain = [sig]
        for caveat in caveats {
            sig = Self.chain(sig, caveat)
            chain.append(sig)
        }
        return chain
    }

    /// Mints a caveat-free macaroon: signature = `HMAC(derivedKey(rootKey), identifier)`.
    public static func mint(rootKey: [UInt8], identifier: [UInt8], location: String?) -> Macaroon {
        let signature = hmac(key: derivedKey(rootKey: rootKey), message: identifier)
        return Macaroon(location: location, identifier: identifier, caveats: [], signature: signature)
    }

    /// This macaroon with a first-party caveat appended and the signature advanced
    /// (no root key needed).
    public func addingFirstPartyCaveat(_ predicate: [UInt8]) -> Macaroon {
        var copy = self
        let caveat = Caveat(identifier: predicate)
        copy.caveats.append(caveat)
        copy.signature = Self.chain(signature, caveat)
        return copy
    }

    /// This macaroon with a first-party caveat (UTF-8 text such as `valid_until=1800000000`) appended.
    public func addingFirstPartyCaveat(_ predicate: String) -> Macaroon {
        addingFirstPartyCaveat(Array(predicate.utf8))
    }

    /// Whether the signature chain from `rootKey` reproduces ``signature`` (constant-time compare).
    ///
    /// Checks integrity only: caveat predicates are not evaluated and third-party caveats'
    /// discharge macaroons are not checked (their `vid`/`cid` are folded into the chain).
    public func verifySignature(rootKey: [UInt8]) -> Bool {
        guard let expected = signatureChain(rootKey: rootKey).last, expected.count == signature.count else {
            return false
        }
        var diff: UInt8 = 0
        for (a, b) in zip(expected, signature) { diff |= a ^ b }
        return diff == 0
    }

    // MARK: Caveats

    /// First-party caveats that are UTF-8 `key=value` text, split at the first `=` and trimmed,
    /// in order (duplicates kept). Caveats without `=` or not valid UTF-8 are skipped.
    public var firstPartyCaveats: [(key: String, value: String)] {
        caveats.compactMap { caveat -> (key: String, value: String)? in
            guard caveat.isFirstParty,
                  let text = String(validating: caveat.identifier, as: UTF8.self),
                  let eq = text.utf8.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            return (trimmedASCIIWhitespace(text[..<eq]), trimmedASCIIWhitespace(text[text.index(after: eq)...]))
        }
    }

    /// The value of the first first-party caveat named `key` (exact match), or `nil`.
    public func firstPartyCaveat(_ key: String) -> String? {
        var found: String?
        forEachFirstPartyCaveat { k, v in
            guard Self.key(k, is: key) else { return true }
            found = String(decoding: v, as: UTF8.self)
            return false
        }
        return found
    }

    /// The earliest expiry (unix seconds) among `valid_until` and, when `service` is given,
    /// `<service>_valid_until` caveats; unparseable values are ignored. `nil` if none.
    public func expiry(service: String?) -> UInt64? {
        let serviceKey = service.map { "\($0)_valid_until" }
        var earliest: UInt64?
        forEachFirstPartyCaveat { k, v in
            if k.elementsEqual("valid_until".utf8) || serviceKey.map({ Self.key(k, is: $0) }) == true,
                let value = UInt64(String(decoding: v, as: UTF8.self))
            {
                earliest = min(earliest ?? value, value)
            }
            return true
        }
        return earliest
    }

    /// The name of the first `valid_until` or `*_valid_until` caveat whose unix-seconds value is
    /// `<= now`, or `nil` if none has expired.
    public func expiredCaveat(now: UInt64) -> String? {
        var expired: String?
        forEachFirstPartyCaveat { k, v in
            guard k.count >= 11, k[k.index(k.endIndex, offsetBy: -11)...].elementsEqual("valid_until".utf8),
                k.count == 11 || k[k.index(k.endIndex, offsetBy: -12)] == UInt8(ascii: "_"),
                let value = UInt64(String(decoding: v, as: UTF8.self)), value <= now
            else { return true }
            expired = String(decoding: k, as: UTF8.self)
            return false
        }
        return expired
    }

    /// Whether a caveat key's bytes name `key` as `String` equality does (canonical equivalence: byte equality for
    /// ASCII, the common case).
    private static func key(_ bytes: ArraySlice<UInt8>, is key: String) -> Bool {
        if bytes.allSatisfy({ $0 < 0x80 }), key.utf8.allSatisfy({ $0 < 0x80 }) { return bytes.elementsEqual(key.utf8) }
        return String(decoding: bytes, as: UTF8.self) == key
    }

    /// Calls `body` with the key and value bytes (split at the first `=`, trimmed) of each first-party caveat that
    /// is valid UTF-8 with an `=`, in order, as ``firstPartyCaveats`` lists them, until it returns `false`.
    private func forEachFirstPartyCaveat(_ body: (ArraySlice<UInt8>, ArraySlice<UInt8>) -> Bool) {
        func trimmed(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
            func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
            var lo = s.startIndex, hi = s.endIndex
            while lo < hi, isWhitespace(s[lo]) { lo += 1 }
            while hi > lo, isWhitespace(s[hi - 1]) { hi -= 1 }
            return s[lo..<hi]
        }
        for caveat in caveats where caveat.isFirstParty {
            let id = caveat.identifier[...]
            guard let eq = id.firstIndex(of: UInt8(ascii: "=")), String(validating: id, as: UTF8.self) != nil
            else { continue }
            if !body(trimmed(id[..<eq]), trimmed(id[(eq + 1)...])) { return }
        }
    }

    /// The identifier read as an L402 identifier, or `nil` if it is not one.
    public var l402Identifier: L402Identifier? {
        try? L402Identifier(bytes: identifier)
    }
}

/// An Aperture/L402 macaroon identifier: `uint16 big-endian version (0) ‖ payment hash (32) ‖ token id (32)`.
public struct L402Identifier: Sendable, Hashable {
    /// The identifier version; only 0 exists.
    public var version: UInt16
    /// The payment hash (SHA-256 of the preimage) of the invoice the macaroon is bound to.
    public var paymentHash: [UInt8]
    /// The token id Aperture uses to find the root key.
    public var tokenID: [UInt8]

    /// Creates an identifier from its parts.
    public init(version: UInt16 = 0, paymentHash: [UInt8], tokenID: [UInt8]) {
        self.version = version
        self.paymentHash = paymentHash
        self.tokenID = tokenID
    }

    /// Reads exactly 66 bytes with version 0.
    /// - Throws: ``MacaroonError/invalidL402Identifier(_:)``.
    public init(bytes: [UInt8]) throws(MacaroonError) {
        guard bytes.count == 66 else { throw .invalidL402Identifier("\(bytes.count) bytes, expected 66") }
        let version = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        guard version == 0 else { throw .invalidL402Identifier("version \(version), expected 0") }
        self.init(version: version, paymentHash: Array(bytes[2..<34]), tokenID: Array(bytes[34..<66]))
    }

    /// The 66-byte serialization.
    public var bytes: [UInt8] {
        [UInt8(version >> 8), UInt8(version & 0xFF)] + paymentHash + tokenID
    }

    /// The payment hash a preimage yields: `SHA-256(preimage)`.
    public static func paymentHash(forPreimage preimage: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: preimage))
    }

    /// Whether `SHA-256(preimage)` equals ``paymentHash`` (constant-time compare).
    public func isPaid(byPreimage preimage: [UInt8]) -> Bool {
        let hash = Self.paymentHash(forPreimage: preimage)
        guard hash.count == paymentHash.count else { return false }
        var diff: UInt8 = 0
        for (a, b) in zip(hash, paymentHash) { diff |= a ^ b }
        return diff == 0
    }
}
