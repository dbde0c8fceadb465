//! Storage: httphooks' tables, the queue operations on them, and the SQL that differs
//! between backends. At the bottom, [`backend::Backend`] is the one interface each
//! backend implements in its own file (`sqlite.rs`, `postgres.rs`, `mysql.rs`), with the
//! types it speaks and the SQL they share; [`Db`] (`db.rs`) is a connection to one of
//! them; the other modules are the operations, in diesel's DSL where every backend runs
//! it as it is (`with_conn!`), through `Db::backend()` where not.

pub mod backend;
pub mod callbacks;
pub mod capture;
mod db;
pub mod enqueue;
pub mod health;
pub mod hooks;
mod location;
mod migrations;
pub mod models;
#[cfg(feature = "mysql")]
mod mysql;
mod postgres;
pub mod runs;
pub mod schema;
mod sqlite;
pub mod text;
pub mod tokens;

pub(crate) use backend::CountRow;
pub use backend::{
    primary_key, Backend, CaptureState, Column, ColumnKind, Table, Watched, ROW_EVENTS,
    TABLE_EVENTS,
};
pub(crate) use db::with_conn;
pub use db::{Connector, Db, LOCK_WAIT};
pub(crate) use location::{connection_error, connection_problem};
pub use location::{redact_url, DatabaseLocation, DEFAULT_SQLITE_FILE};
pub use migrations::{ensure_migrated, migrate};

/// `span` before now, never earlier than the year 1: no callback is older, every
/// backend stores that date, and SQLite, which compares timestamps as text, would sort
/// negative years wrongly. A span too large to represent (None) means the year 1 too.
pub(crate) fn before_now(span: Option<chrono::TimeDelta>) -> chrono::NaiveDateTime {
    let year_one = chrono::NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or(chrono::NaiveDateTime::MIN);
    span.and_then(|span| now().checked_sub_signed(span))
        .map_or(year_one, |time| time.max(year_one))
}

pub(crate) fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}
