#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Errors

/// Why a string or byte array is not a valid EVM address.
public enum EVMAddressError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The address is not 20 bytes (40 hex digits); carries the byte (or hex-digit) count seen.
    case invalidLength(Int)
    /// The string contains a character that is not a hex digit.
    case invalidHex
    /// The string is mixed-case but its capitalisation is not the EIP-55 checksum.
    case badChecksum

    public var description: String {
        switch self {
        case .invalidLength(let n): return "EVM address must be 20 bytes (40 hex digits), got \(n)"
        case .invalidHex: return "EVM address contains a non-hex character"
        case .badChecksum: return "EVM address has an invalid EIP-55 checksum"
        }
    }
}

/// Why a 65-byte `r ‖ s ‖ v` signature cannot be used to recover a signer.
public enum EVMSignatureError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The signature is not 65 bytes.
    case invalidLength(Int)
    /// `v` is not one of 27, 28, 0 or 1.
    case invalidV(UInt8)
    /// The underlying secp256k1 operation failed.
    case secp256k1(Secp256k1Error)

    public var description: String {
        switch self {
        case .invalidLength(let n): return "EVM signature must be 65 bytes, got \(n)"
        case .invalidV(let v): return "EVM signature v must be 27 or 28, got \(v)"
        case .secp256k1(let e): return "EVM signature: \(e)"
        }
    }
}

/// Why an EVM signing key could not be loaded. Never carries key material.
public enum EVMKeyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The key text is not 32 bytes of hex (optionally `0x`-prefixed).
    case invalidEncoding
    /// The 32 bytes are not a valid secp256k1 scalar (zero or ≥ the curve order).
    case invalidKey
    /// The named environment variable is unset or empty.
    case environmentVariableMissing(String)
    /// The key file does not exist.
    case fileNotFound(path: String)
    /// The key file path is not a regular file.
    case notARegularFile(path: String)
    /// The key file is readable or writable by group or others; `mode` is the permission bits.
    case insecurePermissions(path: String, mode: UInt32)
    /// The key file could not be opened or read; `errno` is the OS error number.
    case unreadable(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .invalidEncoding:
            return "EVM private key must be 32 bytes of hex (64 hex digits, optional 0x prefix)"
        case .invalidKey:
            return "EVM private key is not a valid secp256k1 scalar"
        case .environmentVariableMissing(let name):
            return "environment variable \(name) is not set or empty"
        case .fileNotFound(let path):
            return "EVM key file \(path) does not exist"
        case .notARegularFile(let path):
            return "EVM key file \(path) is not a regular file"
        case .insecurePermissions(let path, let mode):
            return "EVM key file \(path) has mode \(String(mode, radix: 8)); it must not be accessible by group or others (use chmod 600)"
        case .unreadable(let path, let errno):
            return "EVM key file \(path) could not be read (errno \(errno))"
        }
    }
}

// MARK: - Address

