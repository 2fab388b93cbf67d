import Foundation
import Logging
import PostgresNIO
import TrailwatchStore

/// Leases on PostgreSQL session advisory locks: held by this instance's own connection, so they
/// end the moment its process dies (the server sees the connection close and releases them) —
/// another instance's next `hold` then takes over. A lost connection drops every lease held here.
public final class PostgresLeases: LeaseHolding {
    let url: String
    var store: PostgresStore?
    var held = Set<String>()

    public init(url: String) {
        self.url = url
    }

    /// The advisory lock key of a lease (a stable hash of its name).
    static func key(_ name: String) -> Int64 {
        var text = "trailwatch-lease\u{0}" + name
        return text.withUTF8 { StoreConventions.key([UnsafeRawBufferPointer($0)], []) }
    }

    public func hold(_ name: String) async throws(StoreError) -> Bool {
        do {
            let store = try await connected()
            if held.contains(name) {
                // Still ours while the session lives; a cheap round trip proves it does.
                try await store.run("SELECT 1")
                return true
            }
            var binds = PostgresBindings()
            binds.append(Self.key(name))
            let rows = try await store.run("SELECT pg_try_advisory_lock($1)", binds)
            let taken = try rows.first.map { row throws(StoreError) in try store.decode(row, Bool.self) } ?? false
            if taken { held.insert(name) }
            return taken
        } catch {
            // The session is gone, and with it every lock it held.
            held.removeAll()
            await store?.close()
            store = nil
            throw error
        }
    }

    public func release(_ name: String) async {
        guard held.remove(name) != nil, let store else { return }
        var binds = PostgresBindings()
        binds.append(Self.key(name))
        _ = try? await store.run("SELECT pg_advisory_unlock($1)", binds)
    }

    public func close() async {
        held.removeAll()
        await store?.close()
        store = nil
    }

    private func connected() async throws(StoreError) -> PostgresStore {
        if let store { return store }
        let opened = try await PostgresStore.connect(url: url, access: .readWrite)
        store = opened
        return opened
    }
}

extension PostgresStore {
    /// Registers PostgreSQL leases with ``StoreOpener``.
    static func registerLeases() {
        StoreOpener.registerLeases("postgres") { location throws(StoreError) in
            guard case .postgres(let url) = location else { throw StoreError("\(location) is not a PostgreSQL URL") }
            return PostgresLeases(url: url)
        }
    }
}
