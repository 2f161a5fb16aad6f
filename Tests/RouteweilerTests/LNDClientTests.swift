import Foundation
import LNDClient
import Testing

#if canImport(RouteweilerTesting)
import RouteweilerTesting
#else
import FakeLNDTesting
#endif

/// LNDClient against FakeLND: real gRPC over real TLS sockets on 127.0.0.1.
@Suite("LNDClient over gRPC/TLS against FakeLND")
struct LNDClientTests {
    /// Runs `body` with a fake node and a client connected to it.
    private func withNode<R: Sendable>(
        network: FakeLightningNetwork = FakeLightningNetwork(),
        configuration: FakeLND.Configuration = FakeLND.Configuration(clientTimeout: .seconds(30)),
        _ body: (FakeLND, LNDClient) async throws -> R
    ) async throws -> R {
        try await FakeLND.withFakeLND(network: network, configuration: configuration) { fake in
            try await LNDClient.withClient(configuration: fake.clientConfiguration) { client in
                try await body(fake, client)
            }
        }
    }

    /// Runs `body`, expecting an `LNDError`; returns it.
    private func expectLNDError(
        _ code: LNDError.Code,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () async throws -> Void
    ) async -> LNDError? {
        do {
            try await body()
            Issue.record("expected LNDError(\(code)), got success", sourceLocation: sourceLocation)
            return nil
        } catch let error as LNDError {
            #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
            return error
        } catch {
            Issue.record("expected LNDError(\(code)), got \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    @Test("getInfo returns the node's pubkey, alias and network")
    func getInfo() async throws {
        let configuration = FakeLND.Configuration(alias: "alice", network: "signet", blockHeight: 4242)
        try await self.withNode(configuration: configuration) { fake, client in
            let info = try await client.getInfo()
            #expect(info.identityPubkey == fake.identityPubkey)
            #expect(info.identityPubkey.count == 66)
            #expect(info.identityPubkey.hasPrefix("02") || info.identityPubkey.hasPrefix("03"))
            #expect(info.alias == "alice")
            #expect(info.network == "signet")
            #expect(info.chain == "bitcoin")
            #expect(info.syncedToChain)
            #expect(info.blockHeight == 4242)
            #expect(info.version.hasPrefix("0.17"))
            #expect(fake.calls == ["GetInfo"])
        }
    }

    @Test("the macaroon arrives as lower-case hex in the `macaroon` metadata")
    func macaroonMetadata() async throws {
        try await self.withNode { fake, client in
            _ = try await client.getInfo()
            let invoice = await fake.network.makeInvoice(amountMsat: 1_000)
            _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 100, timeoutSeconds: 10)
            #expect(fake.receivedMacaroons == [fake.macaroonHex, fake.macaroonHex])
            #expect(fake.macaroonHex == fake.macaroonHex.lowercased())
            #expect(fake.macaroonHex.count == fake.macaroonBytes.count * 2)
        }
    }

    @Test("the macaroon can be given as upper-case hex or as a binary file")
    func macaroonSources() async throws {
        try await FakeLND.withFakeLND { fake in
            var configuration = fake.clientConfiguration
            configuration.macaroon = .hex(fake.macaroonHex.uppercased())
            try await LNDClient.withClient(configuration: configuration) { client in
                _ = try await client.getInfo()
            }

            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lnd-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let certPath = directory.appendingPathComponent("tls.cert").path
            let macaroonPath = directory.appendingPathComponent("admin.macaroon").path
            try Data(fake.certificatePEM.utf8).write(to: URL(fileURLWithPath: certPath))
            try Data(fake.macaroonBytes).write(to: URL(fileURLWithPath: macaroonPath))

            let client = try LNDClient(grpcHost: fake.host, grpcPort: fake.port, tlsCertPath: certPath, macaroonPath: macaroonPath)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                defer { client.shutdown() }
                let info = try await client.getInfo()
                #expect(info.identityPubkey == fake.identityPubkey)
            }
            #expect(fake.receivedMacaroons.allSatisfy { $0 == fake.macaroonHex })
        }
    }

    @Test("paying a registered invoice returns the preimage and settles it in the network")
    func payInvoice() async throws {
        let network = FakeLightningNetwork()
        try await self.withNode(network: network) { fake, client in
            let invoice = await network.makeInvoice(amountMsat: 21_000)
            #expect(await network.isSettled(paymentHash: invoice.paymentHash) == false)

            let outcome = try await client.sendPayment(
                paymentRequest: invoice.paymentRequest,
                feeLimitMsat: 5_000,
                timeoutSeconds: 30
            )
            #expect(outcome.status == .succeeded)
            #expect(outcome.preimage == invoice.preimage)
            #expect(outcome.paymentHash == invoice.paymentHash)
            #expect(outcome.valueMsat == 21_000)
            #expect(outcome.feeMsat == 1_000)
            #expect(outcome.failureReason == nil)
            #expect(await network.isSettled(paymentHash: invoice.paymentHash))
            #expect(await network.invoice(paymentHash: invoice.paymentHash)?.settledAt != nil)

            let request = try #require(fake.lastSendPaymentRequest)
            #expect(request.feeLimitMsat == 5_000)
            #expect(request.timeoutSeconds == 30)
            #expect(request.allowSelfPayment == false)
            #expect(fake.paymentCount == 1)
            #expect(fake.payments.first?.status == .succeeded)
            #expect(fake.calls == ["SendPaymentV2"])

            // TrackPaymentV2 reports the same outcome.
            let tracked = try await client.trackPayment(paymentHash: invoice.paymentHash)
            #expect(tracked == outcome)
        }
    }

    @Test("paying the same invoice twice throws .alreadyPaid and sends nothing")
    func alreadyPaid() async throws {
        try await self.withNode { fake, client in
            let invoice = await fake.network.makeInvoice(amountMsat: 5_000)
            _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
            let error = await self.expectLNDError(.alreadyPaid) {
                _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
            }
            #expect(error?.paymentMayHaveBeenSent == false)
            #expect(fake.paymentCount == 1)
        }
    }

    @Test("a FAILED payment throws .paymentFailed with LND's reason; a retry can succeed")
    func paymentFailed() async throws {
        try await self.withNode { fake, client in
            let invoice = await fake.network.makeInvoice(amountMsat: 5_000)
            fake.failNextPayment(reason: "FAILURE_REASON_NO_ROUTE")
            let error = await self.expectLNDError(.paymentFailed) {
                _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
            }
            #expect(error?.failureReason == "FAILURE_REASON_NO_ROUTE")
            #expect(error?.paymentMayHaveBeenSent == false)
            #expect(error?.description.contains("FAILURE_REASON_NO_ROUTE") == true)
            #expect(await fake.network.isSettled(paymentHash: invoice.paymentHash) == false)

            fake.failNextPayment(reason: "FAILURE_REASON_INSUFFICIENT_BALANCE")
            let second = await self.expectLNDError(.paymentFailed) {
                _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
            }
            #expect(second?.failureReason == "FAILURE_REASON_INSUFFICIENT_BALANCE")

            let outcome = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
            #expect(outcome.preimage == invoice.preimage)
        }
    }

    @Test("an unknown invoice fails with FAILURE_REASON_INCORRECT_PAYMENT_DETAILS")
    func unknownInvoice() async throws {
        try await self.withNode { _, client in
            let error = await self.expectLNDError(.paymentFailed) {
                _ = try await client.sendPayment(paymentRequest: "lnbcrt1unknown", feeLimitMsat: 1_000, timeoutSeconds: 10)
            }
            #expect(error?.failureReason == "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS")
        }
    }

    @Test("an expired invoice throws .invalidRequest")
    func expiredInvoice() async throws {
        try await self.withNode { fake, client in
            let invoice = await fake.network.makeInvoice(amountMsat: 1_000, expiresIn: -60)
            let error = await self.expectLNDError(.invalidRequest) {
                _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
            }
            #expect(error?.message.contains("invoice expired") == true)
            #expect(error?.paymentMayHaveBeenSent == false)
            #expect(fake.paymentCount == 0)
        }
    }

    @Test("a stream broken after IN_FLIGHT is settled through TrackPaymentV2")
    func brokenStreamIsTracked() async throws {
        try await self.withNode { fake, client in
            let invoice = await fake.network.makeInvoice(amountMsat: 7_000)
            fake.breakStreamAfterInFlight()
            let outcome = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
            #expect(outcome.status == .succeeded)
            #expect(outcome.preimage == invoice.preimage)
            #expect(fake.calls == ["SendPaymentV2", "TrackPaymentV2"])
            #expect(fake.paymentCount == 1)

            let tracked = try await client.trackPayment(paymentHash: invoice.paymentHash)
            #expect(tracked.status == .succeeded)
            #expect(tracked.preimage == invoice.preimage)
        }
    }

    @Test("a stream broken before any update is settled with the caller's payment hash")
    func brokenStreamBeforeUpdateUsesCallerHash() async throws {
        try await self.withNode { fake, client in
            let invoice = await fake.network.makeInvoice(amountMsat: 7_000)
            fake.breakStreamAfterInFlight()
            // Even if the IN_FLIGHT update were lost, the caller's hash lets the client track it.
            let outcome = try await client.sendPayment(
                paymentRequest: invoice.paymentRequest,
                feeLimitMsat: 1_000,
                timeoutSeconds: 10,
                paymentHash: invoice.paymentHash
            )
            #expect(outcome.preimage == invoice.preimage)
        }
    }

    @Test("a payment that outlives the RPC deadline is settled through TrackPaymentV2")
    func deadlineThenTrack() async throws {
        // Generous margins: the suite runs in parallel on two cores.
        let configuration = FakeLND.Configuration(clientTimeout: .seconds(4))
        try await self.withNode(configuration: configuration) { fake, client in
            let invoice = await fake.network.makeInvoice(amountMsat: 3_000)
            // In flight until the client, past SendPaymentV2's deadline (4 s + 1 s), asks TrackPaymentV2; settled
            // then. (A timed hang raced the deadline: with the two cores busy its sleep could end late.)
            fake.holdAfterInFlight()
            async let sent = client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 1)
            let clock = ContinuousClock()
            let giveUp = clock.now + .seconds(60)
            while !fake.calls.contains("TrackPaymentV2"), clock.now < giveUp {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(fake.calls.filter { $0 == "SendPaymentV2" }.count == 1)
            await fake.releaseHeldPayments()
            let outcome = try await sent
            #expect(outcome.status == .succeeded)
            #expect(outcome.preimage == invoice.preimage)
            #expect(fake.calls.contains("TrackPaymentV2"))
        }
    }

    @Test("a payment still in flight after tracking throws .timeout with paymentMayHaveBeenSent")
    func deadlineUnsettled() async throws {
        let configuration = FakeLND.Configuration(clientTimeout: .seconds(3))
        try await self.withNode(configuration: configuration) { fake, client in
            let invoice = await fake.network.makeInvoice(amountMsat: 3_000)
            fake.hangAfterInFlight(seconds: 20)  // still in flight after the send deadline (4 s) and tracking (3 s)
            let error = await self.expectLNDError(.timeout) {
                _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 1)
            }
            #expect(error?.paymentMayHaveBeenSent == true)

            // trackPayment returns the current in-flight state rather than guessing.
            let tracked = try await client.trackPayment(paymentHash: invoice.paymentHash)
            #expect(tracked.status == .inFlight)
            #expect(tracked.preimage == nil)
        }
    }

