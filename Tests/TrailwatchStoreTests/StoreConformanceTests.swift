import Foundation
import Testing
import TrailwatchCore
import TrailwatchStore
import TrailwatchTestSupport

@Suite("Store conformance (SQLite)")
struct SQLiteStoreConformanceTests {
    @Test("groups, streams, paged event reads, documents and merged datapoints")
    func resources() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("store.db"), writer: "host-a")
        try await StoreConformance.fill(store)
        try await StoreConformance.checkSecondWriter(try SQLiteStore(path: dir.file("store.db"), writer: "host-b"))
        try await StoreConformance.check(store)
    }
}
