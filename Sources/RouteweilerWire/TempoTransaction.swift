/// A Tempo transaction (EIP-2718 type `0x76`), as encoded and signed by the official `pytempo` package.
///
/// ```
/// raw = 0x76 ‖ RLP([chain_id, max_priority_fee_per_gas, max_fee_per_gas, gas_limit,
///                  calls = [[to, value, input], …], access_list = [], nonce_key, nonce,
///                  valid_before, valid_after, fee_token, fee_payer_signature = "", aa_authorization_list = [],
///                  sender_signature (65 bytes r ‖ s ‖ v)])
/// signing digest = keccak256(0x76 ‖ RLP(the first 13 fields))
/// ```
///
/// Sponsored (fee-payer) transactions are not built here. An absent `valid_before`/`valid_after`/`fee_token`
/// encodes as the empty string.
public struct TempoTransaction: Sendable, Hashable {
    /// One call of the batch.
    public struct Call: Sendable, Hashable {
        public var to: EVMAddress
        public var value: UInt64
        public var input: [UInt8]
        public init(to: EVMAddress, value: UInt64 = 0, input: [UInt8]) {
            self.to = to
            self.value = value
            self.input = input
        }
    }

    /// How the recovery id is written in the last signature byte.
    public enum RecoveryEncoding: Sendable, Hashable {
        /// 27/28, as `pytempo`'s `TempoTransaction.sign` (via eth-account) writes it.
        case ethereum
        /// 0/1 (the parity bit).
        case parity
    }

    public static let type: UInt8 = 0x76

    public var chainID: UInt64
    public var maxPriorityFeePerGas: UInt64
    public var maxFeePerGas: UInt64
    public var gasLimit: UInt64
    public var calls: [Call]
    /// The 2-D nonce key as a 256-bit big-endian integer (0 for the sequential nonce).
    public var nonceKey: [UInt8]
    public var nonce: UInt64
    public var validBefore: UInt64?
    public var validAfter: UInt64?
    /// The TIP-20 token that pays the fee; `nil` lets the chain pick.
    public var feeToken: EVMAddress?

    public init(chainID: UInt64, maxPriorityFeePerGas: UInt64 = 0, maxFeePerGas: UInt64, gasLimit: UInt64,
                calls: [Call], nonceKey: [UInt8] = [], nonce: UInt64, validBefore: UInt64?, validAfter: UInt64?,
                feeToken: EVMAddress?) {
        self.chainID = chainID
        self.maxPriorityFeePerGas = maxPriorityFeePerGas
        self.maxFeePerGas = maxFeePerGas
        self.gasLimit = gasLimit
        self.calls = calls
        self.nonceKey = nonceKey
        self.nonce = nonce
        self.validBefore = validBefore
        self.validAfter = validAfter
        self.feeToken = feeToken
    }

    /// TIP-20 (ERC-20) `transfer(address,uint256)` calldata.
    public static func transferCalldata(to recipient: EVMAddress, amount: UInt64) -> [UInt8] {
        var amountWord = [UInt8](repeating: 0, count: 32)
        var a = amount
        for k in 0..<8 {
            amountWord[31 - k] = UInt8(a & 0xFF)
            a >>= 8
        }
        return [0xA9, 0x05, 0x9C, 0xBB] + [UInt8](repeating: 0, count: 12) + recipient.bytes + amountWord
    }

    /// A single TIP-20 transfer of `amount` base units of `token` to `recipient`.
    public static func transfer(chainID: UInt64, token: EVMAddress, recipient: EVMAddress, amount: UInt64,
                                nonce: UInt64, validBefore: UInt64?, validAfter: UInt64? = 0,
                                feeToken: EVMAddress?, maxPriorityFeePerGas: UInt64 = 0,
                                maxFeePerGas: UInt64 = 20_000_000_000, gasLimit: UInt64 = 350_000)
        -> TempoTransaction
    {
        TempoTransaction(chainID: chainID, maxPriorityFeePerGas: maxPriorityFeePerGas, maxFeePerGas: maxFeePerGas,
                         gasLimit: gasLimit,
                         calls: [Call(to: token, input: transferCalldata(to: recipient, amount: amount))],
                         nonce: nonce, validBefore: validBefore, validAfter: validAfter, feeToken: feeToken)
    }

    var bodyFields: [RLP] {
        [
            .uint(chainID), .uint(maxPriorityFeePerGas), .uint(maxFeePerGas), .uint(gasLimit),
            .list(calls.map { .list([.bytes($0.to.bytes), .uint($0.value), .bytes($0.input)]) }),
            .list([]),
            .uint(bigEndian: nonceKey), .uint(nonce),
            validBefore.map { RLP.uint($0) } ?? RLP.bytes([]),
            validAfter.map { RLP.uint($0) } ?? RLP.bytes([]),
            .bytes(feeToken?.bytes ?? []),
        ]
    }

