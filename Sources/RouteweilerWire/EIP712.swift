// EIP-712 typed structured data hashing, plus an EIP-3009 `TransferWithAuthorization`
// convenience. Pure: no I/O, no clock.

// MARK: - Errors

/// Why a typed-data document or value could not be encoded.
public enum EIP712Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// A referenced struct type is not defined in `types` (and is not an atomic type).
    case unknownType(String)
    /// A type name is malformed (e.g. `uint7`, `bytes33`, `T[`).
    case invalidTypeName(String)
    /// A struct value lacks a declared field.
    case missingField(type: String, field: String)
    /// A value does not fit its declared type; `reason` explains.
    case invalidValue(type: String, reason: String)

    public var description: String {
        switch self {
        case .unknownType(let t): return "EIP-712: unknown type '\(t)'"
        case .invalidTypeName(let t): return "EIP-712: invalid type name '\(t)'"
        case .missingField(let t, let f): return "EIP-712: \(t) value is missing field '\(f)'"
        case .invalidValue(let t, let reason): return "EIP-712: invalid \(t) value: \(reason)"
        }
    }
}

/// Why a decimal or hex string is not an unsigned 256-bit integer.
public enum UInt256Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// Empty string, or a character that is not a digit of the expected base.
    case invalidDigits
    /// The value is 2^256 or larger.
    case overflow

    public var description: String {
        switch self {
        case .invalidDigits: return "not a non-negative integer string"
        case .overflow: return "integer does not fit in 256 bits"
        }
    }
}

// MARK: - 256-bit helpers

/// Helpers for 256-bit unsigned integers held as 32-byte big-endian arrays (the ABI word).
public enum UInt256BE {
    /// Zero, as a 32-byte word.
    public static let zero = [UInt8](repeating: 0, count: 32)

    /// Converts a decimal string of ASCII digits (no sign, no separators) to a 32-byte
    /// big-endian word.
    public static func fromDecimal(_ text: some StringProtocol) throws(UInt256Error) -> [UInt8] {
        let digits = Array(text.utf8)
        guard !digits.isEmpty else { throw .invalidDigits }
        var word = zero
        for c in digits {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { throw .invalidDigits }
            // word = word * 10 + digit
            var carry = UInt16(c - UInt8(ascii: "0"))
            for i in stride(from: 31, through: 0, by: -1) {
                let v = UInt16(word[i]) * 10 + carry
                word[i] = UInt8(truncatingIfNeeded: v)
                carry = v >> 8
            }
            guard carry == 0 else { throw .overflow }
        }
        return word
    }

    /// Converts a `0x`-prefixed hex string (up to 64 digits, odd lengths allowed) to a 32-byte
    /// big-endian word.
    public static func fromHex(_ text: some StringProtocol) throws(UInt256Error) -> [UInt8] {
        var digits = Substring(text)
        guard digits.hasPrefix("0x") || digits.hasPrefix("0X") else { throw .invalidDigits }
        digits = digits.dropFirst(2)
        guard !digits.isEmpty else { throw .invalidDigits }
        // Strip leading zeros so over-long zero padding is accepted.
        while digits.count > 1, digits.first == "0" { digits = digits.dropFirst() }
        guard digits.utf8.count <= 64 else {
            throw Hex.decode(digits.utf8.count % 2 == 0 ? String(digits) : "0" + digits) == nil
                ? .invalidDigits : .overflow
        }
        let even = digits.utf8.count % 2 == 0 ? String(digits) : "0" + digits
        guard let raw = Hex.decode(even) else { throw .invalidDigits }
        return [UInt8](repeating: 0, count: 32 - raw.count) + raw
    }

