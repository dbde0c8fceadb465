//! The types the backend interface speaks: tables and columns as httphooks finds them,
//! what a claim takes and returns, what an attempt changes. Below everything else in
//! storage, as River's `riverdriver` keeps its parameter types.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::storage::models::{Attempt, Callback, Status};

/// The primary-key columns of a table, in key order.
pub fn primary_key(columns: &[Column]) -> Vec<&Column> {
    let mut keys: Vec<&Column> = columns.iter().filter(|c| c.primary_key > 0).collect();
    keys.sort_by_key(|c| c.primary_key);
    keys
}

/// An event of a table that a hook may listen to: its rows' (which row triggers see),
/// and TRUNCATE where the backend's triggers see it ([`super::Backend::captures_truncate`]).
/// Any other event name is a custom event (`enqueue`). Stored and shown by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableEvent {
    Insert,
    Update,
    Delete,
    Truncate,
}

impl TableEvent {
    /// The events of a table's rows.
    pub const ROW: [TableEvent; 3] = [TableEvent::Insert, TableEvent::Update, TableEvent::Delete];
    pub const ALL: [TableEvent; 4] = [
        TableEvent::Insert,
        TableEvent::Update,
        TableEvent::Delete,
        TableEvent::Truncate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TableEvent::Insert => "insert",
            TableEvent::Update => "update",
            TableEvent::Delete => "delete",
            TableEvent::Truncate => "truncate",
        }
    }

    /// None for a custom event.
    pub fn parse(name: &str) -> Option<TableEvent> {
        TableEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

impl std::fmt::Display for TableEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the enabled hooks of a table listen to: its row events, and for updates the
/// columns they watch (None when some hook takes any update).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watched {
    /// Row events only, in [`TableEvent::ROW`]'s order.
    pub events: Vec<TableEvent>,
    pub update_columns: Option<Vec<String>>,
}

impl Watched {
    /// For an update trigger: a test per watched column of `columns` that says it
    /// changed (`changed` writes it from the column's name), to join with OR; None
    /// when every update counts. Empty when none of the watched columns exists.
    pub fn update_tests(
        &self,
        columns: &[Column],
        changed: impl Fn(&str) -> String,
    ) -> Option<Vec<String>> {
        let names = self.update_columns.as_ref()?;
        Some(
            columns
                .iter()
                .filter(|c| names.contains(&c.name))
                .map(|c| changed(&c.name))
                .collect(),
        )
    }
}

/// One claim: up to `limit` due callbacks that `filter` selects, leased to the run
/// holding `token`, those `marks` picks marked as started.
#[derive(Debug)]
pub struct Claim<'a> {
    pub filter: &'a ClaimFilter,
    pub limit: i64,
    pub token: &'a str,
    pub marks: &'a StartMarks,
}

/// A column as a catalog query reads it: its name, its declared type and its position
/// in the primary key (0 outside it).
#[derive(diesel::QueryableByName)]
pub(crate) struct ColumnRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub declared: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub pk: i32,
}

impl ColumnRow {
    pub fn into_column(self, always_integer: bool) -> Column {
        Column {
            always_integer,
            kind: ColumnKind::from_declared(&self.declared),
            name: self.name,
            primary_key: self.pk,
        }
    }
}

/// A row of a `SELECT id` written in SQL.
#[derive(diesel::QueryableByName)]
pub(crate) struct IdRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
}

/// The row of a `SELECT count(*) AS n` written in SQL.
#[derive(diesel::QueryableByName)]
pub(crate) struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
}

/// An application table as httphooks finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The name hooks store and messages show: on PostgreSQL schema-qualified
    /// (`sales.orders`) when the table is not in the schema httphooks works in.
    pub name: String,
    /// PostgreSQL: how DDL names it (quoted, qualified where needed).
    pub sql_name: String,
    /// PostgreSQL: the table's oid, which renames keep.
    pub oid: Option<i64>,
    /// MySQL: the name its capture triggers were made for, when the table was renamed
    /// since (the triggers went with it and still capture under that name).
    pub captured_as: Option<String>,
    /// Its columns; `primary_key` marks the key that `object_id` is made of (the
    /// table's primary key, or the hooks' `--key` columns, see [`Table::keyed_by`]).
    pub columns: Vec<Column>,
}

