import Foundation

/// Where envelope signing keys live (SPEC §10.5): one file `env_<envelope id>.ed25519` per envelope, holding the
/// raw 32-byte Ed25519 seed, created exclusively with mode 0600 in a directory created with mode 0700.
///
/// ```swift
/// let keystore = EnvelopeKeystore()                       // ~/.routeweiler/keys
/// let key = try keystore.create(envelopeID: "agent-42")   // fails if the file exists
/// ```
///
/// Envelope ids are checked before they reach a path (letters, digits, `-`, `_`, `.`; not `.` or `..`), so an id
/// can never name a file outside the directory. Keys are never rotated.
public struct EnvelopeKeystore: Sendable, Hashable {
    /// The directory holding the key files.
    public let directory: String

    /// A keystore in `directory`, or in ``defaultDirectory`` when `nil`. Nothing is created until a key is.
    public init(directory: String? = nil) {
        self.directory = directory ?? Self.defaultDirectory
    }

    /// `~/.routeweiler/keys`.
    public static var defaultDirectory: String {
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".routeweiler/keys")
    }

    /// The key file of an envelope.
    /// - Throws: ``ConfigurationError`` when the id could name a path outside the directory.
    public func path(envelopeID: String) throws -> String {
        guard Self.isSafeID(envelopeID) else {
            throw ConfigurationError("envelope id '\(envelopeID)' cannot name a key file (letters, digits, '-', '_', '.' only)")
        }
        return (directory as NSString).appendingPathComponent("env_\(envelopeID).ed25519")
    }

    /// Whether the envelope has a key file.
    public func exists(envelopeID: String) throws -> Bool {
        FileManager.default.fileExists(atPath: try path(envelopeID: envelopeID))
    }

    /// Creates a new random key for the envelope, exclusively (`O_CREAT | O_EXCL`, mode 0600).
    /// - Throws: ``KeystoreAlreadyExistsError`` when the envelope already has a key file; ``ConfigurationError``
    ///   when the directory or file cannot be written.
    @discardableResult
    public func create(envelopeID: String) throws -> EnvelopeSigningKey {
        let file = try path(envelopeID: envelopeID)
        try ensureDirectory()
        let key = EnvelopeSigningKey.generate()
        let fd = Foundation.open(file, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST {
                throw KeystoreAlreadyExistsError("a signing key for envelope '\(envelopeID)' already exists at \(file)")
            }
            throw ConfigurationError("cannot create key file \(file): \(String(cString: strerror(code)))")
        }
        var ok = fchmod(fd, 0o600) == 0
        let seed = key.seed
        if ok {
            ok = seed.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 { if errno == EINTR { continue } else { return false } }
                    offset += n
                }
                return true
            }
        }
        if ok { ok = fsync(fd) == 0 }
        let code = errno
        close(fd)
        guard ok else {
            unlink(file)
            throw ConfigurationError("cannot write key file \(file): \(String(cString: strerror(code)))")
        }
        return key
    }

    /// Loads the envelope's key.
    /// - Throws: ``KeystoreNotFoundError`` when the file is missing; ``KeystoreCorruptError`` when it does not hold
    ///   exactly 32 bytes.
    public func load(envelopeID: String) throws -> EnvelopeSigningKey {
        let file = try path(envelopeID: envelopeID)
        let fd = Foundation.open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT {
                throw KeystoreNotFoundError("no signing key for envelope '\(envelopeID)' at \(file)")
            }
            throw ConfigurationError("cannot read key file \(file): \(String(cString: strerror(code)))")
        }
        defer { close(fd) }
        var bytes = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 64)
        while bytes.count <= 64 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConfigurationError("cannot read key file \(file): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        guard bytes.count == 32 else {
            throw KeystoreCorruptError("key file \(file) holds \(bytes.count) bytes; an Ed25519 seed is 32")
        }
        return try EnvelopeSigningKey(seed: bytes)
    }

    /// Removes the envelope's key file; no error when there is none.
    public func delete(envelopeID: String) throws {
        let file = try path(envelopeID: envelopeID)
        if unlink(file) != 0, errno != ENOENT {
            throw ConfigurationError("cannot delete key file \(file): \(String(cString: strerror(errno)))")
        }
    }

    /// Base64 of the envelope's raw 32-byte public key.
    public func publicKeyBase64(envelopeID: String) throws -> String {
        try load(envelopeID: envelopeID).publicKeyBase64
    }

    /// The same rule as ``BudgetEnvelope/validate()``, re-checked here so no caller can reach a path with an id.
    static func isSafeID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 128 && id != "." && id != ".."
            && id.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }
            && !id.contains("/") && !id.contains("\0")
    }

    private func ensureDirectory() throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else { throw ConfigurationError("keystore path \(directory) is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            // Another process may have created it in between.
            guard FileManager.default.fileExists(atPath: directory) else {
                throw ConfigurationError("cannot create keystore directory \(directory): \(error.localizedDescription)")
            }
        }
        chmod(directory, 0o700)
    }
}