    /// Parses a decimal string, or a hex string if it has a `0x` prefix.
    public static func parse(_ text: some StringProtocol) throws(UInt256Error) -> [UInt8] {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return try fromHex(text) }
        return try fromDecimal(text)
    }

    /// A `UInt64` as a 32-byte big-endian word.
    public static func from(_ value: UInt64) -> [UInt8] {
        var word = zero
        for i in 0..<8 { word[31 - i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        return word
    }

    /// The number of significant bits in a big-endian word (0 for zero).
    static func bitLength(_ word: [UInt8]) -> Int {
        for (i, b) in word.enumerated() where b != 0 {
            return (word.count - i) * 8 - b.leadingZeroBitCount
        }
        return 0
    }

    /// Two's-complement negation of a 32-byte word.
    static func negate(_ word: [UInt8]) -> [UInt8] {
        var out = word.map { ~$0 }
        var carry: UInt16 = 1
        for i in stride(from: 31, through: 0, by: -1) {
            let v = UInt16(out[i]) + carry
            out[i] = UInt8(truncatingIfNeeded: v)
            carry = v >> 8
        }
        return out
    }
}

// MARK: - Generic typed data

/// EIP-712 typed structured data hashing.
public enum EIP712 {
    /// One member of a struct type: `type name`.
    public struct Field: Sendable, Hashable, Codable {
        /// The member name.
        public var name: String
        /// The member type, e.g. `address`, `uint256`, `bytes32`, `Person`, `Person[]`, `uint8[3]`.
        public var type: String

        /// Creates a field.
        public init(name: String, type: String) {
            self.name = name
            self.type = type
        }
    }

    /// A JSON-like value for typed-data domains and messages.
    ///
    /// Integers may be given as ``number(_:)`` (decimal text, optionally negative) or as
    /// ``string(_:)`` holding decimal or `0x` hex; byte strings as `0x` hex ``string(_:)`` or
    /// ``bytes(_:)``; addresses as hex ``string(_:)``.
    public indirect enum Value: Sendable, Hashable, Codable {
        /// A string (text, hex bytes, address or integer text).
        case string(String)
        /// An integer as decimal text, e.g. `"8453"` or `"-1"`.
        case number(String)
        /// A boolean.
        case bool(Bool)
        /// Raw bytes.
        case bytes([UInt8])
        /// An array (for `T[]` / `T[n]`).
        case array([Value])
        /// A struct value keyed by field name.
        case object([String: Value])

        /// The member `key` of an ``object(_:)``, or `nil`.
        public subscript(key: String) -> Value? {
            if case .object(let members) = self { return members[key] }
            return nil
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b); return }
            if let i = try? c.decode(Int64.self) { self = .number(String(i)); return }
            if let u = try? c.decode(UInt64.self) { self = .number(String(u)); return }
            if let s = try? c.decode(String.self) { self = .string(s); return }
            if let a = try? c.decode([Value].self) { self = .array(a); return }
            if let o = try? c.decode([String: Value].self) { self = .object(o); return }
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "unsupported EIP-712 value (non-integer numbers and null are not allowed)"
            )
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .string(let s): try c.encode(s)
            case .number(let n):
                if let i = Int64(n) { try c.encode(i) } else { try c.encode(n) }
            case .bool(let b): try c.encode(b)
            case .bytes(let b): try c.encode("0x" + b.hexString)
            case .array(let a): try c.encode(a)
            case .object(let o): try c.encode(o)
            }
        }
    }

    /// A typed-data document as in `eth_signTypedData_v4`.
    public struct TypedData: Sendable, Hashable, Codable {
        /// Struct type definitions by name. `EIP712Domain` may be omitted; it is then
        /// inferred from the keys present in ``domain`` in the canonical order
        /// `name, version, chainId, verifyingContract, salt`.
        public var types: [String: [Field]]
        /// The struct type of ``message``.
        public var primaryType: String
        /// The domain value (an ``Value/object(_:)``).
        public var domain: Value
        /// The message value (an ``Value/object(_:)``).
        public var message: Value

        /// Creates a typed-data document.
        public init(types: [String: [Field]], primaryType: String, domain: Value, message: Value) {
            self.types = types
            self.primaryType = primaryType
            self.domain = domain
            self.message = message
        }

        /// The standard `EIP712Domain` members, in canonical order.
        static let standardDomainFields: [Field] = [
            Field(name: "name", type: "string"),
            Field(name: "version", type: "string"),
            Field(name: "chainId", type: "uint256"),
            Field(name: "verifyingContract", type: "address"),
            Field(name: "salt", type: "bytes32"),
        ]

        /// ``types`` with `EIP712Domain` filled in if it was absent.
        var resolvedTypes: [String: [Field]] {
            guard types["EIP712Domain"] == nil else { return types }
            var out = types
            out["EIP712Domain"] = Self.standardDomainFields.filter { domain[$0.name] != nil }
            return out
        }

        /// The canonical type string of `type`, e.g.
        /// `Mail(Person from,Person to,string contents)Person(string name,address wallet)`.
        public func encodeType(_ type: String) throws(EIP712Error) -> String {
            try EIP712.encodeType(type, types: resolvedTypes)
        }

        /// `keccak256(encodeType(type))`.
        public func typeHash(_ type: String) throws(EIP712Error) -> [UInt8] {
            Keccak256.hash(Array(try encodeType(type).utf8))
        }

        /// `typeHash(type) ‖ enc(member₁) ‖ … ‖ enc(memberₙ)`.
        public func encodeData(_ type: String, _ value: Value) throws(EIP712Error) -> [UInt8] {
            try EIP712.encodeData(type, value, types: resolvedTypes)
        }

        /// `keccak256(encodeData(type, value))`.
        public func hashStruct(_ type: String, _ value: Value) throws(EIP712Error) -> [UInt8] {
            Keccak256.hash(try encodeData(type, value))
        }

        /// `hashStruct("EIP712Domain", domain)`.
        public func domainSeparator() throws(EIP712Error) -> [UInt8] {
            try hashStruct("EIP712Domain", domain)
        }

        /// `hashStruct(primaryType, message)`.
        public func structHash() throws(EIP712Error) -> [UInt8] {
            try hashStruct(primaryType, message)
        }

        /// The signing digest `keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message))`
        /// (just `keccak256(0x19 ‖ 0x01 ‖ domainSeparator)` when the primary type is `EIP712Domain`).
        public func digest() throws(EIP712Error) -> [UInt8] {
            let separator = try domainSeparator()
            if primaryType == "EIP712Domain" {
                return Keccak256.hash([0x19, 0x01] + separator)
            }
            return EIP712.digest(domainSeparator: separator, structHash: try structHash())
        }
    }

    /// `keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ structHash)`.
    public static func digest(domainSeparator: [UInt8], structHash: [UInt8]) -> [UInt8] {
        Keccak256.hash([0x19, 0x01] + domainSeparator + structHash)
    }

    // MARK: Type strings

    /// Splits `T[]`/`T[n]` into the element type and the fixed length (`nil` for dynamic);
    /// returns `nil` for a non-array type.
    static func arrayComponents(_ type: String) throws(EIP712Error) -> (element: String, length: Int?)? {
        guard type.hasSuffix("]") else { return nil }
        guard let open = type.lastIndex(of: "[") else { throw .invalidTypeName(type) }
        let element = String(type[..<open])
        let inner = type[type.index(after: open)..<type.index(before: type.endIndex)]
        guard !element.isEmpty else { throw .invalidTypeName(type) }
        if inner.isEmpty { return (element, nil) }
        guard inner.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let n = Int(inner) else { throw .invalidTypeName(type) }
        return (element, n)
    }

    /// The innermost non-array type name.
    static func baseType(_ type: String) throws(EIP712Error) -> String {
        var t = type
        while let (element, _) = try arrayComponents(t) { t = element }
        return t
    }

    static func collectDependencies(
        _ type: String, types: [String: [Field]], into found: inout Set<String>
    ) throws(EIP712Error) {
        let base = try baseType(type)
        guard !found.contains(base), let fields = types[base] else { return }
        found.insert(base)
        for field in fields {
            try collectDependencies(field.type, types: types, into: &found)
        }
    }

    static func encodeType(_ type: String, types: [String: [Field]]) throws(EIP712Error) -> String {
        guard types[type] != nil else { throw .unknownType(type) }
        var deps = Set<String>()
        try collectDependencies(type, types: types, into: &deps)
        deps.remove(type)
        var out = ""
        for name in [type] + deps.sorted() {
            let fields = types[name] ?? []
            out += name + "(" + fields.map { "\($0.type) \($0.name)" }.joined(separator: ",") + ")"
        }
        return out
    }

    // MARK: Data encoding

    static func encodeData(_ type: String, _ value: Value, types: [String: [Field]]) throws(EIP712Error) -> [UInt8] {
        guard let fields = types[type] else { throw .unknownType(type) }
        guard case .object(let members) = value else {
            throw .invalidValue(type: type, reason: "expected an object")
        }
        var out = Keccak256.hash(Array(try encodeType(type, types: types).utf8))
        out.reserveCapacity(32 * (fields.count + 1))
        for field in fields {
            guard let member = members[field.name] else {
                throw .missingField(type: type, field: field.name)
            }
            out += try encodeField(field.type, member, types: types)
        }
        return out
    }

    /// The 32-byte encoding of one member value.
    static func encodeField(_ type: String, _ value: Value, types: [String: [Field]]) throws(EIP712Error) -> [UInt8] {
        if let (element, length) = try arrayComponents(type) {
            guard case .array(let items) = value else {
                throw .invalidValue(type: type, reason: "expected an array")
            }
            if let length, items.count != length {
                throw .invalidValue(type: type, reason: "expected \(length) elements, got \(items.count)")
            }
            var concatenated = [UInt8]()
            concatenated.reserveCapacity(32 * items.count)
            for item in items {
                concatenated += try encodeField(element, item, types: types)
            }
            return Keccak256.hash(concatenated)
        }
        if types[type] != nil {
            return Keccak256.hash(try encodeData(type, value, types: types))
        }
        return try encodeAtomic(type, value)
    }

    static func encodeAtomic(_ type: String, _ value: Value) throws(EIP712Error) -> [UInt8] {
        switch type {
        case "string":
            guard case .string(let s) = value else { throw .invalidValue(type: type, reason: "expected a string") }
            return Keccak256.hash(Array(s.utf8))
        case "bytes":
            return Keccak256.hash(try bytesValue(type, value))
        case "bool":
            switch value {
            case .bool(let b): return UInt256BE.from(b ? 1 : 0)
            default: throw .invalidValue(type: type, reason: "expected a boolean")
            }
        case "address":
            guard case .string(let s) = value else { throw .invalidValue(type: type, reason: "expected a hex address string") }
            do {
                let address = try EVMAddress(hex: s)
                return [UInt8](repeating: 0, count: 12) + address.bytes
            } catch {
                throw .invalidValue(type: type, reason: error.description)
            }
        default:
            break
        }
        if type.hasPrefix("bytes"), let n = Int(type.dropFirst(5)), String(n) == type.dropFirst(5) {
            guard (1...32).contains(n) else { throw .invalidTypeName(type) }
            let raw = try bytesValue(type, value)
            guard raw.count == n else {
                throw .invalidValue(type: type, reason: "expected \(n) bytes, got \(raw.count)")
            }
            return raw + [UInt8](repeating: 0, count: 32 - n)
        }
        if type.hasPrefix("uint") {
            let bits = try integerWidth(type, suffix: type.dropFirst(4))
            let word = try integerMagnitude(type, value, allowNegative: false).magnitude
            guard UInt256BE.bitLength(word) <= bits else {
                throw .invalidValue(type: type, reason: "value does not fit in \(bits) bits")
            }
            return word
        }
        if type.hasPrefix("int") {
            let bits = try integerWidth(type, suffix: type.dropFirst(3))
            let (negative, magnitude) = try integerMagnitude(type, value, allowNegative: true)
            let length = UInt256BE.bitLength(magnitude)
            if negative {
                // |v| ≤ 2^(bits-1): bitLength < bits, or exactly 2^(bits-1).
                let isMinimum = length == bits && magnitude.reduce(0) { $0 + $1.nonzeroBitCount } == 1
                guard length < bits || isMinimum else {
                    throw .invalidValue(type: type, reason: "value does not fit in \(bits) bits")
                }
                return length == 0 ? magnitude : UInt256BE.negate(magnitude)
            }
            guard length < bits else {
                throw .invalidValue(type: type, reason: "value does not fit in \(bits) bits")
            }
            return magnitude
        }
        throw .unknownType(type)
    }

    static func integerWidth(_ type: String, suffix: Substring) throws(EIP712Error) -> Int {
        if suffix.isEmpty { return 256 }
        guard let bits = Int(suffix), String(bits) == suffix, bits % 8 == 0, (8...256).contains(bits) else {
            throw .invalidTypeName(type)
        }
        return bits
    }

    static func integerMagnitude(
        _ type: String, _ value: Value, allowNegative: Bool
    ) throws(EIP712Error) -> (negative: Bool, magnitude: [UInt8]) {
        var text: Substring
        switch value {
        case .number(let n): text = Substring(n)
        case .string(let s): text = Substring(s)
        default: throw .invalidValue(type: type, reason: "expected an integer")
        }
        var negative = false
        if text.hasPrefix("-") {
            guard allowNegative else { throw .invalidValue(type: type, reason: "negative value for an unsigned type") }
            negative = true
            text = text.dropFirst()
        }
        do {
            return (negative, try UInt256BE.parse(text))
        } catch {
            throw .invalidValue(type: type, reason: error.description)
        }
    }

    static func bytesValue(_ type: String, _ value: Value) throws(EIP712Error) -> [UInt8] {
        switch value {
        case .bytes(let b): return b
        case .string(let s):
            guard s.hasPrefix("0x") || s.hasPrefix("0X"), let b = Hex.decode(s) else {
                throw .invalidValue(type: type, reason: "expected 0x-prefixed hex")
            }
            return b
        default:
            throw .invalidValue(type: type, reason: "expected bytes")
        }
    }
}

