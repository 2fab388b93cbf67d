/// A stage that cannot start or continue, with a message for people.
struct StageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
