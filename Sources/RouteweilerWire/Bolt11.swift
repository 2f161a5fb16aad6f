import Crypto

// MARK: - Network

/// A Lightning network (chain) as named by a BOLT #11 currency prefix.
public struct LightningNetwork: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The canonical name, e.g. `"bitcoin"` or `"bitcoin-regtest"`.
    public let rawValue: String
    /// The BOLT #11 human-readable prefix, e.g. `"lnbc"`.
    public let bolt11Prefix: String

    private init(name: String, bolt11Prefix: String) {
        self.rawValue = name
        self.bolt11Prefix = bolt11Prefix
    }

    /// Bitcoin mainnet (`lnbc`).
    public static let bitcoin = LightningNetwork(name: "bitcoin", bolt11Prefix: "lnbc")
    /// Bitcoin testnet (`lntb`).
    public static let bitcoinTestnet = LightningNetwork(name: "bitcoin-testnet", bolt11Prefix: "lntb")
    /// Bitcoin signet (`lntbs`).
    public static let bitcoinSignet = LightningNetwork(name: "bitcoin-signet", bolt11Prefix: "lntbs")
    /// Bitcoin regtest (`lnbcrt`).
    public static let bitcoinRegtest = LightningNetwork(name: "bitcoin-regtest", bolt11Prefix: "lnbcrt")

    /// All known networks.
    public static let allKnown: [LightningNetwork] = [.bitcoin, .bitcoinTestnet, .bitcoinSignet, .bitcoinRegtest]
    /// ``allKnown``, longest BOLT-11 prefix first (`lnbcrt` before `lnbc`, `lntbs` before `lntb`).
    static let longestPrefixFirst = allKnown.sorted { $0.bolt11Prefix.count > $1.bolt11Prefix.count }

    /// Looks a network up by canonical name, or by the aliases `mainnet`, `testnet`, `signet`, `regtest`.
    public init?(rawValue: String) {
        switch rawValue.lowercased() {
        case "bitcoin", "mainnet": self = .bitcoin
        case "bitcoin-testnet", "testnet": self = .bitcoinTestnet
        case "bitcoin-signet", "signet": self = .bitcoinSignet
        case "bitcoin-regtest", "regtest": self = .bitcoinRegtest
        default: return nil
        }
    }

    /// Looks a network up by its BOLT #11 prefix (`lnbc`, `lntb`, `lntbs`, `lnbcrt`), any case.
    public init?(bolt11Prefix: String) {
        let lower = bolt11Prefix.lowercased()
        guard let found = Self.allKnown.first(where: { $0.bolt11Prefix == lower }) else { return nil }
        self = found
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let network = LightningNetwork(rawValue: name) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "unknown Lightning network '\(name)'"
            )
        }
        self = network
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

// MARK: - Errors

