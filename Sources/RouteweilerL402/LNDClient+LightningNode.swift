public import LNDClient
import Routeweiler
public import RouteweilerWire

extension LNDClient: LightningNode {
    public func nodeInfo() async throws -> LightningNodeInfo {
        do {
            let info = try await getInfo()
            return LightningNodeInfo(pubkey: info.identityPubkey, network: LightningNetwork(rawValue: info.network))
        } catch let error as LNDError {
            throw Self.invoicePaymentError(error, paymentHash: nil)
        }
    }

    public func pay(invoice: Bolt11Invoice, maxFeeMsat: UInt64, timeout: Duration) async throws -> LightningPayment {
        let seconds = Int32(clamping: max(1, timeout.components.seconds))
        do {
            let outcome = try await sendPayment(paymentRequest: invoice.paymentRequest,
                                                feeLimitMsat: Int64(clamping: maxFeeMsat), timeoutSeconds: seconds,
                                                paymentHash: invoice.paymentHash)
            guard outcome.status == .succeeded, let preimage = outcome.preimage else {
                throw InvoicePaymentError(code: .outcomeUnknown,
                                          message: "LND returned no terminal status for the payment",
                                          mayHaveMovedFunds: true, paymentHash: invoice.paymentHash.hexString)
            }
            return LightningPayment(paymentHash: invoice.paymentHash, preimage: preimage,
                                    feeMsat: UInt64(max(0, outcome.feeMsat)))
        } catch let error as LNDError {
            throw Self.invoicePaymentError(error, paymentHash: invoice.paymentHash.hexString)
        }
    }

    public func paymentStatus(paymentHash: [UInt8]) async throws -> LightningPaymentStatus {
        do {
            let outcome = try await trackPayment(paymentHash: paymentHash)
            switch outcome.status {
            case .succeeded:
                guard let preimage = outcome.preimage else { return .inFlight }
                return .succeeded(LightningPayment(paymentHash: paymentHash, preimage: preimage,
                                                   feeMsat: UInt64(max(0, outcome.feeMsat))))
            case .failed: return .failed(reason: outcome.failureReason ?? "FAILURE_REASON_UNKNOWN")
            default: return .inFlight
            }
        } catch let error as LNDError where error.code == .paymentFailed {
            return .failed(reason: error.failureReason ?? "FAILURE_REASON_UNKNOWN")
        } catch let error as LNDError where error.code == .paymentNotFound {
            return .notFound
        } catch let error as LNDError {
            throw Self.invoicePaymentError(error, paymentHash: paymentHash.hexString)
        }
    }

    static func invoicePaymentError(_ error: LNDError, paymentHash: String?) -> InvoicePaymentError {
        let code: InvoicePaymentError.Code
        switch error.code {
        case .paymentFailed: code = .paymentFailed
        case .unreachable: code = .nodeUnreachable
        case .macaroonRejected: code = .macaroonRejected
        case .certificateRejected: code = .certificateMismatch
        case .paymentStatusUnknown: code = .outcomeUnknown
        case .timeout: code = .timeout
        default: code = .rejected
        }
        let message: String
        if error.code == .paymentFailed {
            message = "LND payment failed: \(error.failureReason ?? "unknown reason")"
        } else {
            message = error.message
        }
        return InvoicePaymentError(code: code, message: message, failureReason: error.failureReason,
                                   mayHaveMovedFunds: error.paymentMayHaveBeenSent, paymentHash: paymentHash)
    }
}
