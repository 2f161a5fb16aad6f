import ArgumentParser
import Foundation
import Logging
import OTel
import ServiceLifecycle

/// `--otel-endpoint`: export the library's spans and metrics over OTLP/HTTP (protobuf) to a collector.
struct TelemetryOptions: ParsableArguments {
    @Option(name: .customLong("otel-endpoint"),
            help: "Export spans and metrics over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318.")
    var endpoint: String?

    func validate() throws {
        if let endpoint {
            guard let url = URL(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme),
                url.host != nil
            else { throw ValidationError("--otel-endpoint must be an http(s) URL") }
        }
    }

    /// `base` + `/v1/<signal>` unless a path is given.
    static func signalURL(_ base: String, _ signal: String) -> String {
        guard let url = URL(string: base), url.path.isEmpty || url.path == "/" else { return base }
        return base.hasSuffix("/") ? base + "v1/\(signal)" : base + "/v1/\(signal)"
    }

    /// Runs `body` with the OTel backends bootstrapped (when an endpoint is given), then flushes them.
    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard let endpoint else { return try await body() }
        var config = OTel.Configuration.default
        config.serviceName = "routeweiler"
        config.logs.enabled = false  // logs stay on stderr
        config.diagnosticLogLevel = .error
        config.traces.exporter = .otlp
        config.traces.otlpExporter.endpoint = Self.signalURL(endpoint, "traces")
        config.traces.otlpExporter.protocol = .httpProtobuf
        config.metrics.exporter = .otlp
        config.metrics.otlpExporter.endpoint = Self.signalURL(endpoint, "metrics")
        config.metrics.otlpExporter.protocol = .httpProtobuf
        let otel = try OTel.bootstrap(configuration: config)
        let group = ServiceGroup(services: [otel], logger: Logger(label: "routeweiler.otel"))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            await group.triggerGracefulShutdown()  // flushes the batched spans and the last metrics
            try await tasks.waitForAll()
            return try result.get()
        }
    }
}
