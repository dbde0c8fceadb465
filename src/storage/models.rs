//! Rows of httphooks' tables as Rust values.

use chrono::NaiveDateTime;
use diesel::deserialize::FromSql;
use diesel::prelude::*;
use diesel::serialize::{Output, ToSql};
use diesel::sql_types::Text;

use super::schema::{
    httphooks_attempts, httphooks_callback_details, httphooks_hook_versions, httphooks_hooks,
};
use super::text::{OptionalRowText, RowJson};
use super::TableEvent;

/// A hook: its row (what triggers and admission read, and its identity) and, from the
/// hook version it is at (`version_id`), what its callbacks are made of and its
/// settings. Read with the queries of `storage::hooks`, which join the two.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = httphooks_hooks)]
pub struct Hook {
    pub id: i64,
    pub name: String,
    pub table_name: Option<String>,
    /// Stored as ",insert,update,"; see [`Hook::event_list`].
    pub events: String,
    pub enabled: bool,
    /// A JSON array of column names.
    pub when_changed: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// PostgreSQL: the watched table's oid, which a rename keeps.
    pub table_oid: Option<i64>,
    /// A JSON array of the columns that identify a row (`--key`); None: the primary key.
    pub key_columns: Option<String>,
    /// When httphooks last found the table's triggers intact.
    pub capture_verified_at: Option<NaiveDateTime>,
    #[diesel(embed)]
    pub content: HookContent,
    #[diesel(embed)]
    pub settings: HookSettings,
}

impl Hook {
    pub fn event_list(&self) -> Vec<String> {
        split_events(&self.events)
    }

    /// The table events among its events (none for a custom-event hook).
    pub fn table_events(&self) -> Vec<TableEvent> {
        self.event_list()
            .iter()
            .filter_map(|name| TableEvent::parse(name))
            .collect()
    }

    pub fn when_changed_list(&self) -> Vec<String> {
        self.when_changed
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }

    /// The key columns named with `--key`, None for the primary key.
    pub fn key_list(&self) -> Option<Vec<String>> {
        self.key_columns
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
    }

    /// The row's columns as they stand, to change some and write them back.
    pub fn row(&self) -> HookRow {
        HookRow {
            name: self.name.clone(),
            table_name: self.table_name.clone(),
            events: self.events.clone(),
            enabled: self.enabled,
            when_changed: self.when_changed.clone(),
            table_oid: self.table_oid,
            key_columns: self.key_columns.clone(),
        }
    }
}

/// Joins event names in the stored form, ",a,b,", that triggers search.
pub fn join_events(events: &[String]) -> String {
    format!(",{},", events.join(","))
}

pub fn split_events(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|event| !event.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The columns of a hook's row that a definition sets; to insert and to update.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = httphooks_hooks, treat_none_as_null = true)]
pub struct HookRow {
    pub name: String,
    pub table_name: Option<String>,
    pub events: String,
    pub enabled: bool,
    pub when_changed: Option<String>,
    pub table_oid: Option<i64>,
    pub key_columns: Option<String>,
}

/// What a hook's callbacks are made of, fixed for each callback when it is made
/// (docs/behaviour.md §4): the template and content type, and whether they wait for
/// earlier callbacks of their row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = httphooks_hook_versions)]
pub struct HookContent {
    pub content_type: String,
    pub payload_template: Option<String>,
    pub ordered: bool,
}

impl Default for HookContent {
    fn default() -> Self {
        HookContent {
            content_type: "application/json".to_owned(),
            payload_template: None,
            ordered: false,
        }
    }
}

/// An immutable snapshot of a hook, made on every change: its content and settings.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = httphooks_hook_versions)]
pub struct NewHookVersion {
    pub hook_id: i64,
    pub name: String,
    pub table_name: Option<String>,
    #[diesel(embed)]
    pub content: HookContent,
    #[diesel(embed)]
    pub settings: HookSettings,
}

/// A callback with its content from the hook version it was made with and its
/// delivery settings from the hook as it is now (read from the
/// `httphooks_callback_details` view joined to the hook version `settings_version_id`,
/// see [`Callback::query`]; writes go to `httphooks_callbacks`). Text that
/// came from application rows is read as bytes (see `storage::text`), so no value an
/// application stored can make reading a callback fail.
#[derive(Debug, Clone, Default, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = httphooks_callback_details)]
#[cfg_attr(
    not(feature = "mysql"),
    diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))
)]
#[cfg_attr(
    feature = "mysql",
    diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg, diesel::mysql::Mysql))
)]
pub struct Callback {
    pub id: i64,
    pub hook_id: i64,
    /// The hook version it was made with (its URL, headers, template…).
    pub version_id: i64,
    pub hook_name: String,
    pub event_type: String,
    pub table_name: Option<String>,
    #[diesel(deserialize_as = OptionalRowText)]
    pub object_id: Option<String>,
    pub content_type: String,
    pub payload_template: Option<String>,
    pub payload: Option<String>,
    /// `{"instance": row, "old": row}` for row events, `{"data": …}` for custom ones.
    #[diesel(deserialize_as = RowJson)]
    pub event_data: String,
    pub status: Status,
    pub status_details: String,
    pub attempts: i32,
    /// Empty for a new callback: it is due from `created_at`.
    pub next_attempt_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    /// Empty until the callback first changes.
    pub updated_at: Option<NaiveDateTime>,
    pub claimed_until: Option<NaiveDateTime>,
    pub claim_token: Option<String>,
    /// The hook version whose delivery settings this reads (the hook's current one).
    pub settings_version_id: i64,
    /// Whether the hook is enabled; None once it was removed.
    pub hook_enabled: Option<bool>,
    /// Whether the run holding the claim may have started sending it.
    pub claim_started: bool,
    /// The Standard Webhooks `webhook-id` (see [`Callback::webhook_id`]).
    pub webhook_id: Option<String>,
    /// Attempts made before the last `callbacks retry` (which restarts `attempts`).
    pub attempts_before_retry: i32,
    /// The callback it was folded into (status `superseded`, `--coalesce`).
    pub superseded_by: Option<i64>,
    /// Its hook's delivery settings as they are now: those of the hook version
    /// `settings_version_id`.
    #[diesel(embed)]
    pub settings: HookSettings,
}