/// Why a BOLT #11 invoice was rejected (or could not be written).
public enum Bolt11Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// The string is not valid bech32 (separator, characters, case, length).
    case invalidBech32(Bech32Error)
    /// The bech32 checksum does not verify.
    case badChecksum
    /// The human-readable part does not start with a known `ln` + currency prefix.
    case unknownNetwork(String)
    /// The amount in the human-readable part is malformed or overflows.
    case invalidAmount(String)
    /// A `p`-multiplier amount that is not a whole number of millisatoshis.
    case subMillisatoshiAmount
    /// The data part ends inside the timestamp, a tagged field or the signature.
    case truncatedData(String)
    /// No valid `p` (payment hash) field.
    case missingPaymentHash
    /// No valid `s` (payment secret) field; BOLT #11 readers must fail the payment.
    case missingPaymentSecret
    /// The `d` field is not valid UTF-8.
    case invalidDescription
    /// The `9` field sets an even (required) feature bit this reader does not understand.
    case unknownRequiredFeature(Int)
    /// The `n` field is not a valid public key.
    case invalidPayeePublicKey
    /// The signature is malformed, not recoverable, or does not verify against the `n` field.
    case invalidSignature
    /// A field value is out of range (reader) or an encoder input is invalid.
    case invalidField(String)

    public var description: String {
        switch self {
        case .invalidBech32(let e): return "invalid BOLT #11 invoice: \(e)"
        case .badChecksum: return "invalid BOLT #11 invoice: bech32 checksum is invalid"
        case .unknownNetwork(let p): return "invalid BOLT #11 invoice: unknown currency prefix '\(p)'"
        case .invalidAmount(let a): return "invalid BOLT #11 invoice: invalid amount '\(a)'"
        case .subMillisatoshiAmount:
            return "invalid BOLT #11 invoice: amount is not a whole number of millisatoshis"
        case .truncatedData(let what): return "invalid BOLT #11 invoice: truncated data (\(what))"
        case .missingPaymentHash: return "invalid BOLT #11 invoice: no payment hash (p) field"
        case .missingPaymentSecret: return "invalid BOLT #11 invoice: no payment secret (s) field"
        case .invalidDescription: return "invalid BOLT #11 invoice: description (d) is not valid UTF-8"
        case .unknownRequiredFeature(let bit):
            return "invalid BOLT #11 invoice: unknown required feature bit \(bit)"
        case .invalidPayeePublicKey: return "invalid BOLT #11 invoice: payee (n) is not a valid public key"
        case .invalidSignature: return "invalid BOLT #11 invoice: invalid signature"
        case .invalidField(let what): return "invalid BOLT #11 field: \(what)"
        }
    }
}

// MARK: - Invoice

/// A decoded and signature-checked BOLT #11 Lightning invoice.
public struct Bolt11Invoice: Sendable, Hashable {
    /// One hop of a private route hint (`r` field).
    public struct RouteHintHop: Sendable, Hashable {
        /// The hop's node id (33-byte compressed public key).
        public var pubkey: [UInt8]
        /// The channel, as a 64-bit short channel id.
        public var shortChannelId: UInt64
        /// Base fee in millisatoshi.
        public var feeBaseMsat: UInt32
        /// Proportional fee in millionths.
        public var feeProportionalMillionths: UInt32
        /// CLTV delta of this hop.
        public var cltvExpiryDelta: UInt16

        /// Creates a hop.
        public init(
            pubkey: [UInt8], shortChannelId: UInt64, feeBaseMsat: UInt32,
            feeProportionalMillionths: UInt32, cltvExpiryDelta: UInt16
        ) {
            self.pubkey = pubkey
            self.shortChannelId = shortChannelId
            self.feeBaseMsat = feeBaseMsat
            self.feeProportionalMillionths = feeProportionalMillionths
            self.cltvExpiryDelta = cltvExpiryDelta
        }

        /// The short channel id as `block x tx x output`.
        public var shortChannelIdString: String {
            "\(shortChannelId >> 40)x\((shortChannelId >> 16) & 0xff_ffff)x\(shortChannelId & 0xffff)"
        }

        static let byteCount = 33 + 8 + 4 + 4 + 2
    }

    /// An on-chain fallback address (`f` field), kept raw.
    public struct FallbackAddress: Sendable, Hashable {
        /// 0...16 witness version, 17 P2PKH, 18 P2SH.
        public var version: UInt8
        /// Witness program or hash160 (whole bytes after the version).
        public var program: [UInt8]

        /// Creates a fallback address.
        public init(version: UInt8, program: [UInt8]) {
            self.version = version
            self.program = program
        }
    }

    /// The `9` feature bits, as transmitted (5-bit words, big-endian).
    public struct Features: Sendable, Hashable {
        /// The raw 5-bit words of the field.
        public var words: [UInt8]

        /// Creates features from raw 5-bit words.
        public init(words: [UInt8]) { self.words = words }

