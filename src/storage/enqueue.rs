//! The insert helper: applications that do not use triggers enqueue a custom event in
//! their own transaction (docs/behaviour.md §6).

use diesel::prelude::*;
use serde_json::Value;

use super::models::split_events;
use super::schema::httphooks_hook_versions::dsl as v;
use super::schema::httphooks_hooks::dsl as h;
use super::TableEvent;
use crate::error::{Error, Result};

/// A connection httphooks can enqueue on: the application's own diesel connection,
/// possibly inside a transaction it has open.
pub trait Enqueue {
    /// The stored event list of the hook named `hook`, if there is one, and the most a
    /// callback of it may hold (`--max-payload-size`).
    fn hook_events(&mut self, hook: &str) -> Result<Option<(String, i64)>>;
    /// Inserts one callback per enabled hook named `hook`; returns how many.
    fn insert_callbacks(&mut self, hook: &str, event: &str, data: &Value) -> Result<usize>;
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
pub fn enqueue<C: Enqueue>(conn: &mut C, hook: &str, event: &str, data: &Value) -> Result<usize> {
    // Event names are stored lower case, as `hooks add --events` writes them.
    let event = event.trim().to_ascii_lowercase();
    let event = event.as_str();
    let (events, max_payload_size) = conn.hook_events(hook)?.ok_or_else(|| {
        Error::invalid(format!(
            "there is no hook named {hook:?}; `httphooks hooks list` shows the hooks"
        ))
    })?;
    if TableEvent::parse(event).is_some() {
        return Err(Error::invalid(format!(
            "{event} events come from the table's triggers, with the row; enqueue takes custom events such as attempt.submitted"
        )));
    }
    let events = split_events(&events);
    // A table's hook takes only its rows' events: a custom event needs its own hook.
    if events.iter().all(|e| TableEvent::parse(e).is_some()) {
        return Err(Error::invalid(format!(
            "hook {hook:?} watches a table's rows ({}), not custom events; add a hook for {event:?} without --table: `httphooks hooks add NAME --events {event} --url URL`",
            events.join(", ")
        )));
    }
    if !events.iter().any(|e| e == event) {
        return Err(Error::invalid(format!(
            "hook {hook:?} does not listen to event {event:?} (it listens to {}); add it with `httphooks hooks edit {hook} --events …`",
            events.join(", ")
        )));
    }
    let size = data.to_string().len() as i64;
    if size > max_payload_size {
        return Err(Error::invalid(format!(
            "the data is {}, more than hook {hook:?}'s --max-payload-size of {}; send less, or raise it with `httphooks hooks edit {hook} --max-payload-size SIZE`",
            crate::payload::size::format_exact(size),
            crate::payload::size::format_exact(max_payload_size)
        )));
    }
    conn.insert_callbacks(hook, event, data)
}

/// The application's own connection: the hook is looked up with diesel's DSL, the
/// event written with the backend's SQL (see `Backend::enqueue`).
macro_rules! enqueue_on {
    ($connection:ty) => {
        impl Enqueue for $connection {
            fn hook_events(&mut self, hook: &str) -> Result<Option<(String, i64)>> {
                Ok(h::httphooks_hooks
                    .inner_join(v::httphooks_hook_versions.on(v::id.nullable().eq(h::version_id)))
                    .select((h::events, v::max_payload_size))
                    .filter(h::name.eq(hook))
                    .first(self)
                    .optional()?)
            }

            fn insert_callbacks(&mut self, hook: &str, event: &str, data: &Value) -> Result<usize> {
                super::Backend::enqueue(self, hook, event, data)
            }
        }
    };
}

enqueue_on!(diesel::SqliteConnection);
enqueue_on!(diesel::PgConnection);
#[cfg(feature = "mysql")]
enqueue_on!(diesel::MysqlConnection);

impl Enqueue for super::Db {
    fn hook_events(&mut self, hook: &str) -> Result<Option<(String, i64)>> {
        super::with_conn!(self, |conn| conn.hook_events(hook))
    }

    fn insert_callbacks(&mut self, hook: &str, event: &str, data: &Value) -> Result<usize> {
        self.backend().enqueue(hook, event, data)
    }
}
