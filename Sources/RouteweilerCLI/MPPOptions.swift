import ArgumentParser
import Foundation
import Routeweiler
import RouteweilerMPP
import RouteweilerWire

/// Flags for paying MPP charges: Tempo from a local key, Stripe shared payment tokens from an API key.
struct MPPOptions: ParsableArguments {
    @Option(name: .customLong("tempo-key-file"),
            help: "File holding a hex secp256k1 key for Tempo, mode 0600 (or set ROUTEWEILER_TEMPO_KEY).")
    var tempoKeyFile: String?

    @Option(name: .customLong("tempo-network"), help: "tempo (USDC) or tempo-moderato (pathUSD testnet).")
    var tempoNetwork: String = "tempo"

    @Option(name: .customLong("tempo-rpc"), help: "Tempo JSON-RPC URL for the account nonce (default: the network's).")
    var tempoRPC: String?

    @Option(name: .customLong("stripe-key-file"),
            help: "File holding a Stripe secret key, mode 0600 (or set STRIPE_API_KEY).")
    var stripeKeyFile: String?

    @Option(name: .customLong("stripe-customer"), help: "Stripe customer id (cus_…).")
    var stripeCustomer: String?

    @Option(name: .customLong("stripe-payment-method"), help: "Stripe payment method id (pm_…); enables mpp-spt.")
    var stripePaymentMethod: String?

    @Option(name: .customLong("stripe-currency"), help: "Currency of the Stripe payment method (default usd).")
    var stripeCurrency: String = "usd"

    @Option(name: .customLong("stripe-api-base"), help: .hidden)
    var stripeAPIBase: String = "https://api.stripe.com"

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    func validate() throws {
        guard ["tempo", "tempo-moderato"].contains(tempoNetwork) else {
            throw ValidationError("unknown --tempo-network '\(tempoNetwork)'; use tempo or tempo-moderato")
        }
    }

    /// The configured MPP funding sources (none without keys). Keys are never printed.
    func fundingSources() throws -> [any FundingSource] {
        var sources: [any FundingSource] = []
        let signer: EVMSigner?
        do {
            if let tempoKeyFile {
                signer = try EVMSigner.fromFile(path: tempoKeyFile)
            } else if !(environment["ROUTEWEILER_TEMPO_KEY"] ?? "").isEmpty {
                signer = try EVMSigner.fromEnvironment("ROUTEWEILER_TEMPO_KEY")
            } else {
                signer = nil
            }
        } catch {
            throw ValidationError("cannot load the Tempo key: \(error)")
        }
        if let signer {
            sources.append(tempoNetwork == "tempo-moderato"
                ? Funding.tempoModeratoPathUSD(wallet: signer, rpcURL: tempoRPC)
                : Funding.tempoUSDC(wallet: signer, rpcURL: tempoRPC))
        }
        if let paymentMethod = stripePaymentMethod {
            var key = environment["STRIPE_API_KEY"]
            if let stripeKeyFile {
                guard let attributes = try? FileManager.default.attributesOfItem(atPath: stripeKeyFile),
                    let mode = attributes[.posixPermissions] as? Int
                else { throw ValidationError("cannot read the Stripe key file \(stripeKeyFile)") }
                guard mode & 0o077 == 0 else {
                    throw ValidationError("the Stripe key file \(stripeKeyFile) is readable by others (mode \(String(mode, radix: 8))); chmod 600 it")
                }
                key = try String(contentsOfFile: stripeKeyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard let key, !key.isEmpty else {
                throw ValidationError("--stripe-payment-method needs a key: --stripe-key-file PATH or STRIPE_API_KEY")
            }
            sources.append(Funding.stripe(apiKey: key, customer: stripeCustomer, paymentMethod: paymentMethod,
                                          currency: stripeCurrency, apiBaseURL: stripeAPIBase))
        }
        return sources
    }
}