// MARK: - EIP-3009

/// The `EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)`
/// domain used by USDC-style EIP-3009 tokens.
public struct EIP712Domain: Sendable, Hashable {
    /// The canonical type string.
    public static let typeString = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    /// `keccak256(typeString)`.
    public static let typeHash = Keccak256.hash(Array(typeString.utf8))

    /// The token's EIP-712 name, e.g. `"USD Coin"`.
    public var name: String
    /// The token's EIP-712 version, e.g. `"2"`.
    public var version: String
    /// The EIP-155 chain id.
    public var chainId: UInt64
    /// The token contract.
    public var verifyingContract: EVMAddress

    /// Creates a domain.
    public init(name: String, version: String, chainId: UInt64, verifyingContract: EVMAddress) {
        self.name = name
        self.version = version
        self.chainId = chainId
        self.verifyingContract = verifyingContract
    }

    /// `typeHash ‖ keccak(name) ‖ keccak(version) ‖ uint256 chainId ‖ address`.
    public var encoded: [UInt8] {
        Self.typeHash
            + Keccak256.hash(Array(name.utf8))
            + Keccak256.hash(Array(version.utf8))
            + UInt256BE.from(chainId)
            + [UInt8](repeating: 0, count: 12) + verifyingContract.bytes
    }

    /// The domain separator, `keccak256(encoded)`.
    public var separator: [UInt8] { Keccak256.hash(encoded) }

