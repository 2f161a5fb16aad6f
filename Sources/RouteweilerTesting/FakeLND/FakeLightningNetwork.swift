import Crypto
import Foundation
import LNDClient

/// An invoice known to a ``FakeLightningNetwork``.
public struct FakeInvoice: Sendable, Hashable {
    /// The BOLT-11 string; the fake nodes look invoices up by it (no decoding).
    public var paymentRequest: String
    /// The payment hash (32 bytes).
    public var paymentHash: [UInt8]
    /// The preimage (32 bytes) revealed when the invoice is paid.
    public var preimage: [UInt8]
    /// The amount, in millisatoshis.
    public var amountMsat: UInt64
    /// Expiry, in UNIX seconds.
    public var expiresAt: UInt64
    /// Whether the invoice was paid.
    public var settled: Bool
    /// When it was paid (UNIX seconds), if it was.
    public var settledAt: UInt64?
    /// The identity of the fake node that paid it, if any.
    public var settledBy: String?

    /// Creates an invoice record.
    public init(
        paymentRequest: String,
        paymentHash: [UInt8],
        preimage: [UInt8],
        amountMsat: UInt64,
        expiresAt: UInt64,
        settled: Bool = false,
        settledAt: UInt64? = nil,
        settledBy: String? = nil
    ) {
        self.paymentRequest = paymentRequest
        self.paymentHash = paymentHash
        self.preimage = preimage
        self.amountMsat = amountMsat
        self.expiresAt = expiresAt
        self.settled = settled
        self.settledAt = settledAt
        self.settledBy = settledBy
    }
}

/// A shared in-process "Lightning Network": the invoices that fake payees issue and
/// fake nodes (``FakeLND``) pay.
public actor FakeLightningNetwork {
    private var invoicesByHash: [[UInt8]: FakeInvoice] = [:]
    private var hashesByRequest: [String: [UInt8]] = [:]

    /// Creates an empty network.
    public init() {}

    /// Registers an invoice that can then be paid by its payment request string.
    public func addInvoice(
        paymentRequest: String,
        paymentHash: [UInt8],
        preimage: [UInt8],
        amountMsat: UInt64,
        expiresAt: UInt64
    ) {
        let invoice = FakeInvoice(
            paymentRequest: paymentRequest,
            paymentHash: paymentHash,
            preimage: preimage,
            amountMsat: amountMsat,
            expiresAt: expiresAt
        )
        self.invoicesByHash[paymentHash] = invoice
        self.hashesByRequest[paymentRequest] = paymentHash
    }

    /// Creates and registers an invoice with a random preimage. Its payment request is a
    /// placeholder string (`lnbcrt<amount>n1fake<hash hex>`), not a decodable BOLT-11 invoice;
    /// use ``addInvoice(paymentRequest:paymentHash:preimage:amountMsat:expiresAt:)`` with a
    /// real invoice when the code under test decodes it.
    public func makeInvoice(amountMsat: UInt64, expiresIn: TimeInterval = 3600) -> FakeInvoice {
        let preimage = (0..<32).map { _ in UInt8.random(in: .min ... .max) }
        let hash = Array(SHA256.hash(data: preimage))
        let paymentRequest = "lnbcrt\(amountMsat)n1fake\(HexEncoding.encode(hash))"
        let expiresAt = UInt64(max(0, Date().timeIntervalSince1970 + expiresIn))
        self.addInvoice(
            paymentRequest: paymentRequest,
            paymentHash: hash,
            preimage: preimage,
            amountMsat: amountMsat,
            expiresAt: expiresAt
        )
        return self.invoicesByHash[hash]!
    }

    /// The invoice with this payment hash.
    public func invoice(paymentHash: [UInt8]) -> FakeInvoice? {
        self.invoicesByHash[paymentHash]
    }

    /// The invoice with this payment request string.
    public func invoice(paymentRequest: String) -> FakeInvoice? {
        self.hashesByRequest[paymentRequest].flatMap { self.invoicesByHash[$0] }
    }

    /// Whether the invoice with this payment hash was paid.
    public func isSettled(paymentHash: [UInt8]) -> Bool {
        self.invoicesByHash[paymentHash]?.settled ?? false
    }

    /// All invoices.
    public var invoices: [FakeInvoice] {
        Array(self.invoicesByHash.values)
    }

    /// Marks an invoice paid by `payer`; returns `false` if it is unknown or already settled.
    @discardableResult
    func settle(paymentHash: [UInt8], by payer: String) -> Bool {
        guard var invoice = self.invoicesByHash[paymentHash], !invoice.settled else {
            return false
        }
        invoice.settled = true
        invoice.settledAt = UInt64(Date().timeIntervalSince1970)
        invoice.settledBy = payer
        self.invoicesByHash[paymentHash] = invoice
        return true
    }
}
