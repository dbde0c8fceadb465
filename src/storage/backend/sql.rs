//! SQL the backends share: how a due callback reads in SQL, how claimed callbacks are
//! read back, timestamps and names as literals.

use chrono::NaiveDateTime;

use super::types::{ClaimFilter, Claimed, DueRow, Outcome, LEASE_MARGIN_MS, LEASE_TIMEOUTS};
use crate::storage::models::{Callback, SETTINGS_COLUMNS};

/// Quotes an SQL identifier for SQLite and PostgreSQL (MySQL's are in `mysql.rs`).
pub(in crate::storage) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal for SQLite and PostgreSQL (which runs with
/// standard_conforming_strings on); MySQL's are in `mysql.rs`.
pub(in crate::storage) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The lease in milliseconds as SQL, from an expression giving the hook's timeout.
pub(in crate::storage) fn lease_ms_sql(timeout_ms: &str) -> String {
    format!("(coalesce({timeout_ms}, 10000) * {LEASE_TIMEOUTS} + {LEASE_MARGIN_MS})")
}

impl ClaimFilter {
    /// When a callback is due, as SQL on `httphooks_callbacks` (the one definition;
    /// claims, `--dry-run` and `callbacks explain` use it): it is waiting; its retry
    /// time (`due_key`, the backend's expression of the due index, 1970 for a new
    /// callback) is at or before `due_before` (bound to [`Self::due_before`]); no live
    /// lease holds it (`now` is the database's clock); its hook is enabled (a disabled
    /// hook's callbacks are held); and, for an ordered hook, no earlier callback of its
    /// row is still waiting (a row's key, or no key for a custom event: two tests, each
    /// a range of the ordered index; as one NULL-safe `=`, PostgreSQL read every earlier
    /// waiting callback of the hook for each one it claimed, 11.5 s for a claim of
    /// 2,900). Ids are integers, so inlining them is safe. The hook test is a scalar
    /// subquery, not `EXISTS`: MariaDB turns an `EXISTS` into a semi-join that reads
    /// the hooks first and sorts every waiting callback (265 ms at 100k waiting,
    /// against 0.3 ms for a scan of the due index that stops at the limit).
    pub(in crate::storage) fn sql_condition(
        &self,
        due_key: &str,
        due_before: &str,
        now: &str,
    ) -> String {
        let mut condition = format!(
            "httphooks_callbacks.status = 'waiting' AND {due_key} <= {due_before} \
             AND (httphooks_callbacks.claimed_until IS NULL OR httphooks_callbacks.claimed_until < {now}) \
             AND COALESCE((SELECT h.enabled FROM httphooks_hooks h \
               WHERE h.id = httphooks_callbacks.hook_id), FALSE) \
             AND (NOT httphooks_callbacks.ordered OR CASE WHEN httphooks_callbacks.object_id IS NULL \
               THEN NOT EXISTS ({earlier} AND earlier.object_id IS NULL) \
               ELSE NOT EXISTS ({earlier} AND earlier.object_id = httphooks_callbacks.object_id) END)",
            earlier = "SELECT 1 FROM httphooks_callbacks earlier \
               WHERE earlier.status = 'waiting' AND earlier.ordered \
                 AND earlier.hook_id = httphooks_callbacks.hook_id \
                 AND earlier.id < httphooks_callbacks.id",
        );
        let lists = [
            ("hook_id IN", &self.hook_ids),
            ("id IN", &self.callback_ids),
            ("hook_id NOT IN", &self.exclude_hook_ids),
            ("id NOT IN", &self.exclude_ids),
        ];
        // Tokens are made by `RunIdentity` (host, pid, hex); any other character means
        // a row changed by hand, which is left out rather than quoted per backend.
        let plain = |t: &&String| {
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        };
        let tokens: Vec<String> = self
            .live_tokens
            .iter()
            .filter(plain)
            .map(|t| format!("'{t}'"))
            .collect();
        if let Some(own) = self.own_token.as_ref().filter(plain) {
            condition.push_str(&format!(
                " AND (httphooks_callbacks.claim_token IS NULL \
                   OR httphooks_callbacks.claim_token <> '{own}')"
            ));
        }
        if !tokens.is_empty() {
            condition.push_str(&format!(
                " AND NOT (httphooks_callbacks.claim_started \
                   AND httphooks_callbacks.claim_token IS NOT NULL \
                   AND httphooks_callbacks.claim_token IN ({}))",
                tokens.join(",")
            ));
        }
        for (test, ids) in lists {
            if !ids.is_empty() {
                let list: Vec<String> = ids.iter().map(i64::to_string).collect();
                condition.push_str(&format!(
                    " AND httphooks_callbacks.{test} ({})",
                    list.join(",")
                ));
            }
        }
        condition
    }
}

/// `Backend::keep_answers_of` for SQLite and PostgreSQL (MySQL's, a self-join, is in
/// `mysql.rs`): an attempt of a callback `staying` that points at a holder's answer
/// takes the answer and drops the pointer. Ids are integers, so inlining them is safe.
pub(in crate::storage) fn keep_answers_sql(holders: &[i64], staying: &[i64]) -> String {
    let (holders, staying) = (
        id_list(holders.iter().copied()),
        id_list(staying.iter().copied()),
    );
    let answer = "SELECT h.response_body FROM httphooks_attempts h \
         WHERE h.callback_id = httphooks_attempts.response_body_callback_id \
           AND h.started_at = httphooks_attempts.started_at AND h.response_body IS NOT NULL";
    format!(
        "UPDATE httphooks_attempts SET response_body = ({answer} ORDER BY h.id LIMIT 1), \
           response_body_callback_id = NULL \
         WHERE response_body_callback_id IN ({holders}) AND callback_id IN ({staying}) \
           AND EXISTS ({answer})"
    )
}

/// Integers as an SQL list, for `IN (…)`.
pub(in crate::storage) fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    ids.into_iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Callbacks as SQL written by hand reads them (claims): the view's columns and the
/// settings of the hook version `settings_version_id` (the hook's current ones), as
/// `d` and `s`; `extra` columns and joins follow.
pub(in crate::storage) fn callbacks_sql(extra_columns: &str, joins: &str) -> String {
    let settings: Vec<String> = SETTINGS_COLUMNS.iter().map(|c| format!("s.{c}")).collect();
    format!(
        "SELECT d.*, {}{extra_columns} FROM httphooks_callback_details d \
         JOIN httphooks_hook_versions s ON s.id = d.settings_version_id{joins}",
        settings.join(", ")
    )
}

/// The query `send_callbacks --dry-run` peeks with: the due callbacks' details in
/// claim order, the first `limit` (a placeholder) of them, by the backend's due key
/// and due condition.
pub(in crate::storage) fn peek_due_sql(due_key: &str, condition: &str, limit: &str) -> String {
    format!(
        "{} ORDER BY q.due, q.id",
        callbacks_sql(
            "",
            &format!(
                " JOIN (SELECT id, {due_key} AS due FROM httphooks_callbacks WHERE {condition} \
                   ORDER BY {due_key}, id LIMIT {limit}) q ON q.id = d.id"
            )
        )
    )
}

/// Callbacks by id, in no particular order (claims that read, then update).
#[cfg(feature = "mysql")]
pub(in crate::storage) fn callbacks_by_ids_sql(ids: &str) -> String {
    format!("{} WHERE d.id IN ({ids})", callbacks_sql("", ""))
}

/// The claimed callbacks in claim order, each with what an earlier claim left on it
/// (`due`) and whether this claim marked it as started.
pub(in crate::storage) fn claimed_in_order(
    mut callbacks: Vec<Callback>,
    due: &[DueRow],
    marked: &[i64],
) -> Vec<Claimed> {
    callbacks.sort_by_key(|c| (c.next_attempt_at, c.id));
    // Claims of batch hooks hold thousands: look ups by id, not scans.
    let due: std::collections::HashMap<i64, &DueRow> = due.iter().map(|d| (d.id, d)).collect();
    let marked: std::collections::HashSet<i64> = marked.iter().copied().collect();
    callbacks
        .into_iter()
        .map(|callback| {
            let before = due.get(&callback.id);
            Claimed {
                previous_token: before.and_then(|d| d.claim_token.clone()),
                previous_started: before.is_some_and(|d| d.claim_started),
                marked: marked.contains(&callback.id),
                callback,
            }
        })
        .collect()
}

/// How timestamps are written inside JSON for the backends to read back: diesel's
/// SQLite text form, which PostgreSQL also parses.
pub(in crate::storage) const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

/// Bodies up to this size are stored with the outcomes' one JSON array; larger ones by
/// a statement of their own, since the databases' JSON functions copy every value
/// they read several times (a 20 MB body cost SQLite 300 MB).
pub(in crate::storage) const INLINE_PAYLOAD: usize = 64 << 10;

/// The body an outcome stores with its callback's other changes: one rendered for its
/// first attempt, up to [`INLINE_PAYLOAD`] (a larger one is stored on its own).
pub(in crate::storage) fn inline_payload(outcome: &Outcome) -> Option<&str> {
    outcome
        .rendered_payload
        .as_deref()
        .filter(|p| p.len() <= INLINE_PAYLOAD)
}

/// Outcomes as the JSON array every backend's `apply_outcomes` reads: one object per
/// callback with its new status, details, attempt count, retry time and (a small)
/// body. In id order: the backends lock the rows in the order of the array, as claims
/// and renewals do, and two writers taking the same rows in different orders
/// deadlock. Written straight to JSON text, borrowing bodies rather than copying them;
/// `text` is what the backend's text columns need of details and bodies.
pub(in crate::storage) fn outcomes_json(
    outcomes: &[&Outcome],
    text: fn(&str) -> std::borrow::Cow<'_, str>,
) -> String {
    #[derive(serde::Serialize)]
    struct Change<'a> {
        id: i64,
        status: &'static str,
        details: std::borrow::Cow<'a, str>,
        attempted: usize,
        next_attempt_at: Option<String>,
        payload: Option<std::borrow::Cow<'a, str>>,
    }
    let mut in_id_order: Vec<&Outcome> = outcomes.to_vec();
    in_id_order.sort_by_key(|o| o.callback_id);
    let changes: Vec<Change> = in_id_order
        .into_iter()
        .map(|o| Change {
            id: o.callback_id,
            status: o.status.as_str(),
            details: text(&o.status_details),
            attempted: o.attempts.len(),
            next_attempt_at: o
                .next_attempt_at
                .map(|t| t.format(TIMESTAMP_FORMAT).to_string()),
            payload: inline_payload(o).map(text),
        })
        .collect();
    serde_json::to_string(&changes).expect("outcomes serialize")
}