    /// The domain as a generic typed-data value.
    public var value: EIP712.Value {
        .object([
            "name": .string(name),
            "version": .string(version),
            "chainId": .number(String(chainId)),
            "verifyingContract": .string(verifyingContract.checksummed),
        ])
    }

    /// The `EIP712Domain` field list.
    public static let fields: [EIP712.Field] = [
        .init(name: "name", type: "string"),
        .init(name: "version", type: "string"),
        .init(name: "chainId", type: "uint256"),
        .init(name: "verifyingContract", type: "address"),
    ]
}

/// An EIP-3009 `TransferWithAuthorization` message (as signed for x402 `exact` EVM payments).
public struct TransferWithAuthorization: Sendable, Hashable {
    /// The canonical type string.
    public static let typeString =
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    /// `keccak256(typeString)`.
    public static let typeHash = Keccak256.hash(Array(typeString.utf8))

    /// The `TransferWithAuthorization` field list.
    public static let fields: [EIP712.Field] = [
        .init(name: "from", type: "address"),
        .init(name: "to", type: "address"),
        .init(name: "value", type: "uint256"),
        .init(name: "validAfter", type: "uint256"),
        .init(name: "validBefore", type: "uint256"),
        .init(name: "nonce", type: "bytes32"),
    ]

    /// The payer.
    public var from: EVMAddress
    /// The payee.
    public var to: EVMAddress
    /// The amount in token base units, 32-byte big-endian.
    public var value: [UInt8]
    /// Unix time after which the authorization is valid, 32-byte big-endian.
    public var validAfter: [UInt8]
    /// Unix time before which the authorization is valid, 32-byte big-endian.
    public var validBefore: [UInt8]
    /// The 32-byte random nonce.
    public var nonce: [UInt8]

