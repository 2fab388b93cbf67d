import CSQLite
import CShims
#if canImport(Glibc)
import Glibc
#endif

/// What went wrong talking to a store, with its message (naming the store, never a password).
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// True when trying again later may succeed (the server is unreachable or restarting).
    public var isTransient: Bool
    /// SQLite's primary result code when SQLite refused the operation (`SQLITE_BUSY`, …), so
    /// callers decide by the code, not by the wording of the message.
    public var sqliteResultCode: Int32?
    public init(_ message: String, transient: Bool = false, sqliteResultCode: Int32? = nil) {
        self.message = message
        self.isTransient = transient
        self.sqliteResultCode = sqliteResultCode
    }
    public var description: String { message }

    /// SQLite refused a lock another connection holds (`SQLITE_BUSY` or `SQLITE_LOCKED`).
    public var isSQLiteLockRefused: Bool { sqliteResultCode == SQLITE_BUSY || sqliteResultCode == SQLITE_LOCKED }
}

/// A thin owner of one SQLite connection: statements are prepared once and reused.
public final class SQLiteDatabase {
    let handle: OpaquePointer

    /// Opens `path`: read-write and created when missing, or with `readOnly` never created nor changed.
    public init(path: String, readOnly: Bool = false) throws(StoreError) {
        var db: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        let rc = sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close(db) }
            throw StoreError("cannot open \(path): \(message)")
        }
        handle = db
        sqlite3_busy_timeout(db, 5000)
    }

    deinit { sqlite3_close_v2(handle) }

    var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    /// The connection's last error, with its primary result code.
    func lastStoreError(_ prefix: String = "") -> StoreError {
        StoreError(prefix + lastError, sqliteResultCode: sqlite3_errcode(handle) & 0xFF)
    }

    public func execute(_ sql: String) throws(StoreError) {
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        guard rc == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? lastError
            sqlite3_free(error)
            throw StoreError(message, sqliteResultCode: rc & 0xFF)
        }
    }

    public func prepare(_ sql: String) throws(StoreError) -> Statement {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
            throw lastStoreError("cannot prepare \(sql.prefix(60))…: ")
        }
        return Statement(statement, database: self)
    }

    public var changes: Int { Int(sqlite3_changes(handle)) }
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
}

/// A prepared statement; bind by 1-based index, step, read columns.
public final class Statement {
    let handle: OpaquePointer
    unowned let database: SQLiteDatabase

    init(_ handle: OpaquePointer, database: SQLiteDatabase) {
        self.handle = handle
        self.database = database
    }

    deinit { sqlite3_finalize(handle) }

    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    public func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }
    public func bind(_ index: Int32, _ value: Double) { sqlite3_bind_double(handle, index, value) }
    public func bind(_ index: Int32, _ value: String?) {
        guard let value else { sqlite3_bind_null(handle, index); return }
        sqlite3_bind_text(handle, index, value, -1, tw_sqlite_transient())
    }
    /// Text from raw bytes (UTF-8 expected; stored as given). The bytes are not copied: they must
    /// stay valid until the statement has run.
    public func bind(_ index: Int32, bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress else { sqlite3_bind_text(handle, index, "", 0, tw_sqlite_transient()); return }
        sqlite3_bind_text(handle, index, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), tw_sqlite_static())
    }

    /// Runs a statement that returns no rows.
    public func run() throws(StoreError) {
        let rc = sqlite3_step(handle)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else {
            let error = StoreError(database.lastError, sqliteResultCode: rc & 0xFF)
            sqlite3_reset(handle)
            throw error
        }
        sqlite3_reset(handle)
    }

    /// Steps once; true when a row is available.
    public func step() throws(StoreError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        guard rc == SQLITE_DONE else { throw StoreError(database.lastError, sqliteResultCode: rc & 0xFF) }
        return false
    }

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    /// An integer column that may be NULL.
    public func optionalInt(_ column: Int32) -> Int64? { isNull(column) ? nil : int(column) }
    public func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    public func text(_ column: Int32) -> String? {
        guard let p = sqlite3_column_text(handle, column) else { return nil }
        return String(cString: p)
    }
    /// A text column's bytes without a copy, valid until the next step or reset; nil for NULL.
    public func bytes(_ column: Int32) -> UnsafeRawBufferPointer? {
        guard let p = sqlite3_column_text(handle, column) else { return nil }
        return UnsafeRawBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, column)))
    }
}

/// The question a progress handler asks (a class, so SQLite can hold it as a context pointer).
private final class ProgressCheck {
    let shouldStop: () -> Bool
    init(_ shouldStop: @escaping () -> Bool) { self.shouldStop = shouldStop }
}

extension SQLiteDatabase {
    /// Runs `body` while SQLite asks `shouldStop` every few thousand virtual-machine steps; when it answers
    /// true, the running statement fails with SQLITE_INTERRUPT (so a long GROUP BY honours a deadline).
    public func interruptible<T, E: Error>(_ shouldStop: @escaping () -> Bool, _ body: () throws(E) -> T) throws(E) -> T {
        let check = Unmanaged.passRetained(ProgressCheck(shouldStop))
        sqlite3_progress_handler(handle, 4096, { context in
            guard let context else { return 0 }
            return Unmanaged<ProgressCheck>.fromOpaque(context).takeUnretainedValue().shouldStop() ? 1 : 0
        }, check.toOpaque())
        defer {
            sqlite3_progress_handler(handle, 0, nil, nil)
            check.release()
        }
        return try body()
    }
}

extension SQLiteDatabase {
    /// Registers two search functions on this connection, faster than `instr` (memmem and memchr):
    /// `tw_has(text, needle)` is 1 when `text` contains `needle`; `tw_has_or_escape(text, needle)` is 1
    /// when it contains `needle` or a backslash (a JSON escape may spell the needle differently).
    /// NULL text gives 0.
    public func registerSearchFunctions() {
        for (name, orEscape) in [("tw_has", false), ("tw_has_or_escape", true)] {
            sqlite3_create_function_v2(handle, name, 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                       UnsafeMutableRawPointer(bitPattern: orEscape ? 1 : 2), { context, _, arguments in
                guard let arguments, let text = sqlite3_value_text(arguments[0]), let needle = sqlite3_value_text(arguments[1]) else {
                    sqlite3_result_int(context, 0)
                    return
                }
                let textLength = Int(sqlite3_value_bytes(arguments[0])), needleLength = Int(sqlite3_value_bytes(arguments[1]))
                let orEscape = sqlite3_user_data(context) == UnsafeMutableRawPointer(bitPattern: 1)
                var found = needleLength == 0 || tw_memmem(text, textLength, needle, needleLength) != nil
                if !found && orEscape { found = memchr(text, 0x5C, textLength) != nil }
                sqlite3_result_int(context, found ? 1 : 0)
            }, nil, nil, nil)
        }
    }
}