    @Test("trackPayment of an unknown hash throws .paymentNotFound")
    func trackUnknown() async throws {
        try await self.withNode { _, client in
            let error = await self.expectLNDError(.paymentNotFound) {
                _ = try await client.trackPayment(paymentHash: [UInt8](repeating: 7, count: 32))
            }
            #expect(error?.paymentMayHaveBeenSent == false)
        }
    }

    @Test("a wrong preimage is passed through for the caller to detect")
    func wrongPreimage() async throws {
        try await self.withNode { fake, client in
            let invoice = await fake.network.makeInvoice(amountMsat: 2_000)
            fake.returnWrongPreimage()
            let outcome = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
            #expect(outcome.status == .succeeded)
            #expect(outcome.preimage != nil)
            #expect(outcome.preimage != invoice.preimage)
        }
    }

    @Test("a wrong macaroon throws .macaroonRejected and nothing is paid")
    func wrongMacaroon() async throws {
        try await FakeLND.withFakeLND { fake in
            var configuration = fake.clientConfiguration
            let wrongHex = String(repeating: "ab", count: 40)
            configuration.macaroon = .hex(wrongHex)
            let invoice = await fake.network.makeInvoice(amountMsat: 1_000)
            try await LNDClient.withClient(configuration: configuration) { client in
                let infoError = await self.expectLNDError(.macaroonRejected) {
                    _ = try await client.getInfo()
                }
                #expect(infoError?.message.contains("verification failed") == true)
                #expect(infoError?.description.contains(wrongHex) == false)

                let payError = await self.expectLNDError(.macaroonRejected) {
                    _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
                }
                #expect(payError?.paymentMayHaveBeenSent == false)
            }
            #expect(fake.paymentCount == 0)
            #expect(await fake.network.isSettled(paymentHash: invoice.paymentHash) == false)

            // The right macaroon, but the node rejects all macaroons.
            fake.rejectAllMacaroons = true
            try await LNDClient.withClient(configuration: fake.clientConfiguration) { client in
                _ = await self.expectLNDError(.macaroonRejected) {
                    _ = try await client.getInfo()
                }
            }
        }
    }