    /// Creates a message from 32-byte big-endian words; throws if any word or the nonce is not 32 bytes.
    public init(
        from: EVMAddress, to: EVMAddress,
        value: [UInt8], validAfter: [UInt8], validBefore: [UInt8], nonce: [UInt8]
    ) throws(EIP712Error) {
        for (name, word) in [("value", value), ("validAfter", validAfter), ("validBefore", validBefore), ("nonce", nonce)]
        where word.count != 32 {
            throw .invalidValue(type: name == "nonce" ? "bytes32" : "uint256", reason: "\(name) must be 32 bytes, got \(word.count)")
        }
        self.from = from
        self.to = to
        self.value = value
        self.validAfter = validAfter
        self.validBefore = validBefore
        self.nonce = nonce
    }

    /// Creates a message from decimal strings (as x402 JSON carries them) and a 32-byte nonce.
    public init(
        from: EVMAddress, to: EVMAddress,
        value: String, validAfter: String, validBefore: String, nonce: [UInt8]
    ) throws(EIP712Error) {
        func word(_ name: String, _ text: String) throws(EIP712Error) -> [UInt8] {
            do { return try UInt256BE.fromDecimal(text) } catch {
                throw .invalidValue(type: "uint256", reason: "\(name): \(error.description)")
            }
        }
        try self.init(
            from: from, to: to,
            value: try word("value", value),
            validAfter: try word("validAfter", validAfter),
            validBefore: try word("validBefore", validBefore),
            nonce: nonce
        )
    }