    /// The bytes the sender signs: `0x76 ‖ RLP(13 fields)` with an empty fee-payer slot.
    public var signingPayload: [UInt8] {
        [Self.type] + RLP.list(bodyFields + [.bytes([]), .list([])]).encoded
    }

    /// `keccak256(signingPayload)`.
    public var signingHash: [UInt8] { Keccak256.hash(signingPayload) }

    /// The signed transaction: `0x76 ‖ RLP(13 fields ‖ sender signature)`.
    /// - Parameter signature: 65 bytes `r ‖ s ‖ v`.
    public func encoded(signature: [UInt8]) -> [UInt8] {
        [Self.type] + RLP.list(bodyFields + [.bytes([]), .list([]), .bytes(signature)]).encoded
    }

    /// Signs with `signer` and returns the raw signed transaction.
    public func signed(by signer: EVMSigner, recovery: RecoveryEncoding = .ethereum) throws(Secp256k1Error)
        -> [UInt8]
    {
        var sig = try signer.signDigest(signingHash)  // v ∈ {27, 28}
        if recovery == .parity { sig[64] -= 27 }
        return encoded(signature: sig)
    }

    /// Why a raw transaction could not be read.
    public struct DecodingError: Error, Sendable, Hashable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Decodes a sender-signed `0x76` transaction (servers and tests) and returns it with its 65-byte signature.
    public static func decode(_ raw: [UInt8]) throws(DecodingError) -> (transaction: TempoTransaction, signature: [UInt8]) {
        guard raw.first == type else { throw DecodingError(message: "not a type-0x76 transaction") }
        let item: RLP
        do {
            item = try RLP.decode(Array(raw.dropFirst()))
        } catch {
            throw DecodingError(message: "bad RLP: \(error.message)")
        }
        guard let f = item.items, f.count == 14 else { throw DecodingError(message: "expected 14 fields") }
        func uint(_ r: RLP) throws(DecodingError) -> UInt64 {
            guard let b = r.byteString, b.count <= 8, b.first != 0 else { throw DecodingError(message: "bad integer") }
            return b.reduce(0) { $0 << 8 | UInt64($1) }
        }
        func optUint(_ r: RLP) throws(DecodingError) -> UInt64? {
            if r.byteString == [] { return nil }
            return try uint(r)
        }
        func address(_ b: [UInt8]?) throws(DecodingError) -> EVMAddress {
            guard let b, let a = try? EVMAddress(bytes: b) else { throw DecodingError(message: "bad address") }
            return a
        }
        guard let callItems = f[4].items else { throw DecodingError(message: "bad calls") }
        var calls: [Call] = []
        for c in callItems {
            guard let parts = c.items, parts.count == 3, let input = parts[2].byteString else {
                throw DecodingError(message: "bad call")
            }
            calls.append(Call(to: try address(parts[0].byteString), value: try uint(parts[1]), input: input))
        }
        guard let nonceKey = f[6].byteString, nonceKey.count <= 32 else { throw DecodingError(message: "bad nonce key") }
        let feeTokenBytes = f[10].byteString ?? []
        let feeToken: EVMAddress? = feeTokenBytes.isEmpty ? nil : try address(feeTokenBytes)
        guard let signature = f[13].byteString, signature.count == 65 else {
            throw DecodingError(message: "bad sender signature")
        }
        let tx = TempoTransaction(
            chainID: try uint(f[0]), maxPriorityFeePerGas: try uint(f[1]), maxFeePerGas: try uint(f[2]),
            gasLimit: try uint(f[3]), calls: calls, nonceKey: nonceKey, nonce: try uint(f[7]),
            validBefore: try optUint(f[8]), validAfter: try optUint(f[9]),
            feeToken: feeToken)
        return (tx, signature)
    }

    /// The sender of a signed transaction (accepts `v` as 0/1 or 27/28).
    public static func recoverSender(of tx: TempoTransaction, signature: [UInt8]) throws(EVMSignatureError)
        -> EVMAddress
    {
        var sig = signature
        if sig.count == 65, sig[64] < 27 { sig[64] += 27 }
        return try EVMAddress.recover(digest32: tx.signingHash, signature65: sig)
    }

    /// The TIP-20 transfer in `input`, if it is one: `(recipient, amount)` (amounts above 64 bits are refused).
    public static func decodeTransfer(_ input: [UInt8]) -> (recipient: EVMAddress, amount: UInt64)? {
        guard input.count == 68, input.prefix(4) == [0xA9, 0x05, 0x9C, 0xBB],
            input[4..<16].allSatisfy({ $0 == 0 }), input[36..<60].allSatisfy({ $0 == 0 }),
            let to = try? EVMAddress(bytes: Array(input[16..<36]))
        else { return nil }
        return (to, input[60..<68].reduce(0) { $0 << 8 | UInt64($1) })
    }
}
