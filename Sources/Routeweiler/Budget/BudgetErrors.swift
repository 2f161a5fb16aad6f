/// The reservation would exceed the envelope's cap. Nothing was reserved or paid.
public struct BudgetExceededError: RouteweilerError {
    public var errorName: String { "BudgetExceededError" }
    public var envelopeID: String
    public var requestedMinorUnits: Int64
    public var availableMinorUnits: Int64
    public var message: String {
        "Envelope '\(envelopeID)': requested \(requestedMinorUnits) minor units but only \(availableMinorUnits) available."
    }
    public init(envelopeID: String, requestedMinorUnits: Int64, availableMinorUnits: Int64) {
        self.envelopeID = envelopeID
        self.requestedMinorUnits = requestedMinorUnits
        self.availableMinorUnits = availableMinorUnits
    }
}

/// No envelope with this id exists.
public struct EnvelopeNotFoundError: RouteweilerError {
    public var errorName: String { "EnvelopeNotFoundError" }
    public var envelopeID: String
    public var message: String { "envelope '\(envelopeID)' does not exist" }
    public init(envelopeID: String) { self.envelopeID = envelopeID }
}

/// An envelope with this id already exists.
public struct EnvelopeExistsError: RouteweilerError {
    public var errorName: String { "EnvelopeExistsError" }
    public var envelopeID: String
    public var message: String { "envelope '\(envelopeID)' already exists" }
    public init(envelopeID: String) { self.envelopeID = envelopeID }
}

/// The envelope is frozen or revoked.
public struct EnvelopeFrozenError: RouteweilerError {
    public var errorName: String { "EnvelopeFrozenError" }
    public var envelopeID: String
    public var status: EnvelopeStatus
    public var message: String { "envelope '\(envelopeID)' is \(status)" }
    public init(envelopeID: String, status: EnvelopeStatus) {
        self.envelopeID = envelopeID
        self.status = status
    }
}

/// The envelope's lifetime has passed.
public struct EnvelopeExpiredError: RouteweilerError {
    public var errorName: String { "EnvelopeExpiredError" }
    public var envelopeID: String
    public var message: String { "envelope '\(envelopeID)' has expired" }
    public init(envelopeID: String) { self.envelopeID = envelopeID }
}

/// The rail is not among the envelope's allowed rails. Nothing was reserved or paid.
public struct RailNotAllowedError: RouteweilerError {
    public var errorName: String { "RailNotAllowedError" }
    public var envelopeID: String
    public var rail: RailID
    public var message: String { "envelope '\(envelopeID)' does not allow the \(rail) rail" }
    public init(envelopeID: String, rail: RailID) {
        self.envelopeID = envelopeID
        self.rail = rail
    }
}

/// A draw receipt failed verification (altered, or signed by another key).
public struct ReceiptVerificationError: RouteweilerError {
    public var errorName: String { "ReceiptVerificationError" }
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// The envelope's signing key file is missing.
public struct KeystoreNotFoundError: RouteweilerError {
    public var errorName: String { "KeystoreNotFoundError" }
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// A signing key for this envelope already exists.
public struct KeystoreAlreadyExistsError: RouteweilerError {
    public var errorName: String { "KeystoreAlreadyExistsError" }
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// Another process holds the database lock longer than the busy timeout.
public struct StoreBusyError: RouteweilerError {
    public var errorName: String { "StoreBusyError" }
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// An envelope's key file exists but does not hold a 32-byte Ed25519 seed.
public struct KeystoreCorruptError: RouteweilerError {
    public var errorName: String { "KeystoreCorruptError" }
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// No draw with this id exists (settle or release of an unknown reservation).
public struct DrawNotFoundError: RouteweilerError {
    public var errorName: String { "DrawNotFoundError" }
    public var drawID: String
    public var message: String { "draw '\(drawID)' does not exist" }
    public init(drawID: String) { self.drawID = drawID }
}

/// The envelope's `allowedOriginsGlob` does not cover this origin. Nothing was reserved or paid.
public struct OriginNotAllowedError: RouteweilerError {
    public var errorName: String { "OriginNotAllowedError" }
    public var envelopeID: String
    public var origin: String
    public var message: String { "envelope '\(envelopeID)' may not pay \(origin)" }
    public init(envelopeID: String, origin: String) {
        self.envelopeID = envelopeID
        self.origin = origin
    }
}
