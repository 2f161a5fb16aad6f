import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RouteweilerWire
import Synchronization

/// A Tempo JSON-RPC node over real HTTP on 127.0.0.1 (port 0): answers `eth_getTransactionCount`, `eth_chainId`
/// and `eth_sendRawTransaction` (which decodes the 0x76 transaction, checks its signature and nonce, and bumps
/// the sender's nonce), with scriptable faults. A "down" RPC is simply a closed port (see ``closedPortURL()``).
public final class FakeTempoRPC: Sendable {
    public enum Mode: Sendable, Hashable {
        case normal
        /// HTTP 200 with a JSON-RPC error object.
        case rpcError
        /// HTTP 500.
        case httpError
    }

    public struct Stats: Sendable, Hashable {
        /// JSON-RPC method names, in order.
        public var methods: [String] = []
        /// The `params` of each `eth_getTransactionCount`, as compact JSON.
        public var transactionCountParams: [String] = []
        /// Hashes of accepted raw transactions.
        public var broadcast: [String] = []
    }

    public let chainID: UInt64
    private let state: Mutex<(mode: Mode, nonces: [String: UInt64], stats: Stats, port: Int?)>
    private let server = LocalHTTPServer()

    public init(chainID: UInt64 = 42431) {
        self.chainID = chainID
        state = Mutex((.normal, [:], Stats(), nil))
    }

    public var port: Int { state.withLock { $0.port ?? 0 } }
    public var url: String { "http://127.0.0.1:\(port)/" }
    public var stats: Stats { state.withLock { $0.stats } }
    public func setMode(_ mode: Mode) { state.withLock { $0.mode = mode } }
    /// Sets the pending nonce of `address` (lower-case hex).
    public func setNonce(_ nonce: UInt64, for address: String) { state.withLock { $0.nonces[address.lowercased()] = nonce } }
    public func nonce(of address: String) -> UInt64 { state.withLock { $0.nonces[address.lowercased()] ?? 0 } }

    /// Accepts a signed transaction as if broadcast: the nonce must be the sender's pending nonce, then it is bumped.
    /// - Returns: the transaction hash, or `nil` when the nonce is wrong or the signature does not recover.
    public func accept(rawTransaction raw: [UInt8]) -> String? {
        guard let decoded = try? TempoTransaction.decode(raw),
            let sender = try? TempoTransaction.recoverSender(of: decoded.transaction, signature: decoded.signature)
        else { return nil }
        let tx = decoded.transaction
        return state.withLock { s -> String? in
            let key = sender.lowercased
            guard tx.chainID == chainID, tx.nonce == (s.nonces[key] ?? 0) else { return nil }
            s.nonces[key] = tx.nonce + 1
            let hash = "0x" + Keccak256.hash(raw).hexString
            s.stats.broadcast.append(hash)
            return hash
        }
    }

    public static func withRPC<R: Sendable>(chainID: UInt64 = 42431, _ body: (FakeTempoRPC) async throws -> R)
        async throws -> R
    {
        let rpc = FakeTempoRPC(chainID: chainID)
        try await rpc.start()
        do {
            let r = try await body(rpc)
            await rpc.shutdown()
            return r
        } catch {
            await rpc.shutdown()
            throw error
        }
    }

    public func start() async throws {
        let router = Router()
        router.post("/") { request, _ in try await self.handle(request) }
        let port = try await server.start(router, label: "fake-tempo-rpc")
        state.withLock { $0.port = port }
    }

    public func shutdown() async { await server.shutdown() }

    /// A URL on 127.0.0.1 whose port was just free and is now closed: connecting is refused at once.
    public static func closedPortURL() throws -> String {
        let port = try SilentServer().port  // the listener closes when the temporary is released
        return "http://127.0.0.1:\(port)/"
    }

    private func handle(_ request: Request) async throws -> Response {
        var request = request
        let body = Array(buffer: try await request.collectBody(upTo: 1 << 20))
        let mode = state.withLock { $0.mode }
        if mode == .httpError { return Self.json(.internalServerError, #"{"error":"down"}"#) }
        guard let json = try? JSONValue.parse(body), let method = json["method"]?.stringValue else {
            return Self.json(.ok, #"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#)
        }
        let id = json["id"].map { String(decoding: $0.compact, as: UTF8.self) } ?? "null"
        state.withLock { s in
            s.stats.methods.append(method)
            if method == "eth_getTransactionCount" {
                s.stats.transactionCountParams.append(json["params"].map { String(decoding: $0.compact, as: UTF8.self) } ?? "")
            }
        }
        if mode == .rpcError {
            return Self.json(.ok, #"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32603,"message":"internal error"}}"#)
        }
        let params: [JSONValue]
        if case .array(let p)? = json["params"] { params = p } else { params = [] }
        switch method {
        case "eth_chainId":
            return Self.json(.ok, #"{"jsonrpc":"2.0","id":\#(id),"result":"0x\#(String(chainID, radix: 16))"}"#)
        case "eth_getTransactionCount":
            guard let address = params.first?.stringValue else { break }
            let n = nonce(of: address)
            return Self.json(.ok, #"{"jsonrpc":"2.0","id":\#(id),"result":"0x\#(String(n, radix: 16))"}"#)
        case "eth_sendRawTransaction":
            guard let hex = params.first?.stringValue, let raw = Hex.decode(hex.hasPrefix("0x") ? String(hex.dropFirst(2)) : hex),
                let hash = accept(rawTransaction: raw)
            else {
                return Self.json(.ok, #"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32000,"message":"invalid transaction"}}"#)
            }
            return Self.json(.ok, #"{"jsonrpc":"2.0","id":\#(id),"result":"\#(hash)"}"#)
        default: break
        }
        return Self.json(.ok, #"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32601,"message":"method not found"}}"#)
    }

    static func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