        /// Creates features with the given bits set (bit 0 is the least significant).
        public init(bits: [Int]) {
            guard let top = bits.max(), top >= 0 else { self.words = []; return }
            var words = [UInt8](repeating: 0, count: top / 5 + 1)
            for bit in bits where bit >= 0 {
                words[words.count - 1 - bit / 5] |= UInt8(1 << (bit % 5))
            }
            self.words = words
        }

        /// The indices of the set bits, ascending.
        public var bits: [Int] {
            var out = [Int]()
            for (i, word) in words.reversed().enumerated() {
                for b in 0..<5 where word & (1 << b) != 0 { out.append(i * 5 + b) }
            }
            return out
        }

        /// Whether `bit` is set.
        public func contains(_ bit: Int) -> Bool {
            guard bit >= 0, bit / 5 < words.count else { return false }
            return words[words.count - 1 - bit / 5] & UInt8(1 << (bit % 5)) != 0
        }

        /// Feature bits this reader understands in invoices (BOLT #9 context `9`): var_onion_optin,
        /// payment_secret, basic_mpp, option_route_blinding, option_payment_metadata.
        public static let knownBits: Set<Int> = [8, 9, 14, 15, 16, 17, 24, 25, 48, 49]

        /// The bits the encoder sets by default: var_onion_optin and payment_secret required,
        /// basic_mpp optional (as LND writes).
        public static let defaultInvoiceBits: [Int] = [8, 14, 17]
    }

    /// A tagged field this reader does not interpret, kept as-is.
    public struct TaggedField: Sendable, Hashable {
        /// The tag's 5-bit value (its bech32 character is `Bech32` alphabet at this index).
        public var tag: UInt8
        /// The field data as 5-bit words.
        public var words: [UInt8]
    }

    /// The invoice string, lower-case, without any `lightning:` prefix.
    public let paymentRequest: String
    /// The bech32 human-readable part, e.g. `lnbcrt100n`.
    public let humanReadablePart: String
    /// The network named by the currency prefix.
    public let network: LightningNetwork
    /// The amount in millisatoshi, or `nil` for an amountless invoice.
    public let amountMsat: UInt64?
    /// Creation time, unix seconds.
    public let timestamp: UInt64
    /// The 32-byte payment hash (`p`).
    public let paymentHash: [UInt8]
    /// The 32-byte payment secret (`s`).
    public let paymentSecret: [UInt8]
    /// The description (`d`), if present.
    public let description: String?
    /// The 32-byte SHA-256 of the description (`h`), if present.
    public let descriptionHash: [UInt8]?
    /// Seconds after `timestamp` when the invoice expires (`x`, default 3600).
    public let expirySeconds: UInt64
    /// `min_final_cltv_expiry_delta` (`c`, default 18).
    public let minFinalCltvExpiry: UInt64
    /// The payee node id (33-byte compressed), from `n` or recovered from the signature.
    public fileprivate(set) var payeePublicKey: [UInt8]
    /// Whether ``payeePublicKey`` came from an `n` field (rather than signature recovery).
    public let payeePublicKeyFromNField: Bool
    /// Private route hints: one list of hops per `r` field.
    public let routeHints: [[RouteHintHop]]
    /// Feature bits (`9`); empty when absent.
    public let features: Features
    /// On-chain fallback addresses (`f`) with known versions.
    public let fallbackAddresses: [FallbackAddress]
    /// Payment metadata (`m`), if present.
    public let metadata: [UInt8]?
    /// Tagged fields with tags this reader does not know.
    public let unknownFields: [TaggedField]
    /// The 64-byte compact signature `r ‖ s`.
    public let signature: [UInt8]
    /// The signature's recovery id (0...3).
    public let signatureRecoveryId: UInt8

    /// Default expiry when there is no `x` field.
    public static let defaultExpirySeconds: UInt64 = 3600
    /// Default `min_final_cltv_expiry_delta` when there is no `c` field.
    public static let defaultMinFinalCltvExpiry: UInt64 = 18