    /// `typeHash ‖ from ‖ to ‖ value ‖ validAfter ‖ validBefore ‖ nonce`, 32 bytes each.
    public var encoded: [UInt8] {
        let pad = [UInt8](repeating: 0, count: 12)
        return Self.typeHash + pad + from.bytes + pad + to.bytes + value + validAfter + validBefore + nonce
    }

    /// `keccak256(encoded)`.
    public var structHash: [UInt8] { Keccak256.hash(encoded) }

    /// The EIP-712 signing digest under `domain`.
    public func digest(domain: EIP712Domain) -> [UInt8] {
        EIP712.digest(domainSeparator: domain.separator, structHash: structHash)
    }

    /// The message as a generic typed-data value (integers as `0x` hex words).
    public var messageValue: EIP712.Value {
        .object([
            "from": .string(from.checksummed),
            "to": .string(to.checksummed),
            "value": .string("0x" + value.hexString),
            "validAfter": .string("0x" + validAfter.hexString),
            "validBefore": .string("0x" + validBefore.hexString),
            "nonce": .bytes(nonce),
        ])
    }

    /// The full typed-data document for this message under `domain`.
    public func typedData(domain: EIP712Domain) -> EIP712.TypedData {
        EIP712.TypedData(
            types: ["EIP712Domain": EIP712Domain.fields, "TransferWithAuthorization": Self.fields],
            primaryType: "TransferWithAuthorization",
            domain: domain.value,
            message: messageValue
        )
    }
}