impl Table {
    /// The table with `key` (column names) as the key triggers record, in place of
    /// its primary key; None keeps the primary key.
    pub fn keyed_by(mut self, key: Option<&[String]>) -> Table {
        if let Some(key) = key {
            for column in &mut self.columns {
                column.primary_key = key
                    .iter()
                    .position(|k| k == &column.name)
                    .map_or(0, |p| p as i32 + 1);
            }
        }
        self
    }

    /// The names of the key columns, in key order.
    pub fn key_names(&self) -> Vec<String> {
        primary_key(&self.columns)
            .into_iter()
            .map(|c| c.name.clone())
            .collect()
    }
}

/// What a table's triggers are, compared with what httphooks would install now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureState {
    Intact,
    /// No trigger of httphooks' on the table.
    Missing,
    /// Triggers that do not match the table's columns, key or hooks.
    Stale,
    /// Its trigger, or a partition's clone of it, is disabled (`ALTER TABLE … DISABLE
    /// TRIGGER`), which fires it no more.
    Disabled,
}

impl CaptureState {
    /// Compares the triggers found on a table with those httphooks would make now, in
    /// any order.
    pub fn comparing<T: Ord>(mut found: Vec<T>, mut expected: Vec<T>) -> CaptureState {
        found.sort();
        expected.sort();
        if found == expected {
            CaptureState::Intact
        } else if found.is_empty() {
            CaptureState::Missing
        } else {
            CaptureState::Stale
        }
    }
}

/// What httphooks knows of an application table's column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    /// 1-based position in the primary key, 0 when not part of it.
    pub primary_key: i32,
    /// The database holds only integers here whatever is written (SQLite's rowid
    /// alias), so triggers need not guard against other types.
    pub always_integer: bool,
}

/// Column types as far as payloads care: what a sample value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Integer,
    Real,
    Boolean,
    Text,
    Timestamp,
    Json,
    Blob,
}

impl ColumnKind {
    /// Maps a declared SQL type (either backend's spelling) to its kind.
    pub fn from_declared(declared: &str) -> ColumnKind {
        let t = declared.to_ascii_lowercase();
        if t.starts_with("json") {
            ColumnKind::Json
        } else if t.contains("bool") {
            ColumnKind::Boolean
        } else if t.contains("int") || t == "serial" || t == "bigserial" || t == "smallserial" {
            ColumnKind::Integer
        } else if t.contains("real")
            || t.contains("floa")
            || t.contains("doub")
            || t.contains("numeric")
            || t.contains("decimal")
        {
            ColumnKind::Real
        } else if t.contains("time") || t.contains("date") {
            ColumnKind::Timestamp
        } else if t.contains("blob") || t == "bytea" {
            ColumnKind::Blob
        } else {
            ColumnKind::Text
        }
    }
}

/// The event data of a callback made for a change that could not be captured (too large,
/// or a truncation its hook does not listen to): its status says why, and there is
/// nothing to send.
pub const UNCAPTURED: &str = r#"{"uncaptured":true}"#;

/// A lease lasts `LEASE_TIMEOUTS` × the hook's timeout + `LEASE_MARGIN_MS`; runs renew
/// the leases of callbacks that wait long, and start no request without its whole
/// timeout left (see `engine::scheduler`). A run that dies on another host holds its
/// callbacks until then; on the same host the next run takes them back at once.
pub const LEASE_TIMEOUTS: i64 = 2;
pub const LEASE_MARGIN_MS: i64 = 20_000;

/// The lease a claim gets for a hook with this timeout.
pub fn lease_for(timeout: std::time::Duration) -> std::time::Duration {
    timeout * LEASE_TIMEOUTS as u32 + std::time::Duration::from_millis(LEASE_MARGIN_MS as u64)
}

/// A claim admits this many times as many new callbacks as it claims: admitting costs
/// per statement about as much as per row, so most claims then find nothing to admit.
pub const ADMIT_AHEAD: i64 = 4;

