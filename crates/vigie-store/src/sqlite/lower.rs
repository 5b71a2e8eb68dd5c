//! `lower()` for every letter, not only ASCII's.
//!
//! Searches are case-insensitive: `Where::words` compares `lower(column) LIKE` the word
//! lowercased in Rust. SQLite's own `lower()` folds only A–Z, so "ÉTÉ" in a title was found by
//! neither "ÉTÉ" nor "été" (PostgreSQL's `lower()` folds every letter under a UTF-8 locale,
//! so the two engines disagreed). SQLite lets an application replace a built-in function for
//! its connection; this one lowercases as Rust's `str::to_lowercase` does, the same folding
//! the search words get. No index is built on `lower()` (the migrations use none), so no
//! stored index depends on which `lower()` runs.
//!
//! ASCII text, nearly all of it, takes a byte-wise path that allocates once.

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{Value, ValueRef};
use rusqlite::Connection;

/// Replaces `lower(X)` on `conn` for as long as it is open.
pub(super) fn install(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "lower",
        1,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_DETERMINISTIC
            | FunctionFlags::SQLITE_INNOCUOUS,
        lower,
    )
}

fn lower(ctx: &Context<'_>) -> rusqlite::Result<Value> {
    Ok(match ctx.get_raw(0) {
        ValueRef::Null => Value::Null,
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => Value::Text(lowercase(bytes)),
        // A number is lowered as its text, as the built-in does (a whole REAL reads "1" here
        // where SQLite writes "1.0"; Vigie searches only text columns).
        ValueRef::Integer(i) => Value::Text(i.to_string()),
        ValueRef::Real(r) => Value::Text(r.to_string()),
    })
}

fn lowercase(bytes: &[u8]) -> String {
    if bytes.is_ascii() {
        // Every byte is a char here, so the lowered bytes are valid UTF-8 too.
        let lowered = bytes.to_ascii_lowercase();
        String::from_utf8(lowered).unwrap_or_default()
    } else {
        String::from_utf8_lossy(bytes).to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lowered(conn: &Connection, sql: &str) -> Option<String> {
        conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn every_letter_is_lowered_and_nothing_else_changes() {
        let conn = Connection::open_in_memory().unwrap();
        // The built-in leaves non-ASCII letters as they are.
        assert_eq!(lowered(&conn, "SELECT lower('ÉTÉ Ω')").unwrap(), "ÉtÉ Ω");
        install(&conn).unwrap();
        assert_eq!(lowered(&conn, "SELECT lower('ÉTÉ Ω')").unwrap(), "été ω");
        assert_eq!(
            lowered(&conn, "SELECT lower('Disk 50% FULL_x')").unwrap(),
            "disk 50% full_x"
        );
        assert_eq!(lowered(&conn, "SELECT lower(NULL)"), None);
        assert_eq!(lowered(&conn, "SELECT lower(42)").unwrap(), "42");
        assert_eq!(lowered(&conn, "SELECT lower('')").unwrap(), "");
        // A search as the store writes it finds the title whatever case the word was typed in.
        conn.execute_batch(
            "CREATE TABLE t (title TEXT); INSERT INTO t VALUES ('Case Sensitive ÉTÉ');",
        )
        .unwrap();
        let found: i64 = conn
            .query_row(
                "SELECT count(*) FROM t WHERE lower(coalesce(title, '')) LIKE ?1 ESCAPE '\\'",
                ["%été%"],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(found, 1);
    }
}
