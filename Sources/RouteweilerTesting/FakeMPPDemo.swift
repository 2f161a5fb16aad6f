import Foundation

/// Everything an offline MPP demo needs, on real sockets: a ``FakeMPPPaywall`` offering Tempo, Stripe and Lightning
/// charges, the ``FakeStripe`` that mints its shared payment tokens and the ``FakeTempoRPC`` that serves nonces.
/// Lightning charges are registered on `network`, so a ``FakeLND`` on the same network pays them.
///
/// ```swift
/// try await FakeMPPDemo.run(network: network) { demo in
///     let tempo = Funding.tempoModeratoPathUSD(wallet: try EVMSigner(hexKey: FakeMPPDemo.tempoTestKey),
///                                              rpcURL: demo.tempo.url)
///     let stripe = Funding.stripe(apiKey: demo.stripe.apiKey, customer: "cus_demo",
///                                 paymentMethod: "pm_card_visa", apiBaseURL: demo.stripe.baseURL)
///     let response = try await rw.get(demo.paywall.url("/protected"))
/// }
/// ```
public struct FakeMPPDemo: Sendable {
    public let paywall: FakeMPPPaywall
    public let stripe: FakeStripe
    public let tempo: FakeTempoRPC

    /// A publicly known secp256k1 test key for the demo's Tempo wallet (never use it with real funds).
    public static let tempoTestKey = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"

    /// Starts the three servers, runs `body`, and stops them.
    public static func run<R: Sendable>(
        network: FakeLightningNetwork = FakeLightningNetwork(),
        configuration: FakeMPPPaywall.Configuration = .init(), _ body: (FakeMPPDemo) async throws -> R
    ) async throws -> R {
        try await FakeStripe.withStripe { stripe in
            try await FakeTempoRPC.withRPC(chainID: configuration.tempoChainID) { tempo in
                try await FakeMPPPaywall.withPaywall(network: network, configuration: configuration, stripe: stripe,
                                                     tempo: tempo) { paywall in
                    try await body(FakeMPPDemo(paywall: paywall, stripe: stripe, tempo: tempo))
                }
            }
        }
    }
}
