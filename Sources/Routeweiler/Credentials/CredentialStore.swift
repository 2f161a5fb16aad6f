import Foundation
import Synchronization

/// A paid credential that can be presented again (an L402 token: macaroon plus preimage).
///
/// It is a bearer secret: it is only ever sent to the origin that issued it, never logged, never traced.
public struct StoredCredential: Sendable {
    public var id: String
    public var rail: RailID
    /// `scheme://host:port` of the server that issued it.
    public var origin: String
    /// Where it applies on that origin: `services:<caveat>` (the whole origin) or `path:<prefix>`.
    public var scope: String
    /// The header to present, e.g. `Authorization`.
    public var headerName: String
    public var headerValue: Redacted<String>
    public var expiresAt: Date?
    public var requestID: String
    public var challengeURL: String

    public init(id: String, rail: RailID, origin: String, scope: String, headerName: String,
                headerValue: Redacted<String>, expiresAt: Date?, requestID: String, challengeURL: String) {
        self.id = id
        self.rail = rail
        self.origin = origin
        self.scope = scope
        self.headerName = headerName
        self.headerValue = headerValue
        self.expiresAt = expiresAt
        self.requestID = requestID
        self.challengeURL = challengeURL
    }

    /// Whether this credential may be presented for `url` at `now`: same origin, scope covering the path,
    /// not expired.
    public func applies(to url: URL, now: Date) -> Bool {
        if let expiresAt, now >= expiresAt { return false }
        guard url.routeweilerOrigin == origin else { return false }
        if scope.hasPrefix("services:") { return true }
        if scope.hasPrefix("path:") {
            let prefix = String(scope.dropFirst(5))
            let path = url.path.isEmpty ? "/" : url.path
            return path.hasPrefix(prefix)
        }
        return false
    }
}

/// Keeps paid credentials for reuse, so a token bought once is not paid for again.
public protocol CredentialStore: Sendable {
    /// Stores a credential (replacing one with the same id).
    func store(_ credential: StoredCredential) async throws
    /// A credential for `url` (same origin, covering scope, unexpired), most recent first.
    func credential(for url: URL, now: Date) async throws -> StoredCredential?
    /// As ``credential(for:now:)``, for a caller that already has the URL's origin (`scheme://host:port`, as
    /// ``URL/routeweilerOrigin``); the default reads it from the URL again.
    func credential(for url: URL, origin: String, now: Date) async throws -> StoredCredential?
    /// Drops a credential the server refused.
    func remove(id: String) async throws
}

/// An in-memory credential store (the default when no database is configured). A lock rather than an actor: the
/// lookup starts every call.
public final class InMemoryCredentialStore: CredentialStore {
    private let items = Mutex<[StoredCredential]>([])
    public init() {}
    public func store(_ credential: StoredCredential) async throws {
        items.withLock { items in
            items.removeAll { $0.id == credential.id }
            items.append(credential)
        }
    }
    public func credential(for url: URL, now: Date) async throws -> StoredCredential? {
        items.withLock { items in items.last { $0.applies(to: url, now: now) } }
    }
    public func remove(id: String) async throws { items.withLock { $0.removeAll { $0.id == id } } }
    public var count: Int { items.withLock { $0.count } }
}

extension CredentialStore {
    public func credential(for url: URL, origin: String, now: Date) async throws -> StoredCredential? {
        try await credential(for: url, now: now)
    }
}
