import Foundation
import Routeweiler
import Testing

/// Credential store and payment journal behaviour, on every backend.
@Suite struct StoreParityTests {
    func credential(id: String, request: String = UUIDv7.make(), origin: String = "https://api.example:443",
                    scope: String = "services:demo", expires: Date? = nil) -> StoredCredential {
        StoredCredential(id: id, rail: .l402, origin: origin, scope: scope, headerName: "Authorization",
                         headerValue: Redacted("L402 mac:\(id)"), expiresAt: expires, requestID: request,
                         challengeURL: origin + "/p")
    }

    @Test(arguments: Backend.available) func credentialsAreSharedReplacedAndRemoved(_ backend: Backend) async throws {
        let backing = try await StoreUnderTest(backend)
        let store = try backing.credentialStore()
        let now = Date()
        let url = try #require(URL(string: "https://api.example/p/q"))
        #expect(try await store.credential(for: url, now: now) == nil)
        try await store.store(credential(id: "c1"))
        try await store.store(credential(id: "c2", origin: "https://other.example:443"))
        try await store.store(credential(id: "c3", expires: now.addingTimeInterval(-1)))
        // A second handle on the same store (another process) sees the same rows.
        let other = try backing.credentialStore()
        let found = try #require(try await other.credential(for: url, now: now))
        #expect(found.id == "c1" && found.headerValue.value == "L402 mac:c1" && found.origin == "https://api.example:443")
        try await store.store(credential(id: "c1", scope: "path:/nothing"))  // replaced, no longer applies
        #expect(try await other.credential(for: url, now: now) == nil)
        try await store.store(credential(id: "c4"))
        #expect(try await other.credential(for: url, now: now)?.id == "c4")
        try await other.remove(id: "c4")
        #expect(try await store.credential(for: url, now: now) == nil)
    }

    @Test(arguments: Backend.available) func theJournalKeepsPendingIntentsUntilResolved(_ backend: Backend) async throws {
        let backing = try await StoreUnderTest(backend)
        let journal = try backing.paymentJournal()
        let t = Date(timeIntervalSince1970: 1_780_000_000.5)
        let intent = PaymentIntent(
            id: "pi-1", requestID: "r-1", rail: .l402, origin: "https://api.example", url: "https://api.example/p",
            envelopeID: "env", drawID: "d-1", settleMinorUnits: 3, paymentHash: "ab", invoice: "lnbc1",
            credentialPrefix: Redacted("L402 mac"), credentialScope: "services:demo",
            credentialExpiresAt: t.addingTimeInterval(60), createdAt: t)
        try await journal.begin(intent)
        try await journal.begin(PaymentIntent(
            id: "pi-2", requestID: "r-2", rail: .l402, origin: "https://api.example", url: "https://api.example/q",
            envelopeID: nil, drawID: nil, settleMinorUnits: nil, paymentHash: nil, invoice: nil, credentialPrefix: nil,
            credentialScope: nil, credentialExpiresAt: nil, createdAt: t.addingTimeInterval(1)))
        let pending = try await backing.paymentJournal().pending()
        #expect(pending.map(\.id) == ["pi-1", "pi-2"])
        let first = try #require(pending.first)
        #expect(first.drawID == "d-1" && first.settleMinorUnits == 3 && first.credentialPrefix?.value == "L402 mac")
        #expect(first.url == "https://api.example/p" && first.paymentHash == "ab" && first.createdAt == t)
        try await journal.resolve(id: "pi-1", state: .succeeded, proof: "ff", now: t)
        try await journal.resolve(id: "pi-2", state: .failed, proof: nil, now: t)
        #expect(try await journal.pending().isEmpty)
    }
}
