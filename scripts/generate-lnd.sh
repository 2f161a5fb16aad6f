#!/usr/bin/env bash
# Regenerates Sources/LNDClient/Generated from the trimmed LND protos in
# Sources/LNDClient/Protos. The generated Swift is committed; a normal build never
# runs this script.
#
# It builds the protoc plugins (protoc-gen-swift from swift-protobuf and
# protoc-gen-grpc-swift-2 from grpc-swift-protobuf) in a scratch package,
# .build-protoc/ by default (override with PROTOC_PLUGINS_DIR), so the main
# package's build is left alone. Needs `protoc` (apt: protobuf-compiler).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SWIFT_PROTOBUF_VERSION="${SWIFT_PROTOBUF_VERSION:-1.39.0}"
GRPC_SWIFT_PROTOBUF_VERSION="${GRPC_SWIFT_PROTOBUF_VERSION:-2.4.1}"
PLUGINS_DIR="${PROTOC_PLUGINS_DIR:-$ROOT/.build-protoc}"

command -v protoc >/dev/null || { echo "error: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

mkdir -p "$PLUGINS_DIR/Sources/Dummy"
cat > "$PLUGINS_DIR/Package.swift" <<SWIFT
// swift-tools-version:6.1
// Scratch package that only exists to build the protoc plugins (see scripts/generate-lnd.sh).
import PackageDescription

let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "$SWIFT_PROTOBUF_VERSION"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "$GRPC_SWIFT_PROTOBUF_VERSION"),
    ],
    targets: [
        .target(name: "Dummy", dependencies: [
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        ]),
    ]
)
SWIFT
echo "" > "$PLUGINS_DIR/Sources/Dummy/Dummy.swift"

# `swift build` builds only the last of several --product flags: build them one by one.
echo "Building protoc plugins in $PLUGINS_DIR (first run takes several minutes)..."
swift build --package-path "$PLUGINS_DIR" -c release --product protoc-gen-swift
swift build --package-path "$PLUGINS_DIR" -c release --product protoc-gen-grpc-swift-2
BIN="$(swift build --package-path "$PLUGINS_DIR" -c release --show-bin-path)"

OUT="Sources/LNDClient/Generated"
rm -rf "$OUT"
mkdir -p "$OUT"

protoc \
  --proto_path=Sources/LNDClient/Protos \
  --plugin=protoc-gen-swift="$BIN/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift-2="$BIN/protoc-gen-grpc-swift-2" \
  --swift_opt=Visibility=Package \
  --swift_out="$OUT" \
  --grpc-swift-2_opt=Visibility=Package,Server=true,Client=true \
  --grpc-swift-2_out="$OUT" \
  lnd/lightning.proto lnd/router.proto

echo "Generated:"
find "$OUT" -name '*.swift' | sort