/// Which waiting callbacks a run may claim.
#[derive(Debug, Clone, Default)]
pub struct ClaimFilter {
    pub hook_ids: Vec<i64>,
    /// Named callbacks are sent even when their retry time has not come yet.
    pub callback_ids: Vec<i64>,
    /// Hooks this run claims no more for (their endpoint has all it can take, or
    /// their environment is missing).
    pub exclude_hook_ids: Vec<i64>,
    /// Callbacks this run has already attempted (`--callback`: one attempt each).
    pub exclude_ids: Vec<i64>,
    /// Only callbacks after this (due time, id) in claim order: where the last claim
    /// ended, while hooks are excluded, so that claims do not step again over the
    /// excluded hooks' callbacks at the head of the queue. (Each backend adds this to
    /// the due rule in the form its planner turns into an index range.)
    pub after: Option<(NaiveDateTime, i64)>,
    /// The claim tokens of other runs of this host that are alive: callbacks they
    /// started are theirs until they end, even past their lease (a database locked or
    /// away for longer kept them from renewing it; they may have sent those callbacks
    /// and be waiting to record them). A run on another host cannot tell a live run
    /// from a dead one: it goes by the lease.
    pub live_tokens: Vec<String>,
    /// The claiming run's own token: what it holds it never claims again, even past
    /// the lease (it has those callbacks in hand, and may be sending them).
    pub own_token: Option<String>,
}

/// A callback claimed by this run, with the token of an earlier claim whose lease ran
/// out (that run died with the callback in hand) and whether that run had started it.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(embed)]
    pub callback: Callback,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub previous_token: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub previous_started: bool,
    /// Marked as started by this claim (see [`StartMarks`]).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub marked: bool,
}

impl ClaimFilter {
    pub(in crate::storage) fn due_before(&self, now: NaiveDateTime) -> NaiveDateTime {
        if self.callback_ids.is_empty() {
            now
        } else {
            // Not NaiveDateTime::MAX: SQLite compares timestamps as text, and its
            // "+262142-…" sorts before every real date.
            chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("a valid date")
        }
    }
}

/// A due row a claim locked (SQLite, MySQL: the claim reads, then updates), as an
/// earlier claim left it.
#[derive(QueryableByName)]
pub(in crate::storage) struct DueRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub hook_id: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub claim_token: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub claim_started: bool,
}

/// Which claimed callbacks a claim marks as started at once (in the same statement):
/// the first `up_to` in claim order whose hook is not in `except_hooks` (hooks whose
/// endpoint has all the ready requests it may). The rest are marked later, in batches,
/// when their endpoint can start them.
#[derive(Debug, Clone, Default)]
pub struct StartMarks {
    pub up_to: i64,
    pub except_hooks: Vec<i64>,
}

impl StartMarks {
    /// The ids of `due` (in claim order) that this claim marks as started.
    pub(in crate::storage) fn pick(&self, due: &[DueRow]) -> Vec<i64> {
        due.iter()
            .filter(|d| !self.except_hooks.contains(&d.hook_id))
            .take(usize::try_from(self.up_to).unwrap_or(0))
            .map(|d| d.id)
            .collect()
    }
}

/// What one attempt (or a decision not to attempt) changes on a callback.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub callback_id: i64,
    /// For the run's statistics per hook.
    pub hook_id: i64,
    /// The body rendered for the first attempt, stored so retries send the same bytes.
    pub rendered_payload: Option<std::sync::Arc<str>>,
    pub status: Status,
    pub status_details: String,
    pub next_attempt_at: Option<NaiveDateTime>,
    /// What went on the wire; each counts towards max_attempts.
    pub attempts: Vec<Attempt>,
    /// Its attempts are a batch's requests, which the outcome of the batch's first
    /// callback counts (in the run's request statistics); false otherwise.
    #[serde(default)]
    pub shared_request: bool,
}

/// A backend's SQL for writing backfill callbacks: the rest is shared
/// (`storage::backfill`). Each expression reads the table's row as `t`.
pub struct BackfillSql {
    /// The table as FROM names it.
    pub table: String,
    /// The key columns, quoted, in key order (`t."a", t."b"`): ORDER BY and row-value
    /// comparisons use them.
    pub key_columns: String,
    /// The same, one by one.
    pub key_list: Vec<String>,
    /// The key's values as a JSON array, as text.
    pub key_json: String,
    /// `INSERT INTO httphooks_new_callbacks (…) SELECT …` up to its FROM: one backfill
    /// change per row read, as the row's insert trigger would record it.
    pub insert_select: String,
    /// What locks the rows read against writers until the transaction ends ("" where
    /// the transaction holds the write lock).
    pub lock: &'static str,
    /// Quotes a text value as an SQL literal.
    pub quote_literal: fn(&str) -> String,
}
