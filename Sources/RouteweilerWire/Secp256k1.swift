import CSecp256k1

/// Errors raised by the ``Secp256k1`` wrapper.
public enum Secp256k1Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// A private key was not 32 bytes, was zero, or was not below the curve order.
    case invalidPrivateKey
    /// Public key bytes were not a valid 33-byte compressed or 65-byte uncompressed point.
    case invalidPublicKey
    /// A digest was not exactly 32 bytes.
    case invalidDigestLength(Int)
    /// A compact signature was not 64 bytes, or r/s were not valid scalars.
    case invalidSignature
    /// A recovery id outside `0...3`.
    case invalidRecoveryId(Int)
    /// No public key could be recovered from the signature and digest.
    case recoveryFailed
    /// libsecp256k1 refused to sign (practically unreachable for a verified key).
    case signingFailed

    public var description: String {
        switch self {
        case .invalidPrivateKey: return "invalid secp256k1 private key"
        case .invalidPublicKey: return "invalid secp256k1 public key"
        case .invalidDigestLength(let n): return "digest must be 32 bytes, got \(n)"
        case .invalidSignature: return "invalid secp256k1 signature encoding"
        case .invalidRecoveryId(let id): return "recovery id must be 0...3, got \(id)"
        case .recoveryFailed: return "no public key can be recovered from the signature"
        case .signingFailed: return "secp256k1 signing failed"
        }
    }
}

/// A small safe wrapper over libsecp256k1 (ECDSA with public-key recovery).
///
/// All operations use a single shared context created once. The context is only read after
/// creation, which libsecp256k1 documents as safe to share between threads for signing,
/// verification and recovery.
public enum Secp256k1 {
    // SECP256K1_CONTEXT_SIGN | SECP256K1_CONTEXT_VERIFY. The C macros are compound expressions,
    // which Swift does not import, so the values are spelled out (from secp256k1.h, 0.2.0).
    private static let contextFlags: UInt32 = (1 << 0) | (1 << 8) | (1 << 9)
    private static let compressedFlag: UInt32 = (1 << 1) | (1 << 8)   // SECP256K1_EC_COMPRESSED
    private static let uncompressedFlag: UInt32 = (1 << 1)            // SECP256K1_EC_UNCOMPRESSED

    /// The shared libsecp256k1 context; read-only after creation.
    nonisolated(unsafe) static let context: OpaquePointer = {
        guard let ctx = secp256k1_context_create(contextFlags) else {
            fatalError("secp256k1_context_create failed")
        }
        // Blinding for side-channel resistance; it does not change any output
        // (RFC 6979 signatures stay deterministic).
        var seed = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in seed.indices { seed[i] = UInt8.random(in: .min ... .max, using: &rng) }
        _ = secp256k1_context_randomize(ctx, seed)
        return ctx
    }()

    private static func checkDigest(_ digest: [UInt8]) throws(Secp256k1Error) {
        guard digest.count == 32 else { throw .invalidDigestLength(digest.count) }
    }

    // MARK: - Private key

    /// A secp256k1 private key (32 bytes, `0 < k < n`).
    ///
    /// Its textual and reflected forms never reveal the key.
    public struct PrivateKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        private let bytes: [UInt8]

        /// Creates a key from 32 big-endian bytes, validated with `secp256k1_ec_seckey_verify`.
        public init(bytes: [UInt8]) throws(Secp256k1Error) {
            guard bytes.count == 32 else { throw .invalidPrivateKey }
            guard secp256k1_ec_seckey_verify(Secp256k1.context, bytes) == 1 else { throw .invalidPrivateKey }
            self.bytes = bytes
        }

        /// The raw 32 key bytes. Handle with care.
        public var rawRepresentation: [UInt8] { bytes }

        /// The matching public key.
        public var publicKey: PublicKey {
            var pubkey = secp256k1_pubkey()
            guard secp256k1_ec_pubkey_create(Secp256k1.context, &pubkey, bytes) == 1 else {
                // Unreachable: the key was verified in init.
                fatalError("secp256k1_ec_pubkey_create failed for a verified key")
            }
            return PublicKey(pubkey)
        }

        /// Signs a 32-byte digest with an RFC 6979 deterministic nonce, returning a low-S
        /// signature with its recovery id.
        public func signRecoverable(digest32: [UInt8]) throws(Secp256k1Error) -> RecoverableSignature {
            try Secp256k1.checkDigest(digest32)
            var sig = secp256k1_ecdsa_recoverable_signature()
            guard secp256k1_ecdsa_sign_recoverable(Secp256k1.context, &sig, digest32, bytes, nil, nil) == 1 else {
                throw .signingFailed
            }
            var compact = [UInt8](repeating: 0, count: 64)
            var recid: Int32 = 0
            _ = secp256k1_ecdsa_recoverable_signature_serialize_compact(Secp256k1.context, &compact, &recid, &sig)
            return try RecoverableSignature(compact: compact, recoveryId: Int(recid))
        }