impl Callback {
    /// The number the next attempt gets in the callback's history.
    pub fn next_attempt_number(&self) -> i32 {
        self.attempts_before_retry + self.attempts + 1
    }
}

impl Callback {
    /// Whether it stands for a change that could not be captured (see
    /// `callbacks::UNCAPTURED`): there is nothing to send.
    pub fn uncaptured(&self) -> bool {
        self.event_data == super::callbacks::UNCAPTURED
    }

    /// When the callback is (or was) due: its retry time, or its creation for a new one.
    pub fn due_at(&self) -> Option<NaiveDateTime> {
        (self.status == Status::Waiting).then(|| self.next_attempt_at.unwrap_or(self.created_at))
    }

    /// Its last change.
    pub fn changed_at(&self) -> NaiveDateTime {
        self.updated_at.unwrap_or(self.created_at)
    }

    /// The Standard Webhooks `webhook-id`: made with the callback (time-ordered and
    /// random, so unique across databases), the same across retries.
    pub fn webhook_id(&self) -> String {
        self.webhook_id
            .clone()
            .unwrap_or_else(|| format!("msg_{}", self.id))
    }
}

/// A callback's status, stored as its name: waiting (to be sent, now or at its retry
/// time), sent, or error (given up on, or cancelled).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[serde(rename_all = "lowercase")]
#[diesel(sql_type = Text)]
pub enum Status {
    #[default]
    Waiting,
    Sent,
    Error,
    /// Folded into a newer callback of its row, which was sent instead (`--coalesce`).
    Superseded,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Waiting,
        Status::Sent,
        Status::Error,
        Status::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Sent => "sent",
            Status::Error => "error",
            Status::Superseded => "superseded",
        }
    }

    /// None for a name httphooks does not write.
    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Status, String> {
        Status::parse(name)
            .ok_or_else(|| format!("{name:?} is not waiting, sent, error or superseded"))
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<DB> ToSql<Text, DB> for Status
where
    DB: diesel::backend::Backend,
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> diesel::serialize::Result {
        self.as_str().to_sql(out)
    }
}

impl<DB> FromSql<Text, DB> for Status
where
    DB: diesel::backend::Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
        let name = String::from_sql(bytes)?;
        Status::parse(&name).ok_or_else(|| {
            format!(
                "a callback has status {name:?}, which httphooks does not write; set it to \
                 waiting, sent or error (UPDATE httphooks_callbacks SET status = 'error' \
                 WHERE status NOT IN ('waiting', 'sent', 'error'))"
            )
            .into()
        })
    }
}

