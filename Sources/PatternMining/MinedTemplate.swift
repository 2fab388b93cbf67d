/// The result of feeding one message to a ``TemplateMiner``.
public struct MinedTemplate: Sendable, Equatable {
    /// Stable identifier of the template (see ``TemplateMiner`` for how it is derived).
    public let templateID: UInt64
    /// The template text: the message's tokens joined by single spaces, variables replaced by `<*>`.
    public let template: String
    /// Byte ranges, in the message passed to ``TemplateMiner/add(_:)``, of the values the `<*>` stand for,
    /// in template order.
    public let parameterRanges: [Range<Int>]
    /// `true` when this message created the template.
    public let isNew: Bool
    /// `true` when this message generalised an existing template (the text changed, the id did not).
    public let generalized: Bool

    public init(templateID: UInt64, template: String, parameterRanges: [Range<Int>], isNew: Bool,
                generalized: Bool) {
        self.templateID = templateID
        self.template = template
        self.parameterRanges = parameterRanges
        self.isNew = isNew
        self.generalized = generalized
    }

    /// The identifier as 16 lower-case hexadecimal digits, the form used in events and files.
    public var templateIDString: String { TemplateMiner.idString(templateID) }

    /// The parameter values, decoded as UTF-8 from the message the template was mined from.
    public func parameters(in message: UnsafeRawBufferPointer) -> [String] {
        parameterRanges.map { range in
            String(decoding: UnsafeRawBufferPointer(rebasing: message[range]), as: UTF8.self)
        }
    }

    /// The parameter values of a message given as a `String`.
    public func parameters(in message: String) -> [String] {
        let bytes = Array(message.utf8)
        return bytes.withUnsafeBytes { parameters(in: $0) }
    }
}
