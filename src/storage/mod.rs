//! Storage: httphooks' tables, the queue operations on them, and the SQL that differs
//! between backends. At the bottom, [`backend::Backend`] is the one interface each
//! backend implements in its own file (`sqlite.rs`, `postgres.rs`, `mysql.rs`), with the
//! types it speaks and the SQL they share; [`Db`] (`db.rs`) is a connection to one of
//! them; the other modules are the operations, in diesel's DSL where every backend runs
//! it as it is (`with_conn!`), through `Db::backend()` where not.

// Public for the storage conformance suite (tests/storage_conformance.rs), which calls
// the queue operations as the engine does; the rest is the crate's own.
pub mod callbacks;
pub mod health;
pub mod hooks;
pub mod models;

pub(crate) mod backend;
pub(crate) mod backfill;
pub(crate) mod capture;
pub(crate) mod coalesce;
mod db;
pub(crate) mod enqueue;
mod location;
mod migrations;
#[cfg(feature = "mysql")]
mod mysql;
mod postgres;
pub(crate) mod runs;
pub(crate) mod schema;
mod sqlite;
pub(crate) mod text;
pub(crate) mod tokens;

pub(crate) use backend::CountRow;
pub(crate) use backend::{
    primary_key, Backend, CaptureState, Column, ColumnKind, Table, TableEvent, Watched,
};
pub(crate) use db::with_conn;
pub use db::Db;
pub(crate) use db::{Connector, LOCK_WAIT};
pub(crate) use location::{connection_error, connection_problem};
pub(crate) use migrations::{ensure_migrated, migrate};

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
