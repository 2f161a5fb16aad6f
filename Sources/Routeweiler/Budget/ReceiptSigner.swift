import Crypto
import Foundation

/// An envelope's Ed25519 signing key (SPEC §10.5): it signs the receipts of that envelope's draws.
///
/// The key file holds the raw 32-byte seed (CryptoKit `rawRepresentation` compatible); the public key travels as
/// base64 of its raw 32 bytes.
public struct EnvelopeSigningKey: Sendable {
    let key: Curve25519.Signing.PrivateKey
    /// Base64 of the raw 32-byte public key (`counterPublicKey`); made once (every reservation compares it).
    public let publicKeyBase64: String

    /// A fresh random key.
    public static func generate() -> EnvelopeSigningKey { EnvelopeSigningKey(key: .init()) }

    /// A key from its raw 32-byte seed.
    /// - Throws: ``KeystoreCorruptError`` when `seed` is not 32 bytes.
    public init(seed: [UInt8]) throws {
        guard seed.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            throw KeystoreCorruptError("an Ed25519 seed is 32 bytes, got \(seed.count)")
        }
        self.key = key
        self.publicKeyBase64 = key.publicKey.rawRepresentation.base64EncodedString()
    }

    init(key: Curve25519.Signing.PrivateKey) {
        self.key = key
        self.publicKeyBase64 = key.publicKey.rawRepresentation.base64EncodedString()
    }

    /// The raw 32-byte seed (what the key file holds).
    public var seed: [UInt8] { Array(key.rawRepresentation) }


    /// Base64 of the 64-byte Ed25519 signature over the receipt's ``DrawReceipt/signedBytes``.
    ///
    /// Ed25519 may be randomised on some platforms (CryptoKit), so callers that need byte-identical replays store
    /// the signature instead of signing again (SPEC §17).
    public func signature(for receipt: DrawReceipt) throws -> String {
        try key.signature(for: receipt.signedBytes).base64EncodedString()
    }
}

extension DrawReceipt {
    /// The bytes the signature covers (SPEC §10.5): compact JSON, keys sorted, snake_case, exactly
    /// `amount_reserved_currency, amount_reserved_minor_units, envelope_id, expires_at, idempotency_key, issued_at,
    /// rail_quoted, receipt_id, request_id`; datetimes RFC 3339 with `Z` and a 6-digit fraction only when non-zero;
    /// non-ASCII written as `\uXXXX`. `signature` and `counter_public_key` are not covered.
    public var signedBytes: [UInt8] { Array(canonicalJSON.utf8) }

    /// The canonical text behind ``signedBytes``.
    public var canonicalJSON: String {
        PolicyValue.object([
            "amount_reserved_currency": .string(amountReservedCurrency.code),
            "amount_reserved_minor_units": .integer(amountReservedMinorUnits),
            "envelope_id": .string(envelopeId),
            "expires_at": .string(Timestamp.rfc3339Z(expiresAt)),
            "idempotency_key": .string(idempotencyKey),
            "issued_at": .string(Timestamp.rfc3339Z(issuedAt)),
            "rail_quoted": .string(railQuoted.rawValue),
            "receipt_id": .string(receiptId),
            "request_id": .string(requestId),
        ]).canonicalJSON
    }

    /// Checks ``signature`` over ``signedBytes`` with `publicKeyBase64`, and that the receipt names that key.
    ///
    /// Pass the key stored with the envelope, not the receipt's own ``counterPublicKey``: a receipt re-signed with
    /// another key then fails (key-swap defence).
    /// - Throws: ``ReceiptVerificationError`` saying what did not match.
    public func verifySignature(publicKeyBase64: String) throws(ReceiptVerificationError) {
        guard counterPublicKey == publicKeyBase64 else {
            throw ReceiptVerificationError(
                "receipt \(receiptId) names signing key \(counterPublicKey), but envelope '\(envelopeId)' signs with \(publicKeyBase64)")
        }
        guard let keyBytes = Data(base64Encoded: publicKeyBase64), keyBytes.count == 32,
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: keyBytes)
        else {
            throw ReceiptVerificationError("envelope '\(envelopeId)' has no valid Ed25519 public key ('\(publicKeyBase64)')")
        }
        guard let sig = Data(base64Encoded: signature), sig.count == 64 else {
            throw ReceiptVerificationError("receipt \(receiptId): the signature is not 64 base64-encoded bytes")
        }
        guard key.isValidSignature(sig, for: signedBytes) else {
            throw ReceiptVerificationError(
                "receipt \(receiptId): the signature does not match its contents (altered receipt, or signed by another key)")
        }
    }
}
