//! The insert helper: applications that do not use triggers enqueue a custom event in
//! their own transaction (SPEC §6).

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use diesel::{PgConnection, SqliteConnection};

use super::models::split_events;
use super::schema::httphooks_hooks::dsl as h;
use crate::error::{Error, Result};

/// A connection httphooks can enqueue on: the application's own diesel connection,
/// possibly inside a transaction it has open.
pub trait Enqueue {
    /// The stored event list of the hook named `hook`, if there is one.
    fn hook_events(&mut self, hook: &str) -> Result<Option<String>>;
    /// Inserts one callback per enabled hook named `hook`; returns how many.
    fn insert_callbacks(
        &mut self,
        hook: &str,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<usize>;
}

/// Enqueues a custom event for `hook` on the caller's connection, inside whatever
/// transaction it has open, so the callback exists if and only if that commits.
/// Returns the number of callbacks made (0 when the hook is disabled).
///
/// ```no_run
/// use diesel::prelude::*;
/// let mut conn = diesel::SqliteConnection::establish("app.sqlite3").unwrap();
/// conn.transaction(|conn| {
///     // … the application's own writes …
///     httphooks::enqueue(conn, "grades", "attempt.submitted", &serde_json::json!({"score": 9}))
///         .map_err(|_| diesel::result::Error::RollbackTransaction)
/// })
/// .unwrap();
/// ```
pub fn enqueue<C: Enqueue>(
    conn: &mut C,
    hook: &str,
    event: &str,
    data: &serde_json::Value,
) -> Result<usize> {
    let events = conn.hook_events(hook)?.ok_or_else(|| {
        Error::invalid(format!(
            "there is no hook named {hook:?}; `httphooks hooks list` shows the hooks"
        ))
    })?;
    if ["insert", "update", "delete"].contains(&event) {
        return Err(Error::invalid(format!(
            "{event} events come from the table's triggers, with the row; enqueue takes custom events such as attempt.submitted"
        )));
    }
    let events = split_events(&events);
    if !events.iter().any(|e| e == event) {
        return Err(Error::invalid(format!(
            "hook {hook:?} does not listen to event {event:?} (it listens to {}); add it with `httphooks hooks edit {hook} --events …`",
            events.join(", ")
        )));
    }
    conn.insert_callbacks(hook, event, data)
}

#[derive(QueryableByName)]
struct Made {
    #[diesel(sql_type = Integer)]
    made: i32,
}

impl Enqueue for SqliteConnection {
    fn hook_events(&mut self, hook: &str) -> Result<Option<String>> {
        Ok(h::httphooks_hooks
            .select(h::events)
            .filter(h::name.eq(hook))
            .first(self)
            .optional()?)
    }

    fn insert_callbacks(
        &mut self,
        hook: &str,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<usize> {
        Ok(diesel::sql_query(
            // Where the triggers write too (see the SQLite migrations).
            "INSERT INTO httphooks_new_callbacks (version_id, event_type, row_data, created_at) \
             SELECT h.version_id, ?, json(?), julianday('now') \
             FROM httphooks_hooks h WHERE h.name = ? AND h.enabled",
        )
        .bind::<Text, _>(event)
        .bind::<Text, _>(data.to_string())
        .bind::<Text, _>(hook)
        .execute(self)?)
    }
}

impl Enqueue for PgConnection {
    fn hook_events(&mut self, hook: &str) -> Result<Option<String>> {
        Ok(h::httphooks_hooks
            .select(h::events)
            .filter(h::name.eq(hook))
            .first(self)
            .optional()?)
    }

    fn insert_callbacks(
        &mut self,
        hook: &str,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<usize> {
        let made: Made = diesel::sql_query("SELECT httphooks_enqueue($1, $2, $3::jsonb) AS made")
            .bind::<Text, _>(hook)
            .bind::<Text, _>(event)
            .bind::<Text, _>(data.to_string())
            .get_result(self)?;
        Ok(made.made as usize)
    }
}

impl Enqueue for super::Db {
    fn hook_events(&mut self, hook: &str) -> Result<Option<String>> {
        super::with_conn!(self, |conn| conn.hook_events(hook))
    }

    fn insert_callbacks(
        &mut self,
        hook: &str,
        event: &str,
        data: &serde_json::Value,
    ) -> Result<usize> {
        super::with_conn!(self, |conn| conn.insert_callbacks(hook, event, data))
    }
}
