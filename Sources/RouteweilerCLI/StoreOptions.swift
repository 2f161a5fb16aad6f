import Foundation
import Routeweiler

enum StoreOptions {
    /// Parses `usd=60000` into a currency and a price.
    static func parsePrice(_ text: String) -> (Currency, Decimal)? {
        let parts = text.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, let currency = try? Currency(envelopeCode: String(parts[0]).lowercased()),
            let price = Decimal(string: String(parts[1])), price > 0
        else { return nil }
        return (currency, price)
    }
}
