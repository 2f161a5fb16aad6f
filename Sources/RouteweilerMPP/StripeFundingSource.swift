public import AsyncHTTPClient
import Foundation
import NIOCore
public import Routeweiler
import RouteweilerWire

/// Pays MPP `method="stripe"` (and `"card"`) charges by minting a Stripe shared payment token (SPT) for the
/// customer's payment method, limited to the challenge's amount, currency and expiry.
///
/// The API key is held in a ``Redacted`` value: it appears in no description, log, trace or error.
///
/// ```swift
/// let stripe = Funding.stripe(apiKey: key, customer: "cus_123", paymentMethod: "pm_card_visa")
/// ```
public struct StripeFundingSource: FundingSource, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The secret key (`sk_…` or a restricted `rk_…`).
    public let apiKey: Redacted<String>
    /// The Stripe customer the payment method belongs to, if any (sent as `customer`).
    public var customer: String?
    /// The payment method to share (`pm_…`).
    public var paymentMethod: String
    /// The ISO 4217 currency the source pays in, lower-case.
    public var currency: String
    /// Stripe's API origin. Default `https://api.stripe.com`; tests point it at a local fake.
    public var apiBaseURL: String
    /// The `Stripe-Version` sent with every request; it must know `shared_payment/issued_tokens`.
    public var stripeVersion: String
    /// Charges dearer than this (minor units) are refused before minting a token; `nil` means no limit.
    public var maxAmount: UInt64?
    /// How long one Stripe call may take. Default 30 s.
    public var timeout: Duration
    /// The HTTP client (borrowed, never shut down). Default `HTTPClient.shared`.
    public var httpClient: HTTPClient

    /// The API version this library was written against (the first to document `shared_payment/issued_tokens`).
    public static let defaultStripeVersion = "2026-04-22.dahlia"

    public init(apiKey: String, customer: String?, paymentMethod: String, currency: String = "usd",
                apiBaseURL: String = "https://api.stripe.com", stripeVersion: String = StripeFundingSource.defaultStripeVersion,
                maxAmount: UInt64? = nil, timeout: Duration = .seconds(30), httpClient: HTTPClient = .shared) {
        self.apiKey = Redacted(apiKey)
        self.customer = customer
        self.paymentMethod = paymentMethod
        self.currency = currency.lowercased()
        self.apiBaseURL = apiBaseURL
        self.stripeVersion = stripeVersion
        self.maxAmount = maxAmount
        self.timeout = timeout
        self.httpClient = httpClient
    }

    public var rails: [any Rail] { [MPPSPTRail()] }
    /// `stripe:<currency>:<payment method>`.
    public var label: String { "stripe:\(currency):\(paymentMethod)" }
    public var description: String { "StripeFundingSource(\(label), apiKey: <redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["label": label, "apiKey": "<redacted>"], displayStyle: .struct)
    }

    /// Mints a shared payment token with `POST /v1/shared_payment/issued_tokens`.
    /// - Returns: the token id (`spt_…`).
    /// - Throws: ``SptCreationError`` carrying Stripe's error code; nothing was paid.
    public func createSharedPaymentToken(maxAmount: UInt64, currency: String, expiresAt: UInt64,
                                         sellerDetails: [(String, String)]) async throws -> String {
        var form: [(String, String)] = []
        if let customer, !customer.isEmpty { form.append(("customer", customer)) }
        form.append(("payment_method", paymentMethod))
        form.append(("usage_limits[currency]", currency))
        form.append(("usage_limits[max_amount]", String(maxAmount)))
        form.append(("usage_limits[expires_at]", String(expiresAt)))
        for (k, v) in sellerDetails { form.append(("seller_details[\(k)]", v)) }
        let body = form.map { Self.formEncode($0.0) + "=" + Self.formEncode($0.1) }.joined(separator: "&")

        var base = apiBaseURL
        while base.hasSuffix("/") { base.removeLast() }
        var request = HTTPClientRequest(url: base + "/v1/shared_payment/issued_tokens")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer " + apiKey.value)
        request.headers.add(name: "Stripe-Version", value: stripeVersion)
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "User-Agent", value: "routeweiler-swift")
        request.body = .bytes(ByteBuffer(string: body))
        let status: Int
        let bytes: [UInt8]
        do {
            let response = try await httpClient.execute(request, timeout: .milliseconds(MPP.ms(timeout).int64))
            status = Int(response.status.code)
            bytes = Array(buffer: try await response.body.collect(upTo: 1 << 20))
        } catch {
            throw SptCreationError(code: nil, type: nil, httpStatus: nil,
                                   message: scrub("Stripe unreachable: \(TempoRPC.describe(error))"))
        }
        let json = try? JSONValue.parse(bytes)
        guard (200..<300).contains(status) else {
            let e = json?["error"]
            let message = e?["message"]?.stringValue ?? "HTTP \(status)"
            throw SptCreationError(code: e?["code"]?.stringValue, type: e?["type"]?.stringValue,
                                   declineCode: e?["decline_code"]?.stringValue, httpStatus: status,
                                   message: scrub("Stripe refused the shared payment token (HTTP \(status)): \(message)"))
        }
        guard let id = json?["id"]?.stringValue, !id.isEmpty else {
            throw SptCreationError(code: nil, type: nil, httpStatus: status,
                                   message: "Stripe's answer has no token id")
        }
        return id
    }

    /// Removes the API key from text that may quote it (some errors echo the key).
    func scrub(_ text: String) -> String {
        guard !apiKey.value.isEmpty else { return text }
        return text.replacingOccurrences(of: apiKey.value, with: "<redacted>")
    }

    static func formEncode(_ s: String) -> String {
        let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~[]")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }
}

extension Funding {
    /// A Stripe customer's payment method, shared per charge as a shared payment token.
    public static func stripe(apiKey: String, customer: String?, paymentMethod: String, currency: String = "usd",
                              apiBaseURL: String = "https://api.stripe.com") -> StripeFundingSource {
        StripeFundingSource(apiKey: apiKey, customer: customer, paymentMethod: paymentMethod, currency: currency,
                            apiBaseURL: apiBaseURL)
    }
}
