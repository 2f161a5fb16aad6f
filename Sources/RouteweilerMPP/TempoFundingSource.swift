public import AsyncHTTPClient
import Foundation
import NIOCore
public import Routeweiler
public import RouteweilerWire

/// An account that signs Tempo transactions: a local key (``EVMSigner``), a KMS, a hardware wallet.
public protocol TempoWallet: Sendable {
    /// The account address.
    var address: EVMAddress { get }
    /// Signs a 32-byte digest, returning 65 bytes `r ‖ s ‖ v` with `v` ∈ {27, 28} (or {0, 1}).
    func signDigest(_ digest32: [UInt8]) async throws -> [UInt8]
}

extension EVMSigner: TempoWallet {}

/// A Tempo chain: its id, the network name used in traces, and its public JSON-RPC endpoint.
public struct TempoChain: Sendable, Hashable, CustomStringConvertible {
    public var chainID: UInt64
    /// `tempo`, `tempo-moderato`, or `tempo-chain-<id>`.
    public var network: String
    public var rpcURL: String
    public init(chainID: UInt64, network: String, rpcURL: String) {
        self.chainID = chainID
        self.network = network
        self.rpcURL = rpcURL
    }
    public var description: String { "\(network) (\(chainID))" }

    /// Tempo mainnet, chain 4217 (pympp 0.16 `CHAIN_ID`; SPEC §8.1's 42430 is the reference's older id).
    public static let mainnet = TempoChain(chainID: 4217, network: "tempo", rpcURL: "https://rpc.tempo.xyz")
    /// The Moderato testnet, chain 42431.
    public static let moderato = TempoChain(chainID: 42431, network: "tempo-moderato",
                                            rpcURL: "https://rpc.moderato.tempo.xyz")

    /// The network name for a chain id (known chains by name, others `tempo-chain-<id>`).
    public static func network(for chainID: UInt64) -> String {
        switch chainID {
        case mainnet.chainID: return mainnet.network
        case moderato.chainID: return moderato.network
        default: return "tempo-chain-\(chainID)"
        }
    }
}

/// A TIP-20 token on Tempo.
public struct TempoToken: Sendable, Hashable {
    public var address: EVMAddress
    public var symbol: String
    public var decimals: Int
    public init(address: EVMAddress, symbol: String, decimals: Int = 6) {
        self.address = address
        self.symbol = symbol
        self.decimals = decimals
    }

    /// USDC on Tempo mainnet (`0x20C0…b9537d11c60E8b50`).
    public static let usdc = TempoToken(address: try! EVMAddress(hex: "0x20c000000000000000000000b9537d11c60e8b50"),
                                        symbol: "USDC")
    /// pathUSD, the same address on mainnet and Moderato (`0x20c0…0000`).
    public static let pathUSD = TempoToken(address: try! EVMAddress(hex: "0x20c0000000000000000000000000000000000000"),
                                           symbol: "PathUSD")

    /// `raw / 10^decimals` with six significant digits (C `%g`) and the symbol: `0.01 PathUSD` (SPEC §8.3).
    public func humanAmount(_ raw: UInt64) -> String {
        var divisor = 1.0
        for _ in 0..<max(0, decimals) { divisor *= 10 }
        return String(format: "%g", Double(raw) / divisor) + " " + symbol
    }

    static func known(_ address: EVMAddress) -> TempoToken? {
        [usdc, pathUSD].first { $0.address == address }
    }
}

/// Pays MPP `method="tempo"` charges with TIP-20 transfers in type-0x76 transactions signed by `wallet`.
///
/// ```swift
/// let wallet = try EVMSigner.fromEnvironment("TEMPO_PRIVATE_KEY")
/// var config = RouteweilerClient.Configuration(funding: [Funding.tempoUSDC(wallet: wallet)])
/// ```
public struct TempoFundingSource: FundingSource {
    /// The signing account.
    public let wallet: any TempoWallet
    public let chain: TempoChain
    public let token: TempoToken
    /// The JSON-RPC endpoint for the account nonce (`eth_getTransactionCount`); `nil` signs with nonce 0.
    public var rpcURL: String?
    /// How long the nonce lookup may take. Default 10 s.
    public var rpcTimeout: Duration
    /// Charges dearer than this (token base units) are refused before signing; `nil` means no limit.
    public var maxAmount: UInt64?
    /// Gas parameters of the transaction.
    public var maxFeePerGas: UInt64 = 20_000_000_000
    public var maxPriorityFeePerGas: UInt64 = 0
    public var gasLimit: UInt64 = 350_000
    /// How `v` is written in the sender signature: 27/28 as pytempo and pympp do (default), or 0/1.
    public var recoveryEncoding: TempoTransaction.RecoveryEncoding = .ethereum
    /// The HTTP client for the RPC (borrowed, never shut down). Default `HTTPClient.shared`.
    public var httpClient: HTTPClient