    /// Unix time at which the invoice expires (`timestamp + expirySeconds`, saturating).
    public var expiresAt: UInt64 {
        let (sum, overflow) = timestamp.addingReportingOverflow(expirySeconds)
        return overflow ? .max : sum
    }

    /// Whether the invoice has expired at `now` (unix seconds): `now >= expiresAt`.
    public func isExpired(now: UInt64) -> Bool { now >= expiresAt }

    /// The amount in whole satoshis (rounded down), or `nil` when amountless.
    public var amountSats: UInt64? { amountMsat.map { $0 / 1000 } }

    /// SHA-256 of `bytes`.
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        bytes.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return Array(hasher.finalize())
    }

    // MARK: Parsing

    /// Decodes and validates a BOLT #11 invoice: bech32 checksum, currency prefix, amount,
    /// fields, required features, and the signature (checked against `n`, or used to recover
    /// the payee). A leading `lightning:` (any case) and surrounding whitespace are ignored.
    public init(parsing input: String) throws(Bolt11Error) {
        self = try UnverifiedBolt11Invoice(parsing: input).verified()
    }

    /// Everything of ``init(parsing:)`` but the signature check; `pending` gets what the check needs.
    fileprivate init(decoding input: String, pending: inout (digest: [UInt8], payeeField: [UInt8]?))
        throws(Bolt11Error)
    {
        var text = Substring(input)
        // Printable ASCII at both ends (the usual case) has no whitespace to trim: no walk over Characters.
        if let first = text.utf8.first, let last = text.utf8.last, first > 0x20, first < 0x80, last > 0x20, last < 0x80 {
        } else {
            while let first = text.first, first.isWhitespace { text.removeFirst() }
            while let last = text.last, last.isWhitespace { text.removeLast() }
        }
        if text.utf8.count >= 10, text.utf8.prefix(10).elementsEqual("lightning:".utf8, by: { a, b in
            (a >= UInt8(ascii: "A") && a <= UInt8(ascii: "Z") ? a + 32 : a) == b
        }) {
            text = Substring(text.utf8.dropFirst(10))  // ten bytes: a combining mark after the colon stays, and fails
        }

        let decoded: Bech32.Decoded
        do throws(Bech32Error) {
            decoded = try Bech32.decode(text)
        } catch .badChecksum {
            throw .badChecksum
        } catch {
            throw .invalidBech32(error)
        }
        let hrp = decoded.humanReadablePart
        let words = decoded.words

        // Human-readable part: "ln" + currency + optional amount.
        guard hrp.hasPrefix("ln") else { throw .unknownNetwork(hrp) }
        // Longest prefix first: lnbcrt before lnbc, lntbs before lntb.
        guard let network = LightningNetwork.longestPrefixFirst.first(where: { hrp.hasPrefix($0.bolt11Prefix) })
        else {
            throw .unknownNetwork(String(hrp.dropFirst(2).prefix { !$0.isNumber }))
        }
        let amountText = hrp.dropFirst(network.bolt11Prefix.count)
        let amountMsat = try Self.parseAmount(amountText)

        // Data part: timestamp (7) + tagged fields + signature (104).
        guard words.count >= 7 + 104 else { throw .truncatedData("too short for timestamp and signature") }
        let sigWords = Array(words.suffix(104))
        let body = Array(words.dropLast(104))
        var timestamp: UInt64 = 0
        for w in body.prefix(7) { timestamp = timestamp << 5 | UInt64(w) }

        var paymentHash: [UInt8]?
        var paymentSecret: [UInt8]?
        var description: String?
        var descriptionHash: [UInt8]?
        var expiry: UInt64?
        var minFinalCltv: UInt64?
        var payeeField: [UInt8]?
        var routeHints: [[RouteHintHop]] = []
        var features: Features?
        var fallbacks: [FallbackAddress] = []
        var metadata: [UInt8]?
        var unknown: [TaggedField] = []

        var i = 7
        while i < body.count {
            guard body.count - i >= 3 else { throw .truncatedData("tagged field header") }
            let tag = body[i]
            let length = Int(body[i + 1]) << 5 | Int(body[i + 2])
            i += 3
            guard body.count - i >= length else { throw .truncatedData("tagged field data") }
            let data = Array(body[i..<(i + length)])
            i += length

            switch Tag(rawValue: tag) {
            case .paymentHash:
                if paymentHash == nil, length == 52 { paymentHash = Bech32.wordsToBytesTruncating(data) }
            case .paymentSecret:
                if paymentSecret == nil, length == 52 { paymentSecret = Bech32.wordsToBytesTruncating(data) }
            case .descriptionHash:
                if descriptionHash == nil, length == 52 { descriptionHash = Bech32.wordsToBytesTruncating(data) }
            case .payee:
                if payeeField == nil, length == 53 { payeeField = Bech32.wordsToBytesTruncating(data) }
            case .description:
                if description == nil {
                    guard let text = String(validating: Bech32.wordsToBytesTruncating(data), as: UTF8.self) else {
                        throw .invalidDescription
                    }
                    description = text
                }
            case .expiry:
                if expiry == nil { expiry = try Self.parseInteger(data, field: "x") }
            case .minFinalCltvExpiry:
                if minFinalCltv == nil { minFinalCltv = try Self.parseInteger(data, field: "c") }
            case .routeHint:
                let bytes = Bech32.wordsToBytesTruncating(data)
                // A field that is not a whole number of hops is skipped.
                if !bytes.isEmpty, bytes.count % RouteHintHop.byteCount == 0 {
                    routeHints.append(Self.parseRouteHint(bytes))
                }
            case .fallback:
                // Unknown versions (19...31) are skipped.
                if let version = data.first, version <= 18 {
                    fallbacks.append(FallbackAddress(
                        version: version, program: Bech32.wordsToBytesTruncating(Array(data.dropFirst()))
                    ))
                }
            case .features:
                if features == nil { features = Features(words: data) }
            case .metadata:
                if metadata == nil { metadata = Bech32.wordsToBytesTruncating(data) }
            case nil:
                unknown.append(TaggedField(tag: tag, words: data))
            }
        }

        guard let paymentHash else { throw .missingPaymentHash }
        guard let paymentSecret else { throw .missingPaymentSecret }
        let featureSet = features ?? Features(words: [])
        if let bit = featureSet.bits.first(where: { $0 % 2 == 0 && !Features.knownBits.contains($0) }) {
            throw .unknownRequiredFeature(bit)
        }

        // Signature: 64-byte r‖s and a recovery id over sha256(hrp ‖ data without signature).
        guard let sigBytes = try? Bech32.convertBits(sigWords, from: 5, to: 8, pad: false),
              sigBytes.count == 65 else { throw .invalidSignature }
        let compact = Array(sigBytes.prefix(64))
        let recoveryId = sigBytes[64]
        let digest = Self.signingHash(humanReadablePart: hrp, dataWords: body)

        let hasUpperCase = text.utf8.contains { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
        self.paymentRequest = hasUpperCase ? String(text).lowercased() : String(text)
        self.humanReadablePart = hrp
        self.network = network
        self.amountMsat = amountMsat
        self.timestamp = timestamp
        self.paymentHash = paymentHash
        self.paymentSecret = paymentSecret
        self.description = description
        self.descriptionHash = descriptionHash
        self.expirySeconds = expiry ?? Self.defaultExpirySeconds
        self.minFinalCltvExpiry = minFinalCltv ?? Self.defaultMinFinalCltvExpiry
        self.payeePublicKey = []
        self.payeePublicKeyFromNField = payeeField != nil
        pending = (digest, payeeField)
        self.routeHints = routeHints
        self.features = featureSet
        self.fallbackAddresses = fallbacks
        self.metadata = metadata
        self.unknownFields = unknown
        self.signature = compact
        self.signatureRecoveryId = recoveryId
    }

    /// The message a BOLT #11 signature signs: SHA-256 of the hrp's UTF-8 bytes followed by the
    /// data part (without signature) packed into bytes, zero-padded.
    public static func signingHash(humanReadablePart: String, dataWords: [UInt8]) -> [UInt8] {
        let packed = (try? Bech32.convertBits(dataWords, from: 5, to: 8, pad: true)) ?? []
        return sha256(Array(humanReadablePart.utf8) + packed)
    }

    private enum Tag: UInt8 {
        case paymentHash = 1          // p
        case paymentSecret = 16       // s
        case description = 13         // d
        case metadata = 27            // m
        case payee = 19               // n
        case descriptionHash = 23     // h
        case expiry = 6               // x
        case minFinalCltvExpiry = 24  // c
        case fallback = 9             // f
        case routeHint = 3            // r
        case features = 5             // 9
    }

    private static func parseAmount(_ text: Substring) throws(Bolt11Error) -> UInt64? {
        if text.isEmpty { return nil }
        var digits = text
        var multiplier: Character?
        if let last = text.last, !last.isNumber {
            multiplier = last
            digits = text.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw .invalidAmount(String(text))
        }
        guard digits.first != "0" else { throw .invalidAmount(String(text)) }
        guard let value = UInt64(digits) else { throw .invalidAmount(String(text)) }

        let factor: UInt64
        switch multiplier {
        case nil: factor = 100_000_000_000   // BTC -> msat
        case "m": factor = 100_000_000
        case "u": factor = 100_000
        case "n": factor = 100
        case "p":
            guard value % 10 == 0 else { throw .subMillisatoshiAmount }
            return value / 10
        default: throw .invalidAmount(String(text))
        }
        let (msat, overflow) = value.multipliedReportingOverflow(by: factor)
        guard !overflow else { throw .invalidAmount(String(text)) }
        return msat
    }

    private static func parseInteger(_ words: [UInt8], field: String) throws(Bolt11Error) -> UInt64 {
        var value: UInt64 = 0
        for w in words {
            guard value >> 59 == 0 else { throw .invalidField("\(field): value overflows 64 bits") }
            value = value << 5 | UInt64(w)
        }
        return value
    }

    private static func parseRouteHint(_ bytes: [UInt8]) -> [RouteHintHop] {
        func integer(_ slice: ArraySlice<UInt8>) -> UInt64 { slice.reduce(0) { $0 << 8 | UInt64($1) } }
        var hops = [RouteHintHop]()
        var offset = 0
        while offset + RouteHintHop.byteCount <= bytes.count {
            let hop = bytes[offset..<(offset + RouteHintHop.byteCount)]
            let base = hop.startIndex
            hops.append(RouteHintHop(
                pubkey: Array(hop[base..<(base + 33)]),
                shortChannelId: integer(hop[(base + 33)..<(base + 41)]),
                feeBaseMsat: UInt32(integer(hop[(base + 41)..<(base + 45)])),
                feeProportionalMillionths: UInt32(integer(hop[(base + 45)..<(base + 49)])),
                cltvExpiryDelta: UInt16(integer(hop[(base + 49)..<(base + 51)]))
            ))
            offset += RouteHintHop.byteCount
        }
        return hops
    }

    // MARK: Encoding

    /// The shortest BOLT #11 amount text for `msat` (largest multiplier that represents it exactly),
    /// e.g. 10 000 msat → `100n`, 2 500 msat → `25n`, 2 501 msat → `25010p`.
    public static func encodeAmount(msat: UInt64) throws(Bolt11Error) -> String {
        guard msat > 0 else { throw .invalidField("amount must be positive") }
        let (pico, overflow) = msat.multipliedReportingOverflow(by: 10)
        guard !overflow else {
            // Too large for the pico form; fall back to whole multiples of larger units.
            for (unit, factor) in [("", UInt64(100_000_000_000)), ("m", 100_000_000), ("u", 100_000), ("n", 100)]
            where msat % factor == 0 {
                return "\(msat / factor)\(unit)"
            }
            throw .invalidField("amount not representable")
        }
        var value = pico
        for unit in ["p", "n", "u", "m"] {
            if value % 1000 != 0 { return "\(value)\(unit)" }
            value /= 1000
        }
        return "\(value)"
    }

    /// Writes and signs an invoice (for tests and test doubles), then decodes it back.
    ///
    /// Fields are written in the order `p s d h x c n r f m 9`; integers use minimal length and the
    /// amount the shortest form. BOLT #11 requires a payment secret and exactly one of
    /// `description` or `descriptionHash`; violating either throws.
    public static func sign(
        network: LightningNetwork,
        amountMsat: UInt64?,
        timestamp: UInt64,
        paymentHash: [UInt8],
        paymentSecret: [UInt8]?,
        description: String?,
        descriptionHash: [UInt8]?,
        expirySeconds: UInt64? = nil,
        minFinalCltvExpiry: UInt64? = nil,
        featureBits: [Int] = Features.defaultInvoiceBits,
        includePayeePublicKey: Bool = false,
        routeHints: [[RouteHintHop]] = [],
        fallbackAddresses: [FallbackAddress] = [],
        metadata: [UInt8]? = nil,
        privateKey: Secp256k1.PrivateKey
    ) throws(Bolt11Error) -> Bolt11Invoice {
        guard timestamp < 1 << 35 else { throw .invalidField("timestamp does not fit in 35 bits") }
        guard paymentHash.count == 32 else { throw .invalidField("payment hash must be 32 bytes") }
        guard let paymentSecret else { throw .missingPaymentSecret }
        guard paymentSecret.count == 32 else { throw .invalidField("payment secret must be 32 bytes") }
        guard (description == nil) != (descriptionHash == nil) else {
            throw .invalidField("exactly one of description and description hash is required")
        }
        if let descriptionHash, descriptionHash.count != 32 {
            throw .invalidField("description hash must be 32 bytes")
        }

        var hrp = network.bolt11Prefix
        if let amountMsat { hrp += try encodeAmount(msat: amountMsat) }

        var words = [UInt8]()
        for shift in stride(from: 30, through: 0, by: -5) { words.append(UInt8((timestamp >> UInt64(shift)) & 31)) }

        func append(_ tag: Tag, _ data: [UInt8]) throws(Bolt11Error) {
            guard data.count < 1024 else { throw .invalidField("tagged field \(tag) is too long") }
            words.append(tag.rawValue)
            words.append(UInt8(data.count >> 5))
            words.append(UInt8(data.count & 31))
            words += data
        }
        func integerWords(_ value: UInt64) -> [UInt8] {
            var out = [UInt8]()
            var v = value
            while v > 0 { out.insert(UInt8(v & 31), at: 0); v >>= 5 }
            return out
        }

        try append(.paymentHash, Bech32.bytesToWords(paymentHash))
        try append(.paymentSecret, Bech32.bytesToWords(paymentSecret))
        if let description { try append(.description, Bech32.bytesToWords(Array(description.utf8))) }
        if let descriptionHash { try append(.descriptionHash, Bech32.bytesToWords(descriptionHash)) }
        if let expirySeconds { try append(.expiry, integerWords(expirySeconds)) }
        if let minFinalCltvExpiry { try append(.minFinalCltvExpiry, integerWords(minFinalCltvExpiry)) }
        if includePayeePublicKey { try append(.payee, Bech32.bytesToWords(privateKey.publicKey.compressed)) }
        for hint in routeHints {
            var bytes = [UInt8]()
            for hop in hint {
                guard hop.pubkey.count == 33 else { throw .invalidField("route hint pubkey must be 33 bytes") }
                bytes += hop.pubkey
                for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: hop.shortChannelId >> UInt64(s))) }
                for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: hop.feeBaseMsat >> UInt32(s))) }
                for s in stride(from: 24, through: 0, by: -8) {
                    bytes.append(UInt8(truncatingIfNeeded: hop.feeProportionalMillionths >> UInt32(s)))
                }
                bytes.append(UInt8(hop.cltvExpiryDelta >> 8))
                bytes.append(UInt8(hop.cltvExpiryDelta & 0xff))
            }
            try append(.routeHint, Bech32.bytesToWords(bytes))
        }
        for fallback in fallbackAddresses {
            guard fallback.version <= 18 else { throw .invalidField("fallback version must be 0...18") }
            try append(.fallback, [fallback.version] + Bech32.bytesToWords(fallback.program))
        }
        if let metadata { try append(.metadata, Bech32.bytesToWords(metadata)) }
        if !featureBits.isEmpty { try append(.features, Features(bits: featureBits).words) }

        let digest = signingHash(humanReadablePart: hrp, dataWords: words)
        let signature: Secp256k1.RecoverableSignature
        do {
            signature = try privateKey.signRecoverable(digest32: digest)
        } catch {
            throw .invalidSignature
        }
        words += Bech32.bytesToWords(signature.compact + [UInt8(signature.recoveryId)])

        let string: String
        do throws(Bech32Error) {
            string = try Bech32.encode(humanReadablePart: hrp, words: words)
        } catch {
            throw .invalidBech32(error)
        }
        return try Bolt11Invoice(parsing: string)
    }
}