    @Test("a node whose certificate is not the pinned one throws .certificateRejected")
    func wrongCertificate() async throws {
        try await FakeLND.withFakeLND { fake in
            var configuration = fake.clientConfiguration
            configuration.tlsCertificate = .pem(try SelfSignedCertificate().certificatePEM)
            let invoice = await fake.network.makeInvoice(amountMsat: 1_000)
            try await LNDClient.withClient(configuration: configuration) { client in
                let error = await self.expectLNDError(.certificateRejected) {
                    _ = try await client.getInfo()
                }
                #expect(error?.message.contains("did not match the pinned tls.cert") == true)

                let payError = await self.expectLNDError(.certificateRejected) {
                    _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
                }
                #expect(payError?.paymentMayHaveBeenSent == false)
            }
            #expect(fake.calls.isEmpty)
        }
    }

    @Test("connecting through `localhost` works; the certificate's names are verified")
    func hostnames() async throws {
        try await FakeLND.withFakeLND { fake in
            var byName = fake.clientConfiguration
            byName.host = "localhost"
            // `localhost` may resolve to ::1 first, where nothing listens; the client must still connect.
            try await LNDClient.withClient(configuration: byName) { client in
                _ = try await client.getInfo()
            }
        }

        // A node whose certificate names only `node.internal` (no IP SANs), reached by IP,
        // as with a Docker node whose cert does not list the address used.
        let certificate = try SelfSignedCertificate(dnsNames: ["node.internal"], includeLoopbackIPs: false)
        try await FakeLND.withFakeLND(configuration: FakeLND.Configuration(certificate: certificate)) { fake in
            try await LNDClient.withClient(configuration: fake.clientConfiguration) { client in
                let error = await self.expectLNDError(.certificateRejected) {
                    _ = try await client.getInfo()
                }
                #expect(error?.paymentMayHaveBeenSent == false)
            }

            var override = fake.clientConfiguration
            override.serverHostname = "node.internal"
            try await LNDClient.withClient(configuration: override) { client in
                _ = try await client.getInfo()
            }

            var wrongName = fake.clientConfiguration
            wrongName.serverHostname = "other.internal"
            try await LNDClient.withClient(configuration: wrongName) { client in
                _ = await self.expectLNDError(.certificateRejected) {
                    _ = try await client.getInfo()
                }
            }

            // Without hostname verification the chain must still match the pinned certificate.
            var noHostname = fake.clientConfiguration
            noHostname.verifyHostname = false
            try await LNDClient.withClient(configuration: noHostname) { client in
                _ = try await client.getInfo()
            }
            noHostname.tlsCertificate = .pem(try SelfSignedCertificate().certificatePEM)
            try await LNDClient.withClient(configuration: noHostname) { client in
                _ = await self.expectLNDError(.certificateRejected) {
                    _ = try await client.getInfo()
                }
            }
        }
    }