    public init(wallet: any TempoWallet, chain: TempoChain, token: TempoToken, rpcURL: String? = nil,
                rpcTimeout: Duration = .seconds(10), maxAmount: UInt64? = nil, httpClient: HTTPClient = .shared) {
        self.wallet = wallet
        self.chain = chain
        self.token = token
        self.rpcURL = rpcURL ?? chain.rpcURL
        self.rpcTimeout = rpcTimeout
        self.maxAmount = maxAmount
        self.httpClient = httpClient
    }

    public var rails: [any Rail] { [MPPTempoRail()] }
    /// `mpp-tempo:<network>:<symbol>`.
    public var label: String { "mpp-tempo:\(chain.network):\(token.symbol.lowercased())" }

    /// The account's next nonce from the chain (`eth_getTransactionCount(address, "pending")`).
    /// - Throws: ``MppChargeFailedError`` (`rpcUnavailable`, `rpcError`); nothing was paid.
    func nonce() async throws -> UInt64 {
        guard let rpcURL, !rpcURL.isEmpty else { return 0 }
        return try await TempoRPC(client: httpClient, url: rpcURL, timeout: rpcTimeout)
            .transactionCount(of: wallet.address)
    }
}

extension Funding {
    /// USDC on Tempo mainnet (chain 4217), nonce from `https://rpc.tempo.xyz`.
    public static func tempoUSDC(wallet: any TempoWallet, rpcURL: String? = nil, maxAmount: UInt64? = nil)
        -> TempoFundingSource
    {
        TempoFundingSource(wallet: wallet, chain: .mainnet, token: .usdc, rpcURL: rpcURL, maxAmount: maxAmount)
    }

    /// pathUSD on the Moderato testnet (chain 42431), nonce from `https://rpc.moderato.tempo.xyz`.
    public static func tempoModeratoPathUSD(wallet: any TempoWallet, rpcURL: String? = nil,
                                            maxAmount: UInt64? = nil) -> TempoFundingSource {
        TempoFundingSource(wallet: wallet, chain: .moderato, token: .pathUSD, rpcURL: rpcURL, maxAmount: maxAmount)
    }
}

/// The one JSON-RPC call the Tempo rail makes.
struct TempoRPC: Sendable {
    let client: HTTPClient
    let url: String
    let timeout: Duration

    func transactionCount(of address: EVMAddress) async throws -> UInt64 {
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionCount","params":[""#
            + address.lowercased + #"","pending"]}"#
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let bytes: [UInt8]
        let status: UInt
        do {
            let response = try await client.execute(request, timeout: .milliseconds(MPP.ms(timeout).int64))
            status = response.status.code
            bytes = Array(buffer: try await response.body.collect(upTo: 1 << 20))
        } catch {
            throw MppChargeFailedError(code: .rpcUnavailable,
                                       message: "Tempo RPC \(Self.origin(url)) unreachable: \(Self.describe(error))",
                                       rail: .mppTempo, cause: error)
        }
        guard status == 200 else {
            throw MppChargeFailedError(code: .rpcError, message: "Tempo RPC answered HTTP \(status)", rail: .mppTempo)
        }
        guard let json = try? JSONValue.parse(bytes) else {
            throw MppChargeFailedError(code: .rpcError, message: "Tempo RPC answered with invalid JSON", rail: .mppTempo)
        }
        if let error = json["error"] {
            throw MppChargeFailedError(
                code: .rpcError, message: "Tempo RPC error: \(error["message"]?.stringValue ?? "unknown")",
                rail: .mppTempo)
        }
        guard let hex = json["result"]?.stringValue, hex.hasPrefix("0x"), hex.count > 2, hex.count <= 18,
            let n = UInt64(hex.dropFirst(2), radix: 16)
        else {
            throw MppChargeFailedError(code: .rpcError, message: "Tempo RPC result is not a hex quantity",
                                       rail: .mppTempo)
        }
        return n
    }

    static func origin(_ url: String) -> String {
        guard let u = URL(string: url), let host = u.host else { return "<rpc>" }
        return "\(u.scheme ?? "http")://\(host)\(u.port.map { ":\($0)" } ?? "")"
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError { return "\(e)" }
        return String(describing: type(of: error))
    }
}

extension Int {
    var int64: Int64 { Int64(self) }
}