/// A BOLT-11 invoice decoded and checked in every respect but its signature, which ``verified()`` checks.
///
/// Recovering the payee's key from the signature is the dearest part of reading an invoice (about 0.1 ms, most of
/// it in libsecp256k1); a payer can read the amount, expiry and payment hash first and verify the signature
/// alongside its other pre-payment work. Nothing may be paid before ``verified()`` has returned.
public struct UnverifiedBolt11Invoice: Sendable {
    /// The decoded fields. Its `payeePublicKey` is empty: the payee is only known from a verified signature.
    public let fields: Bolt11Invoice
    private let digest: [UInt8]
    private let payeeField: [UInt8]?

    /// Decodes `input` like ``Bolt11Invoice/init(parsing:)``, without checking the signature.
    /// - Throws: every error of ``Bolt11Invoice/init(parsing:)`` except the signature's (a malformed signature
    ///   field still throws here).
    public init(parsing input: String) throws(Bolt11Error) {
        var pending: (digest: [UInt8], payeeField: [UInt8]?) = ([], nil)
        fields = try Bolt11Invoice(decoding: input, pending: &pending)
        digest = pending.digest
        payeeField = pending.payeeField
    }

    /// The invoice with its payee, once the signature checks out: against the `n` field's key (low-S, as BOLT #11
    /// requires), or by recovering the key from the signature.
    /// - Throws: ``Bolt11Error/invalidSignature`` or ``Bolt11Error/invalidPayeePublicKey``.
    public func verified() throws(Bolt11Error) -> Bolt11Invoice {
        let payee: Secp256k1.PublicKey
        if let payeeField {
            guard let key = try? Secp256k1.PublicKey(bytes: payeeField) else { throw .invalidPayeePublicKey }
            guard key.verify(signature64: fields.signature, digest32: digest, requireLowS: true) else {
                throw .invalidSignature
            }
            payee = key
        } else {
            do {
                let sig = try Secp256k1.RecoverableSignature(compact: fields.signature,
                                                             recoveryId: Int(fields.signatureRecoveryId))
                payee = try sig.recoverPublicKey(digest32: digest)
            } catch {
                throw .invalidSignature
            }
        }
        var invoice = fields
        invoice.payeePublicKey = payee.compressed
        return invoice
    }
}