/// A 20-byte EVM account address.
///
/// Equality and hashing use the raw bytes, so the textual case does not matter.
/// ``description`` is the EIP-55 checksummed form.
public struct EVMAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The 20 address bytes.
    public let bytes: [UInt8]

    /// Wraps 20 raw bytes.
    public init(bytes: [UInt8]) throws(EVMAddressError) {
        guard bytes.count == 20 else { throw .invalidLength(bytes.count) }
        self.bytes = bytes
    }

    /// Parses a hex address (optional `0x`/`0X` prefix).
    ///
    /// All-lower-case and all-upper-case strings are accepted without a checksum check;
    /// a mixed-case string must carry a correct EIP-55 checksum.
    public init(hex: some StringProtocol) throws(EVMAddressError) {
        var digits = Substring(hex)
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
        let utf8 = Array(digits.utf8)
        guard utf8.count == 40 else {
            throw .invalidLength(utf8.count)
        }
        guard let raw = Hex.decode(digits) else { throw .invalidHex }
        let hasLower = utf8.contains { (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
        let hasUpper = utf8.contains { (UInt8(ascii: "A")...UInt8(ascii: "F")).contains($0) }
        self.bytes = raw
        if hasLower && hasUpper {
            guard String(decoding: utf8, as: UTF8.self) == String(checksummed.dropFirst(2)) else {
                throw .badChecksum
            }
        }
    }

    /// The address of a secp256k1 public key: the last 20 bytes of
    /// `keccak256(uncompressed[1...])` (the 64-byte `x ‖ y`).
    public init(publicKey: Secp256k1.PublicKey) {
        let hash = Keccak256.hash(Array(publicKey.uncompressed.dropFirst()))
        self.bytes = Array(hash.suffix(20))
    }

    /// The lower-case hex form with `0x` prefix.
    public var lowercased: String { "0x" + bytes.hexString }

    /// The EIP-55 mixed-case checksummed form with `0x` prefix.
    public var checksummed: String {
        let lower = Array(bytes.hexString.utf8)
        let hash = Keccak256.hash(lower)
        var out = [UInt8]()
        out.reserveCapacity(42)
        out.append(UInt8(ascii: "0"))
        out.append(UInt8(ascii: "x"))
        for (i, c) in lower.enumerated() {
            let nibble = i % 2 == 0 ? hash[i / 2] >> 4 : hash[i / 2] & 0x0f
            if c >= UInt8(ascii: "a") && nibble >= 8 {
                out.append(c - 32)
            } else {
                out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { checksummed }

    /// Recovers the address that produced a 65-byte `r ‖ s ‖ v` signature over `digest32`.
    ///
    /// `v` may be 27/28 or 0/1. High-S signatures are accepted (callers wanting EIP-2
    /// strictness should check ``Secp256k1/RecoverableSignature/isLowS`` separately).
    public static func recover(digest32: [UInt8], signature65: [UInt8]) throws(EVMSignatureError) -> EVMAddress {
        guard signature65.count == 65 else { throw .invalidLength(signature65.count) }
        let v = signature65[64]
        let recid: Int
        switch v {
        case 27, 28: recid = Int(v) - 27
        case 0, 1: recid = Int(v)
        default: throw .invalidV(v)
        }
        do {
            let sig = try Secp256k1.RecoverableSignature(compact: Array(signature65[0..<64]), recoveryId: recid)
            return EVMAddress(publicKey: try sig.recoverPublicKey(digest32: digest32))
        } catch {
            throw .secp256k1(error)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(hex: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(checksummed)
    }
}

// MARK: - Signer

/// An EVM externally-owned-account signer: a secp256k1 private key and its address.
///
/// The key never appears in ``description``, ``debugDescription``, `dump` output or any
/// error this type throws.
public struct EVMSigner: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let key: Secp256k1.PrivateKey
    /// The account address derived from the key.
    public let address: EVMAddress

    /// Wraps an existing private key.
    public init(privateKey: Secp256k1.PrivateKey) {
        self.key = privateKey
        self.address = EVMAddress(publicKey: privateKey.publicKey)
    }

    /// Parses a 32-byte hex private key (optional `0x` prefix, surrounding whitespace ignored).
    public init(hexKey: some StringProtocol) throws(EVMKeyError) {
        var text = Substring(hexKey)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        guard let raw = Hex.decode(text), raw.count == 32 else { throw .invalidEncoding }
        guard let key = try? Secp256k1.PrivateKey(bytes: raw) else { throw .invalidKey }
        self.init(privateKey: key)
    }

    /// Loads a hex private key from the environment variable `name`.
    public static func fromEnvironment(_ name: String) throws(EVMKeyError) -> EVMSigner {
        guard let value = getenv(name) else { throw .environmentVariableMissing(name) }
        let text = String(cString: value)
        guard !text.isEmpty else { throw .environmentVariableMissing(name) }
        return try EVMSigner(hexKey: text)
    }

    /// Loads a hex private key from a file that must be a regular file with no group or
    /// other permission bits (mode `0600`, `0400` or stricter).
    ///
    /// The permission check uses `fstat` on the opened descriptor, so it applies to the file
    /// actually read.
    public static func fromFile(path: String) throws(EVMKeyError) -> EVMSigner {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let err = errno
            if err == ENOENT { throw .fileNotFound(path: path) }
            throw .unreadable(path: path, errno: err)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .notARegularFile(path: path) }
        let perms = UInt32(st.st_mode) & 0o777
        guard perms & 0o077 == 0 else { throw .insecurePermissions(path: path, mode: perms) }

        var contents = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        defer {
            // Best-effort scrub of the transient copies.
            for i in buffer.indices { buffer[i] = 0 }
            for i in contents.indices { contents[i] = 0 }
        }
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(path: path, errno: errno)
            }
            if n == 0 { break }
            contents.append(contentsOf: buffer[0..<n])
            // A hex key is 66 bytes at most; refuse to slurp large files.
            guard contents.count <= 1024 else { throw .invalidEncoding }
        }
        return try EVMSigner(hexKey: String(decoding: contents, as: UTF8.self))
    }

    /// Signs a 32-byte digest, returning 65 bytes `r ‖ s ‖ v` with low-S and `v` ∈ {27, 28}.
    ///
    /// Signing is deterministic (RFC 6979). Throws only if `digest32` is not 32 bytes.
    /// (Recovery ids 2/3, which need `r ≥ n` and occur with negligible probability, would
    /// give `v` 29/30; Ethereum verifiers reject those.)
    public func signDigest(_ digest32: [UInt8]) throws(Secp256k1Error) -> [UInt8] {
        let sig = try key.signRecoverable(digest32: digest32)
        return sig.r + sig.s + [UInt8(27 + sig.recoveryId)]
    }

    public var description: String { "EVMSigner(\(address.checksummed))" }
    public var debugDescription: String { "EVMSigner(address: \(address.checksummed), key: <redacted>)" }
    public var customMirror: Mirror {
        Mirror(self, children: ["address": address.checksummed, "key": "<redacted>"])
    }
}