        public var description: String { "Secp256k1.PrivateKey(<redacted>)" }
        public var debugDescription: String { "Secp256k1.PrivateKey(<redacted>)" }
        public var customMirror: Mirror { Mirror(self, children: ["key": "<redacted>"]) }
    }

    // MARK: - Public key

    /// A secp256k1 public key. Equality and hashing use the compressed encoding.
    public struct PublicKey: Hashable, Sendable, CustomStringConvertible {
        /// The 33-byte SEC1 compressed encoding (`02`/`03` prefix).
        public let compressed: [UInt8]

        /// Parses a 33-byte compressed or 65-byte uncompressed SEC1 encoding.
        public init(bytes: [UInt8]) throws(Secp256k1Error) {
            guard bytes.count == 33 || bytes.count == 65 else { throw .invalidPublicKey }
            var pubkey = secp256k1_pubkey()
            guard secp256k1_ec_pubkey_parse(Secp256k1.context, &pubkey, bytes, bytes.count) == 1 else {
                throw .invalidPublicKey
            }
            self.init(pubkey)
        }

        init(_ pubkey: secp256k1_pubkey) {
            self.compressed = Self.serialize(pubkey, compressed: true)
        }

        private static func serialize(_ pubkey: secp256k1_pubkey, compressed: Bool) -> [UInt8] {
            var pubkey = pubkey
            var out = [UInt8](repeating: 0, count: compressed ? 33 : 65)
            var len = out.count
            _ = secp256k1_ec_pubkey_serialize(
                Secp256k1.context, &out, &len, &pubkey,
                compressed ? Secp256k1.compressedFlag : Secp256k1.uncompressedFlag
            )
            return Array(out.prefix(len))
        }

        private var parsed: secp256k1_pubkey {
            var pubkey = secp256k1_pubkey()
            // `compressed` always holds a valid point produced by libsecp256k1.
            _ = secp256k1_ec_pubkey_parse(Secp256k1.context, &pubkey, compressed, compressed.count)
            return pubkey
        }

        /// The 65-byte SEC1 uncompressed encoding (`04 ‖ x ‖ y`).
        public var uncompressed: [UInt8] { Self.serialize(parsed, compressed: false) }

        /// Verifies a 64-byte compact `r ‖ s` ECDSA signature over a 32-byte digest.
        ///
        /// By default a high-S signature is normalised before verification (so both forms are
        /// accepted). With `requireLowS`, a high-S signature is rejected, as libsecp256k1 does.
        public func verify(signature64: [UInt8], digest32: [UInt8], requireLowS: Bool = false) -> Bool {
            guard signature64.count == 64, digest32.count == 32 else { return false }
            var sig = secp256k1_ecdsa_signature()
            guard secp256k1_ecdsa_signature_parse_compact(Secp256k1.context, &sig, signature64) == 1 else {
                return false
            }
            if !requireLowS {
                var normalized = secp256k1_ecdsa_signature()
                _ = secp256k1_ecdsa_signature_normalize(Secp256k1.context, &normalized, &sig)
                sig = normalized
            }
            var pubkey = parsed
            return secp256k1_ecdsa_verify(Secp256k1.context, &sig, digest32, &pubkey) == 1
        }

        public var description: String { "Secp256k1.PublicKey(\(compressed.hexString))" }
    }

    // MARK: - Recoverable signature

    /// An ECDSA signature with its public-key recovery id.
    public struct RecoverableSignature: Hashable, Sendable {
        /// The 32-byte big-endian `r` value.
        public let r: [UInt8]
        /// The 32-byte big-endian `s` value.
        public let s: [UInt8]
        /// The recovery id, `0...3`.
        public let recoveryId: Int

        /// Creates a signature from a 64-byte compact `r ‖ s` and a recovery id (`0...3`).
        ///
        /// Both r and s must be valid scalars (non-zero, below the curve order); high-S is allowed.
        public init(compact: [UInt8], recoveryId: Int) throws(Secp256k1Error) {
            guard compact.count == 64 else { throw .invalidSignature }
            guard (0...3).contains(recoveryId) else { throw .invalidRecoveryId(recoveryId) }
            var sig = secp256k1_ecdsa_recoverable_signature()
            guard secp256k1_ecdsa_recoverable_signature_parse_compact(
                Secp256k1.context, &sig, compact, Int32(recoveryId)
            ) == 1 else {
                throw .invalidSignature
            }
            self.r = Array(compact[0..<32])
            self.s = Array(compact[32..<64])
            self.recoveryId = recoveryId
        }

        /// The 64-byte compact form `r ‖ s`.
        public var compact: [UInt8] { r + s }

        /// Whether `s` is in the lower half of the curve order.
        public var isLowS: Bool {
            var sig = secp256k1_ecdsa_signature()
            guard secp256k1_ecdsa_signature_parse_compact(Secp256k1.context, &sig, compact) == 1 else { return false }
            var normalized = secp256k1_ecdsa_signature()
            return secp256k1_ecdsa_signature_normalize(Secp256k1.context, &normalized, &sig) == 0
        }

        /// Recovers the public key that produced this signature over `digest32`.
        public func recoverPublicKey(digest32: [UInt8]) throws(Secp256k1Error) -> PublicKey {
            try Secp256k1.checkDigest(digest32)
            var sig = secp256k1_ecdsa_recoverable_signature()
            guard secp256k1_ecdsa_recoverable_signature_parse_compact(
                Secp256k1.context, &sig, compact, Int32(recoveryId)
            ) == 1 else {
                throw .invalidSignature
            }
            var pubkey = secp256k1_pubkey()
            guard secp256k1_ecdsa_recover(Secp256k1.context, &pubkey, &sig, digest32) == 1 else {
                throw .recoveryFailed
            }
            return PublicKey(pubkey)
        }
    }
}