/// A timestamp as an SQL literal both backends compare with their timestamps: text in
/// SQLite, cast on PostgreSQL by comparison with a timestamp expression.
pub(in crate::storage) fn timestamp_literal(time: NaiveDateTime) -> String {
    format!("'{}'", time.format(TIMESTAMP_FORMAT))
}

/// `lock_unheld` where rows are locked one by one (PostgreSQL, MySQL 8, MariaDB 10.6+):
/// ids are integers, inlined.
pub(in crate::storage) fn lock_unheld_rows<C>(
    conn: &mut C,
    ids: &[i64],
) -> crate::error::Result<Vec<i64>>
where
    C: diesel::Connection,
    for<'a> diesel::query_builder::SqlQuery:
        diesel::query_dsl::LoadQuery<'a, C, super::types::IdRow>,
{
    use diesel::RunQueryDsl;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let rows: Vec<super::types::IdRow> = diesel::sql_query(format!(
        "SELECT id FROM httphooks_callbacks WHERE id IN ({}) FOR UPDATE SKIP LOCKED",
        list.join(", ")
    ))
    .load(conn)?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

/// Hand-written SQL that diesel keeps prepared on the connection, as it keeps its DSL
/// queries (a `sql_query` is parsed anew each time, which cost a run about 4 % of its
/// CPU): for the statements a run repeats per batch. Its text must not vary with the
/// values, which go in as binds, one per `?`.
pub(in crate::storage) struct CachedSql<'a> {
    sql: String,
    binds: Vec<BindValue<'a>>,
}

