public import HTTPTypes
public import RouteweilerWire

extension AcceptPayment {
    /// The `Accept-Payment` header field name.
    public static let fieldName = HTTPField.Name("Accept-Payment")!

    /// Header fields to pass with a request (`rw.get(url, headers: prefs.headerFields)`); empty when there are no
    /// preferences, so nothing is sent unless the caller configures some.
    public var headerFields: HTTPFields {
        var fields = HTTPFields()
        if !entries.isEmpty { fields[Self.fieldName] = headerValue }
        return fields
    }
}
