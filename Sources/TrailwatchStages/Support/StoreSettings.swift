import TrailwatchConfig
import TrailwatchStore

/// Settings naming a store by SQLite path or PostgreSQL URL, the same wherever a stage names one.
enum StoreSettings {
    /// A store a component must name (`store: var/store.db`).
    static func location<C: SettingsSection>(_ key: String, _ keyPath: WritableKeyPath<C, StoreLocation> & Sendable, _ doc: String) -> Setting<C> {
        .custom(key, type: "string", doc, required: true, storedAt: keyPath) { config, c, key in
            config[keyPath: keyPath] = StoreLocation(try c.decode(String.self, forKey: key))
        }
    }

    /// A store a component may name.
    static func location<C: SettingsSection>(_ key: String, _ keyPath: WritableKeyPath<C, StoreLocation?> & Sendable, _ doc: String) -> Setting<C> {
        .custom(key, type: "string", doc, storedAt: keyPath) { config, c, key in
            if let text = try c.decodeIfPresent(String.self, forKey: key) { config[keyPath: keyPath] = StoreLocation(text) }
        }
    }

    /// `shared_store`: a fleet's PostgreSQL store, where one instance at a time holds a detector's lease.
    static func sharedStore<C: SettingsSection>(_ keyPath: WritableKeyPath<C, StoreLocation?> & Sendable, _ doc: String) -> Setting<C> {
        .custom("shared_store", type: "string", doc, storedAt: keyPath) { config, c, key in
            guard let text = try c.decodeIfPresent(String.self, forKey: key) else { return }
            let location = StoreLocation(text)
            guard case .postgres = location else {
                throw SettingError(codingPath: c.codingPath + [key], message: "'\(location)' is not a PostgreSQL URL",
                                   expected: "postgres://USER@HOST:PORT/DATABASE (the store the fleet's store sinks write to)")
            }
            config[keyPath: keyPath] = location
        }
    }
}