pub(in crate::storage) enum BindValue<'a> {
    Text(&'a str),
    Timestamp(NaiveDateTime),
    Integer(i64),
    /// Written as the literal NULL: a statement with NULL in a place is cached apart
    /// from the same one with a value there.
    Null,
}

impl<'a> CachedSql<'a> {
    pub(in crate::storage) fn new(sql: impl Into<String>) -> Self {
        CachedSql {
            sql: sql.into(),
            binds: Vec::new(),
        }
    }

    pub(in crate::storage) fn text(mut self, value: &'a str) -> Self {
        self.binds.push(BindValue::Text(value));
        self
    }

    pub(in crate::storage) fn timestamp(mut self, value: NaiveDateTime) -> Self {
        self.binds.push(BindValue::Timestamp(value));
        self
    }

    pub(in crate::storage) fn integer(mut self, value: i64) -> Self {
        self.binds.push(BindValue::Integer(value));
        self
    }

    pub(in crate::storage) fn optional_text(mut self, value: Option<&'a str>) -> Self {
        self.binds
            .push(value.map_or(BindValue::Null, BindValue::Text));
        self
    }

    pub(in crate::storage) fn optional_integer(mut self, value: Option<i64>) -> Self {
        self.binds
            .push(value.map_or(BindValue::Null, BindValue::Integer));
        self
    }

    pub(in crate::storage) fn optional_timestamp(mut self, value: Option<NaiveDateTime>) -> Self {
        self.binds
            .push(value.map_or(BindValue::Null, BindValue::Timestamp));
        self
    }
}

impl<DB> diesel::query_builder::QueryFragment<DB> for CachedSql<'_>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Timestamp>
        + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    NaiveDateTime: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        // One bind per `?`: a statement written with one too few or too many is a bug
        // the tests meet at once.
        debug_assert_eq!(
            self.sql.matches('?').count(),
            self.binds.len(),
            "{}",
            self.sql
        );
        let mut pieces = self.sql.split('?');
        out.push_sql(pieces.next().unwrap_or_default());
        for (piece, bind) in pieces.zip(&self.binds) {
            match bind {
                BindValue::Text(value) => {
                    out.push_bind_param::<diesel::sql_types::Text, str>(value)?
                }
                BindValue::Timestamp(value) => {
                    out.push_bind_param::<diesel::sql_types::Timestamp, _>(value)?
                }
                BindValue::Integer(value) => {
                    out.push_bind_param::<diesel::sql_types::BigInt, _>(value)?
                }
                BindValue::Null => out.push_sql("NULL"),
            }
            out.push_sql(piece);
        }
        Ok(())
    }
}

impl diesel::query_builder::QueryId for CachedSql<'_> {
    type QueryId = ();
    // Not static: diesel then keys its cache of prepared statements by the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for CachedSql<'_> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Conn> diesel::RunQueryDsl<Conn> for CachedSql<'_> {}