/// A hook's delivery settings, and its limits: what each attempt of its callbacks uses
/// (docs/behaviour.md §4: a callback's settings are its hook's current ones). Every
/// hook version holds a full set, so a callback reads them from the version its hook
/// is at now. A new setting is a field here, with its default in [`HookSettings::new`],
/// and a column of `httphooks_hook_versions` (docs/layout.md).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Queryable, QueryableByName, Selectable, Insertable,
)]
#[diesel(table_name = httphooks_hook_versions)]
pub struct HookSettings {
    pub target_url: String,
    pub http_method: String,
    /// A JSON object of header names to values (values may hold `${VAR}`).
    pub headers: String,
    pub timeout_ms: i32,
    pub max_attempts: i32,
    /// Authentication (JSON, see `delivery::auth`).
    pub auth: Option<String>,
    pub signing_secret_env: Option<String>,
    pub ca_file: Option<String>,
    /// The most a callback may hold, in bytes (its change's data and its body).
    pub max_payload_size: i64,
    /// Of the waiting changes of a row, send only the newest (`--coalesce`).
    pub coalesced: bool,
    /// Callbacks sent together in one request, as a JSON array (`--batch-size`; 1: one
    /// per request, the payload alone).
    pub batch_size: i32,
}

/// The columns of [`HookSettings`], for SQL written by hand (a unit test keeps this
/// list and the struct in step).
pub const SETTINGS_COLUMNS: [&str; 11] = [
    "target_url",
    "http_method",
    "headers",
    "timeout_ms",
    "max_attempts",
    "auth",
    "signing_secret_env",
    "ca_file",
    "max_payload_size",
    "coalesced",
    "batch_size",
];

impl HookSettings {
    /// A new hook's method, where `--method` does not say otherwise.
    pub const DEFAULT_METHOD: &'static str = "POST";
    /// A new hook's request timeout, where `--timeout` does not say otherwise.
    pub const DEFAULT_TIMEOUT_MS: i32 = 10_000;
    /// A new hook's attempts before an error, where `--max-attempts` does not say otherwise.
    pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;

    /// The settings of a new hook that sends to `url`, where no flag says otherwise.
    pub fn new(url: &str) -> HookSettings {
        HookSettings {
            target_url: url.to_owned(),
            http_method: Self::DEFAULT_METHOD.to_owned(),
            headers: "{}".to_owned(),
            timeout_ms: Self::DEFAULT_TIMEOUT_MS,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            auth: None,
            signing_secret_env: None,
            ca_file: None,
            max_payload_size: crate::payload::size::DEFAULT_MAX_PAYLOAD,
            coalesced: false,
            batch_size: 1,
        }
    }

    /// How long one request may take.
    pub fn timeout(&self) -> std::time::Duration {
        let ms = u64::try_from(self.timeout_ms).unwrap_or(Self::DEFAULT_TIMEOUT_MS as u64);
        std::time::Duration::from_millis(ms)
    }
}

#[derive(
    Debug, Clone, Default, Queryable, Selectable, Insertable, serde::Serialize, serde::Deserialize,
)]
#[diesel(table_name = httphooks_attempts)]
pub struct Attempt {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub callback_id: i64,
    pub attempt: i32,
    pub started_at: NaiveDateTime,
    pub elapsed_ms: i64,
    pub request_method: String,
    pub request_url: String,
    /// A JSON array of [name, value] pairs, secrets redacted.
    pub request_headers: String,
    pub request_body: String,
    pub response_status_code: Option<i32>,
    pub response_reason: Option<String>,
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    /// The batch it went in (`--batch-size`): the request's webhook-id, its size and this
    /// callback's place in it; None for a request of one callback.
    pub batch: Option<String>,
    /// A batch's answer is recorded once: in the other members' attempts
    /// `response_body` is None and this names the member (the batch's first) whose
    /// attempt with the same `started_at` holds it (see [`Attempt::answer_elsewhere`]).
    #[serde(default)]
    pub response_body_callback_id: Option<i64>,
}

impl Attempt {
    /// Where this attempt's response body is when it is not in it: the callback whose
    /// attempt of the same start holds it.
    pub fn answer_elsewhere(&self) -> Option<(i64, NaiveDateTime)> {
        self.response_body_callback_id
            .filter(|_| self.response_body.is_none())
            .map(|id| (id, self.started_at))
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn the_settings_columns_are_those_of_hook_settings() {
        use diesel::prelude::*;
        let query = super::httphooks_hook_versions::table.select(super::HookSettings::as_select());
        let sql = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query).to_string();
        let listed: Vec<String> = super::SETTINGS_COLUMNS
            .iter()
            .map(|c| format!("`httphooks_hook_versions`.`{c}`"))
            .collect();
        assert!(
            sql.starts_with(&format!("SELECT {} FROM", listed.join(", "))),
            "{sql}"
        );
    }

    #[test]
    fn statuses_are_stored_by_name_and_other_names_are_not_statuses() {
        for status in [Status::Waiting, Status::Sent, Status::Error] {
            assert_eq!(Status::parse(status.as_str()), Some(status));
            assert_eq!(status.to_string(), status.as_str());
        }
        assert_eq!(Status::parse("held"), None);
        assert_eq!(Status::parse("Waiting"), None);
    }
}