    @Test("nothing listening throws .unreachable naming host:port")
    func unreachable() async throws {
        // Start a node to get a free port, then stop it.
        let (configuration, invoice) = try await FakeLND.withFakeLND { fake in
            (fake.clientConfiguration, await fake.network.makeInvoice(amountMsat: 1_000))
        }
        try await LNDClient.withClient(configuration: configuration) { client in
            let error = await self.expectLNDError(.unreachable) {
                _ = try await client.getInfo()
            }
            #expect(error?.message.contains("LND unreachable at 127.0.0.1:\(configuration.port)") == true)

            let payError = await self.expectLNDError(.unreachable) {
                _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
            }
            #expect(payError?.paymentMayHaveBeenSent == false)
        }
    }

    @Test("descriptions of configurations and errors never contain the macaroon")
    func noSecretsInDescriptions() async throws {
        try await FakeLND.withFakeLND { fake in
            let configuration = fake.clientConfiguration
            let hex = fake.macaroonHex
            var dumped = ""
            dump(configuration, to: &dumped)
            for text in [
                configuration.description, configuration.debugDescription, String(reflecting: configuration),
                "\(configuration)", dumped, "\(configuration.macaroon)", String(reflecting: configuration.macaroon),
            ] {
                #expect(!text.contains(hex), "\(text)")
                #expect(!text.contains(String(hex.prefix(16))))
            }
            #expect(configuration.description.contains("127.0.0.1"))

            var errors: [LNDError] = []
            var wrong = configuration
            wrong.macaroon = .hex(hex + "00")  // a different macaroon that contains the real one
            try await LNDClient.withClient(configuration: wrong) { client in
                do { _ = try await client.getInfo() } catch let error as LNDError { errors.append(error) }
            }
            try await LNDClient.withClient(configuration: configuration) { client in
                var dumpedClient = ""
                dump(client, to: &dumpedClient)
                #expect(!dumpedClient.contains(hex))
                #expect(!"\(client)".contains(hex))
                let invoice = await fake.network.makeInvoice(amountMsat: 1_000)
                fake.failNextPayment()
                do {
                    _ = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1, timeoutSeconds: 5)
                } catch let error as LNDError { errors.append(error) }
            }
            #expect(errors.count == 2)
            for error in errors {
                for text in [error.description, error.debugDescription, error.message, "\(error)", String(reflecting: error)] {
                    #expect(!text.contains(hex))
                }
            }
        }
    }

    @Test("invalid configurations throw .invalidConfiguration")
    func invalidConfiguration() throws {
        let pem = try SelfSignedCertificate().certificatePEM
        let cases: [LNDClient.Configuration] = [
            .init(host: "127.0.0.1", tlsCertificate: .pem("not a certificate"), macaroon: .hex("0201")),
            .init(host: "127.0.0.1", tlsCertificate: .pem(pem), macaroon: .hex("not-hex")),
            .init(host: "127.0.0.1", tlsCertificate: .pem(pem), macaroon: .hex("")),
            .init(host: "", tlsCertificate: .pem(pem), macaroon: .hex("0201")),
            .init(host: "127.0.0.1", port: 70_000, tlsCertificate: .pem(pem), macaroon: .hex("0201")),
            .init(host: "127.0.0.1", tlsCertificate: .file("/nonexistent/tls.cert"), macaroon: .hex("0201")),
            .init(host: "127.0.0.1", tlsCertificate: .pem(pem), macaroon: .file("/nonexistent/admin.macaroon")),
        ]
        for configuration in cases {
            let error = #expect(throws: LNDError.self, "\(configuration)") {
                _ = try LNDClient(configuration: configuration)
            }
            #expect(error?.code == .invalidConfiguration)
        }
        #expect(throws: Never.self) {
            _ = try LNDClient(grpcHost: "127.0.0.1", tlsCertPEM: pem, macaroonHex: "0201ABCD")
        }
    }

    @Test("one client reuses one connection for many payments")
    func manyPaymentsOneChannel() async throws {
        try await self.withNode { fake, client in
            var invoices: [FakeInvoice] = []
            for index in 1...20 {
                invoices.append(await fake.network.makeInvoice(amountMsat: UInt64(index) * 1_000))
            }
            for invoice in invoices {
                let outcome = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 500, timeoutSeconds: 10)
                #expect(outcome.preimage == invoice.preimage)
                #expect(outcome.feeMsat == 500)
            }
            #expect(fake.paymentCount == 20)
            for invoice in invoices {
                #expect(await fake.network.isSettled(paymentHash: invoice.paymentHash))
            }
            #expect(Set(fake.remotePeers).count == 1, "\(Set(fake.remotePeers))")
        }
    }

    @Test("concurrent payments of distinct invoices on one client")
    func concurrentPayments() async throws {
        try await self.withNode { fake, client in
            var invoices: [FakeInvoice] = []
            for _ in 0..<8 {
                invoices.append(await fake.network.makeInvoice(amountMsat: 10_000))
            }
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for invoice in invoices {
                    group.addTask {
                        let outcome = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
                        return outcome.preimage == invoice.preimage
                    }
                }
                for try await ok in group {
                    #expect(ok)
                }
            }
            #expect(fake.paymentCount == 8)
        }
    }

    @Test("a long-lived client and fake node: run() / shutdown() and start() / shutdown()")
    func longLived() async throws {
        let fake = try await FakeLND.start()
        let client = try LNDClient(configuration: fake.clientConfiguration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            let invoice = await fake.network.makeInvoice(amountMsat: 1_000)
            let outcome = try await client.sendPayment(paymentRequest: invoice.paymentRequest, feeLimitMsat: 1_000, timeoutSeconds: 10)
            #expect(outcome.preimage == invoice.preimage)
            client.shutdown()
            try await group.waitForAll()
        }
        await fake.shutdown()
    }
}
