import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// One of the write connection's prepared statements (from GRDB's statement cache), bound and stepped through
/// SQLite's C API.
///
/// The reservation transaction runs on every paid call, under the write lock: going through the C API skips the
/// argument arrays, `Row` objects and per-statement bookkeeping that GRDB adds to each statement, which was about a
/// third of the transaction's CPU time. Everything else keeps using GRDB.
struct RawStatement {
    let handle: OpaquePointer
    private let connection: OpaquePointer

    /// The cached statement for `sql` on `db`, reset and with its bindings cleared.
    init(_ db: Database, _ sql: String) throws {
        handle = try db.cachedStatement(sql: sql).sqliteStatement
        connection = db.sqliteConnection!
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    /// `SQLITE_TRANSIENT`: SQLite copies the bound bytes.
    static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    /// Binds text (copied by SQLite) to the 1-based parameter `index`; `nil` binds NULL.
    func bind(_ index: Int32, _ text: String?) {
        guard var text else { sqlite3_bind_null(handle, index); return }
        text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) {
                _ = sqlite3_bind_text(handle, index, $0.baseAddress, Int32($0.count), Self.transient)
            }
        }
    }

    func bind(_ index: Int32, _ value: Int64) { sqlite3_bind_int64(handle, index, value) }

    func bind(_ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    func bind(_ index: Int32, _ value: Double?) {
        if let value { sqlite3_bind_double(handle, index, value) } else { sqlite3_bind_null(handle, index) }
    }

    /// Runs the statement one step: `true` when it produced a row.
    /// - Throws: a GRDB `DatabaseError` with SQLite's code and message (`SQLITE_BUSY` when the lock wait timed out).
    @discardableResult
    func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code:
            let message = String(cString: sqlite3_errmsg(connection))
            let sql = sqlite3_sql(handle).map { String(cString: $0) }
            sqlite3_reset(handle)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: sql)
        }
    }

    /// Steps a statement that returns no row, then resets it.
    func run() throws {
        try step()
        sqlite3_reset(handle)
    }

    /// The text of column `column` (0-based) of the current row; `nil` for NULL.
    func text(_ column: Int32) -> String? { Self.text(handle, column) }

    /// The text of column `column` of `statement`'s current row (any prepared statement); `nil` for NULL.
    static func text(_ statement: OpaquePointer, _ column: Int32) -> String? {
        guard let bytes = sqlite3_column_text(statement, column) else { return nil }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    /// Ends the current use: a statement left mid-result would keep its read open.
    func reset() { sqlite3_reset(handle) }
}
