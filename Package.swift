// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "routeweiler",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RouteweilerWire", targets: ["RouteweilerWire"]),
        .library(name: "Routeweiler", targets: ["Routeweiler"]),
        .library(name: "RouteweilerSQLite", targets: ["RouteweilerSQLite"]),
        .library(name: "RouteweilerPostgres", targets: ["RouteweilerPostgres"]),
        .library(name: "LNDClient", targets: ["LNDClient"]),
        .library(name: "RouteweilerL402", targets: ["RouteweilerL402"]),
        .library(name: "RouteweilerX402", targets: ["RouteweilerX402"]),
        .library(name: "RouteweilerMPP", targets: ["RouteweilerMPP"]),
        .library(name: "RouteweilerTesting", targets: ["RouteweilerTesting"]),
        .executable(name: "routeweiler", targets: ["RouteweilerCLI"]),
        .executable(name: "routeweiler-bench", targets: ["RouteweilerBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSecp256k1",
            pkgConfig: "libsecp256k1",
            providers: [.apt(["libsecp256k1-dev"])]
        ),
        .target(
            name: "RouteweilerWire",
            dependencies: [
                "CSecp256k1",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "LNDClient",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["Protos"]
        ),
        .target(
            name: "Routeweiler",
            dependencies: [
                "RouteweilerWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ]
        ),
        .target(
            name: "RouteweilerSQLite",
            dependencies: [
                "Routeweiler",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        .target(
            name: "RouteweilerPostgres",
            dependencies: [
                "Routeweiler",
                "RouteweilerSQLite",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "RouteweilerL402",
            dependencies: [
                "Routeweiler",
                "RouteweilerWire",
                "LNDClient",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "RouteweilerX402",
            dependencies: [
                "Routeweiler",
                "RouteweilerWire",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "RouteweilerMPP",
            dependencies: [
                "Routeweiler",
                "RouteweilerWire",
                "RouteweilerL402",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "RouteweilerTesting",
            dependencies: [
                "Routeweiler",
                "RouteweilerWire",
                "RouteweilerL402",
                "LNDClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "RouteweilerCLI",
            dependencies: [
                "Routeweiler",
                "RouteweilerMPP",
                "RouteweilerWire",
                "RouteweilerSQLite",
                "RouteweilerPostgres",
                "RouteweilerL402",
                "RouteweilerX402",
                "LNDClient",
                "RouteweilerTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "RouteweilerBench",
            dependencies: [
                "Routeweiler",
                "RouteweilerWire",
                "RouteweilerSQLite",
                "RouteweilerL402",
                "RouteweilerX402",
                "LNDClient",
                "RouteweilerTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "RouteweilerWireTests",
            dependencies: ["RouteweilerWire"]
        ),
        .testTarget(
            name: "RouteweilerTests",
            dependencies: [
                "Routeweiler",
                "RouteweilerWire",
                "RouteweilerSQLite",
                "RouteweilerPostgres",
                "RouteweilerL402",
                "RouteweilerX402",
                "LNDClient",
                "RouteweilerTesting",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ]
        ),
        .testTarget(
            name: "RouteweilerMPPTests",
            dependencies: [
                "Routeweiler",
                "RouteweilerWire",
                "RouteweilerL402",
                "RouteweilerX402",
                "RouteweilerMPP",
                "RouteweilerSQLite",
                "RouteweilerTesting",
                "LNDClient",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "RouteweilerCLITests",
            dependencies: [
                "RouteweilerCLI",
                "RouteweilerTesting",
                "LNDClient",
                "Routeweiler",
                "RouteweilerL402",
                "RouteweilerSQLite",
                "RouteweilerPostgres",
                "RouteweilerWire",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
    ]
)

for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + swiftSettings
}
