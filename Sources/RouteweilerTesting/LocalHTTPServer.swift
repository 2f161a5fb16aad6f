import Hummingbird
import Logging
import Synchronization

/// Runs a Hummingbird router on 127.0.0.1 (port 0) for a test double, and stops it.
final class LocalHTTPServer: Sendable {
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)

    /// Starts serving `router` and returns the bound port once the server is listening.
    func start<Context: RequestContext>(_ router: Router<Context>, label: String) async throws -> Int
    where Context: InitializableFromSource<ApplicationRequestContextSource> {
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: nil),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: Logger(label: label, factory: { _ in SwiftLogNoOpLogHandler() }))
        let t = Task { try await app.run() }
        task.withLock { $0 = t }
        var port = 0
        for await p in stream { port = p }
        guard port != 0 else {
            t.cancel()
            throw FakePaywallError(message: "\(label) did not start")
        }
        return port
    }

    /// Stops the server and waits for it to finish.
    func shutdown() async {
        let t = task.withLock { t -> Task<Void, any Error>? in
            defer { t = nil }
            return t
        }
        t?.cancel()
        _ = await t?.result
    }
}

/// Starts a test double, runs `body` with it, and shuts it down whether `body` returns or throws.
func withStarted<Server, R>(
    _ server: Server, start: () async throws -> Void, shutdown: () async -> Void, _ body: (Server) async throws -> R
) async throws -> R {
    try await start()
    do {
        let r = try await body(server)
        await shutdown()
        return r
    } catch {
        await shutdown()
        throw error
    }
}
