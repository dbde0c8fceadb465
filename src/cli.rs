//! The command line: every subcommand and flag, as docs/behaviour.md §5 names them. The seed
//! spellings (`send_callbacks`, `--hook_id`) are primary; kebab-case aliases work too.

use std::str::FromStr;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::storage::callbacks::ListedStatus;
use crate::storage::models::{HookSettings, Status};

/// The version and the database backends this binary was built with.
#[cfg(not(feature = "mysql"))]
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (backends: sqlite, postgres)");
/// The version and the database backends this binary was built with.
#[cfg(feature = "mysql")]
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (backends: sqlite, postgres, mysql)"
);

#[derive(Debug, Parser)]
#[command(
    name = "httphooks",
    version = VERSION,
    about = "Turns database changes into reliable HTTP callbacks, delivered by a cron job.",
    after_help = "Exit codes: 0 done; 1 the checked condition was found (monitor threshold exceeded); \
                  2 invalid usage or input (nothing written); 3 environment failure (database, \
                  schema, environment variable)."
)]
pub struct Cli {
    /// The database: sqlite://PATH, a file path, postgres://… or mysql://… [default: httphooks.sqlite3]
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade httphooks' tables (idempotent).
    Migrate,
    /// Deliver due callbacks over HTTP, recording every attempt.
    #[command(
        name = "send_callbacks",
        visible_alias = "send-callbacks",
        after_help = "Examples:\n  httphooks send_callbacks --max-runtime 50s --quiet          # from cron, every minute\n  httphooks send_callbacks --follow --max-runtime 65s --quiet # within milliseconds, every minute\n  httphooks send_callbacks --dry-run --limit 5                # the next requests, nothing sent"
    )]
    SendCallbacks(SendArgs),
    /// Exit 1 when more callbacks of a status than the limit changed recently.
    #[command(name = "monitor_callbacks", visible_alias = "monitor-callbacks")]
    MonitorCallbacks(MonitorArgs),
    /// Delete finished callbacks (and their attempts) older than DAYS days.
    #[command(
        name = "delete_old_callbacks",
        visible_alias = "delete-old-callbacks",
        after_help = "Examples:\n  httphooks delete_old_callbacks 30                  # daily, from cron\n  httphooks delete_old_callbacks 7 --include-waiting"
    )]
    DeleteOldCallbacks(DeleteOldArgs),
    /// Manage hooks.
    #[command(subcommand)]
    Hooks(Box<HooksCommand>),
    /// Inspect, retry or cancel callbacks.
    #[command(subcommand)]
    Callbacks(CallbacksCommand),
    /// Enqueue a custom event for a hook (an insert helper for scripts).
    Enqueue(EnqueueArgs),
    /// Every hook's queue, errors, latency and endpoint, and the recent runs, on one screen.
    Status(FormatArg),
    /// Print a shell completion script (see README: Installing).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): httphooks(1), or a subcommand's, as
    /// `httphooks man send_callbacks` or `httphooks man hooks add`.
    #[command(
        after_help = "Examples:\n  httphooks man send_callbacks | man -l -\n  httphooks man --out-dir contrib/man   # every page, as the Debian package ships them"
    )]
    Man {
        #[arg(value_name = "SUBCOMMAND")]
        subcommand: Vec<String>,
        /// Write every page (httphooks.1 and one per subcommand) into this folder instead.
        #[arg(long = "out-dir", value_name = "DIR", conflicts_with = "subcommand")]
        out_dir: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, Default, ValueEnum, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct FormatArg {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Only callbacks of this hook, by id or name (repeatable).
    #[arg(long = "hook_id", visible_alias = "hook-id", value_name = "ID|NAME")]
    pub hook_id: Vec<String>,
    /// Only these callbacks, sent even if their retry time has not come.
    #[arg(long = "callback", visible_alias = "callbacks", value_name = "ID", num_args = 1..)]
    pub callback: Vec<i64>,
    /// Claim at most N callbacks in this run.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
    pub limit: Option<i64>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16, allow_negative_numbers = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Stop claiming after this long (e.g. 50s, 5m), so cron runs never pile up.
    #[arg(
        long = "max-runtime",
        visible_alias = "max_runtime",
        value_name = "DURATION"
    )]
    pub max_runtime: Option<humantime::Duration>,
    /// Once the queue is drained, wait for new callbacks and send each as it commits,
    /// until --max-runtime (which it needs); run it from cron every minute with
    /// `--max-runtime 65s` and the next run takes over.
    #[arg(long, conflicts_with_all = ["dry_run", "callback", "limit"])]
    pub follow: bool,
    /// Print the requests that would be sent for the oldest due callbacks (1,000, or
    /// --limit); change nothing.
    #[arg(long = "dry-run", visible_alias = "dry_run")]
    pub dry_run: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// At the end of the run, write Prometheus metrics (node_exporter textfile format)
    /// to this file, atomically; one that cannot be written is a warning. Without the
    /// flag, the variable HTTPHOOKS_METRICS_FILE names it (empty: none).
    #[arg(
        long = "metrics-file",
        visible_alias = "metrics_file",
        value_name = "PATH"
    )]
    pub metrics_file: Option<std::path::PathBuf>,
}

/// A `--status` argument: one of `names`, shown in `--help`, parsed as `T`.
fn status_names<T>(names: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: FromStr<Err = String> + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(names).try_map(|name| name.parse::<T>())
}

#[derive(Debug, Args)]
#[command(
    after_help = "Checks: --status (the seed's count), --lag, --no-run-since; any \
                  combination, at least one. Exit 1 when a check fails; with --nagios, \
                  Nagios plugin output and exit codes (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).\n\n\
                  Examples:\n  httphooks monitor_callbacks --status error --callbacks_limit 0 --minutes_ago 10\n  \
                  httphooks monitor_callbacks --lag 15 --no-run-since 10\n  \
                  httphooks monitor_callbacks --lag 15 --warning 5 --nagios"
)]
pub struct MonitorArgs {
    /// The status to count.
    #[arg(long, value_parser = status_names::<Status>(&["waiting", "error"]))]
    pub status: Option<Status>,
    /// Exit 1 when the count is greater than this.
    #[arg(long = "callbacks_limit", visible_alias = "callbacks-limit", default_value_t = 10, value_name = "N",
          allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
    pub callbacks_limit: i64,
    /// Count only callbacks changed in the last M minutes (all of them without it).
    #[arg(long = "minutes_ago", visible_alias = "minutes-ago", value_name = "M",
          allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
    pub minutes_ago: Option<i64>,
    /// Exit 1 when the oldest due callback has waited longer than this (a stopped cron,
    /// a stuck run, a dead endpoint).
    #[arg(long, value_name = "MINUTES", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=MAX_MINUTES))]
    pub lag: Option<i64>,
    /// Exit 1 when no send_callbacks run finished in this time (a dead man's switch).
    #[arg(long = "no-run-since", visible_alias = "no_run_since", value_name = "MINUTES",
          allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=MAX_MINUTES))]
    pub no_run_since: Option<i64>,
    /// Nagios plugin output: one status line with performance data, exit 0/1/2/3.
    #[arg(long)]
    pub nagios: bool,
    /// --nagios with one check: WARNING above this (in the check's unit: callbacks or minutes).
    #[arg(long, requires = "nagios", value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=MAX_MINUTES))]
    pub warning: Option<i64>,
    /// --nagios with one check: CRITICAL above this (default: the check's own limit).
    #[arg(long, requires = "nagios", value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=MAX_MINUTES))]
    pub critical: Option<i64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The longest span in minutes a flag takes: 100 years.
pub const MAX_MINUTES: i64 = 100 * 366 * 24 * 60;

#[derive(Debug, Args)]
pub struct DeleteOldArgs {
    /// Delete callbacks created more than DAYS days ago.
    // Negative numbers are read as a value, so that `-1` is refused as out of range
    // rather than taken for an unknown flag.
    #[arg(value_name = "DAYS", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..),
          required_unless_present = "days_flag", conflicts_with = "days_flag")]
    pub days: Option<i64>,
    /// The same as DAYS, as a flag.
    #[arg(long = "days", value_name = "DAYS", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
    pub days_flag: Option<i64>,
    /// Delete waiting callbacks too (they are kept by default).
    #[arg(long = "include-waiting", visible_alias = "include_waiting")]
    pub include_waiting: bool,
    /// Callbacks deleted per transaction at most (one range of this many ids).
    #[arg(long = "batch-size", default_value_t = 10000, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
    pub batch_size: i64,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Create a hook (and its table's triggers).
    #[command(
        after_help = "Examples:\n  httphooks hooks add orders --table orders --events insert,update --url https://example.com/hooks/orders\n  httphooks hooks add paid --events order.paid --url https://example.com/paid --signing-secret-env HOOK_SECRET\n  httphooks hooks add mirror --table items --events insert,update,delete --url http://cache:8080/items --ordered --coalesce"
    )]
    Add(HookAddArgs),
    /// List hooks.
    List(FormatArg),
    /// Show one hook.
    Show {
        name: String,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Change a hook; only the flags given change.
    Edit(HookEditArgs),
    /// Enable a hook: its events create callbacks again.
    Enable { name: String },
    /// Disable a hook: its events create no callbacks.
    Disable { name: String },
    /// Remove a hook (and its table's triggers when it was the last hook there).
    Remove {
        name: String,
        /// Remove even when callbacks are still waiting (they are cancelled).
        #[arg(long)]
        force: bool,
    },
    /// Re-create triggers after a table's columns changed: every watched table, or the
    /// one a hook watches, or a table named directly. Goes on past tables that are gone
    /// and then exits 3.
    Sync {
        #[arg(value_name = "HOOK_OR_TABLE")]
        name: Option<String>,
    },
    /// Print the SQL that creates a watched table's triggers for its current columns,
    /// or with --drop the SQL that drops them (for a migration that changes the table).
    Triggers {
        table: String,
        /// Print the SQL that drops the triggers instead.
        #[arg(long)]
        drop: bool,
    },
    /// Build the request a real event would produce and show it (--dry-run) or send it
    /// once; nothing is written to the callbacks table.
    Test(HookTestArgs),
    /// Make a callback (event `backfill`, shaped like an insert's) for every existing row
    /// of the hook's table, in key order, a batch at a time.
    #[command(
        after_help = "Examples:\n  httphooks hooks backfill orders\n  httphooks hooks backfill orders --where \"created_at > '2026-01-01'\" --chunk-size 5000\n  httphooks hooks backfill orders --after '[41000]'   # go on where a stopped one ended"
    )]
    Backfill(BackfillArgs),
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    pub name: String,
    /// Only rows where this SQL condition on the table's columns holds
    /// (e.g. "created_at > '2026-01-01'").
    #[arg(long = "where", value_name = "SQL")]
    pub condition: Option<String>,
    /// Rows per batch; each batch is one short transaction.
    #[arg(long = "chunk-size", visible_alias = "chunk_size", value_name = "N", default_value_t = 1000,
          allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub chunk_size: i64,
    /// Go on after this key (a JSON array, as a stopped backfill prints it).
    #[arg(long, value_name = "KEY")]
    pub after: Option<String>,
}

#[derive(Debug, Args)]
pub struct HookTestArgs {
    pub name: String,
    /// The event to simulate (default: the hook's first).
    #[arg(long)]
    pub event: Option<String>,
    /// The row (table hooks, over a sample row) or the event data (custom events), as JSON.
    #[arg(long)]
    pub data: Option<String>,
    /// Send to this URL instead of the hook's.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// Show the request, with how it would authenticate; send nothing.
    #[arg(long = "dry-run", visible_alias = "dry_run")]
    pub dry_run: bool,
}

/// The definition flags shared by `hooks add` and `hooks edit`.
#[derive(Debug, Args)]
pub struct HookDefinition {
    /// The table whose row changes fire the hook (omit for custom events).
    #[arg(long)]
    pub table: Option<String>,
    /// Comma-separated: insert, update, delete, or custom names like attempt.submitted.
    #[arg(long, value_delimiter = ',')]
    pub events: Option<Vec<String>>,
    /// The absolute http(s) URL to send to.
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long, help = format!("POST, PUT, PATCH, DELETE or GET [new hooks: {}]", HookSettings::DEFAULT_METHOD))]
    pub method: Option<String>,
    /// 'Name: value' (repeatable, or a JSON object); ${VAR} is read from the environment at send time.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// application/json, application/xml, application/x-www-form-urlencoded or text/plain
    /// [new hooks: application/json]
    #[arg(long = "content-type")]
    pub content_type: Option<String>,
    /// The payload template (see README: Hooks, triggers and payloads).
    #[arg(long, conflicts_with = "template_file")]
    pub template: Option<String>,
    /// Read the payload template from a file.
    #[arg(long = "template-file", value_name = "FILE")]
    pub template_file: Option<std::path::PathBuf>,
    /// Comma-separated columns that identify a row (object_id), for a table without a
    /// primary key; every hook of a table must use the same key.
    #[arg(long, value_delimiter = ',', value_name = "COL,…")]
    pub key: Option<Vec<String>>,
    /// Comma-separated columns: an update fires only if one of them changed.
    #[arg(long = "when-changed", value_delimiter = ',', value_name = "COL,…")]
    pub when_changed: Option<Vec<String>>,
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true, help = format!(
        "Request timeout, e.g. 1500ms [new hooks: {}s]",
        HookSettings::DEFAULT_TIMEOUT_MS / 1000
    ))]
    pub timeout: Option<humantime::Duration>,
    #[arg(long = "max-attempts", value_name = "N", allow_negative_numbers = true, help = format!(
        "Attempts before a callback becomes an error [new hooks: {}]",
        HookSettings::DEFAULT_MAX_ATTEMPTS
    ))]
    pub max_attempts: Option<i32>,
    /// The most one callback may hold, its change's data and its body, e.g. 1MB, 512KB: a
    /// larger one fails alone, at once, saying why [new hooks: 10MB]
    #[arg(
        long = "max-payload-size",
        value_name = "SIZE",
        allow_negative_numbers = true
    )]
    pub max_payload_size: Option<String>,
    /// How to authenticate: none, basic, bearer or oauth2-client-credentials.
    #[arg(long, value_parser = ["none", "basic", "bearer", "oauth2-client-credentials"])]
    pub auth: Option<String>,
    /// basic: the variable holding the user name.
    #[arg(long = "username-env", value_name = "VAR")]
    pub username_env: Option<String>,
    /// basic: the variable holding the password.
    #[arg(long = "password-env", value_name = "VAR")]
    pub password_env: Option<String>,
    /// bearer: the variable holding the token.
    #[arg(long = "token-env", value_name = "VAR")]
    pub token_env: Option<String>,
    /// oauth2-client-credentials: the token endpoint.
    #[arg(long = "token-url", value_name = "URL")]
    pub token_url: Option<String>,
    /// oauth2-client-credentials: the variable holding the client id.
    #[arg(long = "client-id-env", value_name = "VAR")]
    pub client_id_env: Option<String>,
    /// oauth2-client-credentials: the variable holding the client secret.
    #[arg(long = "client-secret-env", value_name = "VAR")]
    pub client_secret_env: Option<String>,
    /// oauth2-client-credentials: the scope to ask for.
    #[arg(long)]
    pub scope: Option<String>,
    /// oauth2-client-credentials: the audience to ask for.
    #[arg(long)]
    pub audience: Option<String>,
    /// Sign requests (Standard Webhooks) with the whsec_ secret(s) in this variable;
    /// several, separated by spaces, during a rotation.
    #[arg(long = "signing-secret-env", value_name = "VAR")]
    pub signing_secret_env: Option<String>,
    /// Trust this CA certificate file (PEM) for the target, besides the usual roots.
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Deliver callbacks of the same row (of the hook, for custom events) one at a time,
    /// in the order they were made, even with concurrency.
    #[arg(long)]
    pub ordered: bool,
    /// Of the waiting changes of a row, send only the newest: older inserts and updates
    /// not yet attempted are marked superseded (a delete is always sent).
    #[arg(long)]
    pub coalesce: bool,
    /// Send up to N waiting callbacks in one request, as a JSON array of their payloads
    /// in callback order (application/json hooks; 1 sends each payload alone).
    #[arg(long = "batch-size", value_name = "N", allow_negative_numbers = true)]
    pub batch_size: Option<i32>,
    /// Sample data (JSON) to validate a custom-event hook's template against.
    #[arg(long = "sample-data", value_name = "JSON")]
    pub sample_data: Option<String>,
}

#[derive(Debug, Args)]
pub struct HookAddArgs {
    pub name: String,
    #[command(flatten)]
    pub definition: HookDefinition,
    /// Create the hook disabled.
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Debug, Args)]
pub struct HookEditArgs {
    pub name: String,
    #[command(flatten)]
    pub definition: HookDefinition,
    /// Give the hook a new name.
    #[arg(long)]
    pub rename: Option<String>,
    /// Remove all headers (before adding any given with --header).
    #[arg(long = "clear-headers")]
    pub clear_headers: bool,
    /// Remove the template: send the default payload.
    #[arg(long = "no-template", conflicts_with_all = ["template", "template_file"])]
    pub no_template: bool,
    /// Stop signing requests.
    #[arg(long = "no-signing", conflicts_with = "signing_secret_env")]
    pub no_signing: bool,
    /// Trust only the usual roots again.
    #[arg(long = "no-ca-file", conflicts_with = "ca_file")]
    pub no_ca_file: bool,
    /// Deliver in any order again.
    #[arg(long = "no-ordered", conflicts_with = "ordered")]
    pub no_ordered: bool,
    /// Fire on every update again.
    #[arg(long = "no-when-changed", conflicts_with = "when_changed")]
    pub no_when_changed: bool,
    /// Send every change again, not only a row's newest.
    #[arg(long = "no-coalesce", conflicts_with = "coalesce")]
    pub no_coalesce: bool,
}

#[derive(Debug, Subcommand)]
pub enum CallbacksCommand {
    /// List callbacks, newest first; or count them per hook and failure reason.
    List {
        /// waiting, sent, error or superseded (--coalesce); held lists the waiting
        /// callbacks of disabled hooks.
        #[arg(long, value_parser = status_names::<ListedStatus>(&["waiting", "held", "sent", "error", "superseded"]))]
        status: Option<ListedStatus>,
        /// Only callbacks of the hook with this name.
        #[arg(long)]
        hook: Option<String>,
        #[command(flatten)]
        made: MadeBetween,
        #[arg(long, default_value_t = 50, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
        /// Count the callbacks instead of listing them: per hook, per reason (the
        /// outcome without its attempt numbers), or both (`hook,reason`).
        #[arg(long = "group-by", visible_alias = "group_by", value_delimiter = ',',
              value_parser = ["hook", "reason"])]
        group_by: Vec<String>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show one callback with its attempts.
    Show {
        id: i64,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Why a callback is or is not being sent now, and the command that changes it.
    Explain {
        id: i64,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Put callbacks back to waiting, due now: by id, or all that match the filters
    /// (failed ones unless --status says otherwise). Those that never rendered (nothing
    /// was sent for them) are rendered with their hook's current template.
    #[command(
        after_help = "Examples:\n  httphooks callbacks retry 41 42\n  httphooks callbacks retry --hook orders --status waiting --since 6h   # backing off: now\n  httphooks callbacks retry --hook orders --status error --since 1d --dry-run\n  httphooks callbacks retry --hook orders --status sent --force --since 2h   # a replay"
    )]
    Retry {
        /// The callbacks; or choose them with --hook, --status, --since, --until.
        ids: Vec<i64>,
        #[command(flatten)]
        filter: OperatorFilter,
        /// error (the default with filters), waiting (backing off: due now, with a fresh
        /// budget of attempts) or sent (a replay: needs --force).
        #[arg(long, value_parser = status_names::<Status>(&["error", "waiting", "sent"]), conflicts_with = "ids")]
        status: Option<Status>,
        /// Send callbacks that were already sent once more (the same webhook-id, so
        /// receivers can tell).
        #[arg(long)]
        force: bool,
        /// Render the body again with the hook's current template and content type,
        /// even for callbacks that were rendered (and perhaps sent) before.
        #[arg(long = "with-current-hook", visible_alias = "with_current_hook")]
        with_current_hook: bool,
    },
    /// Cancel waiting callbacks (they become errors and are not sent): by id, or all
    /// waiting ones that match the filters.
    Cancel {
        /// The callbacks; or choose them with --hook, --since, --until.
        ids: Vec<i64>,
        #[command(flatten)]
        filter: OperatorFilter,
    },
}

/// When callbacks were made: `--since 6h` (ago) or a time (`2026-12-01T08:00:00Z`,
/// `2026-12-01 08:00`, UTC).
#[derive(Debug, Args, Clone, Default)]
pub struct MadeBetween {
    /// Only callbacks made at or after this (a span ago, e.g. 6h, 2d; or a UTC time).
    #[arg(long, value_name = "AGO|TIME", value_parser = parse_moment)]
    pub since: Option<chrono::NaiveDateTime>,
    /// Only callbacks made before this (a span ago or a UTC time).
    #[arg(long, value_name = "AGO|TIME", value_parser = parse_moment)]
    pub until: Option<chrono::NaiveDateTime>,
}

impl MadeBetween {
    /// Refuses a span that ends before it starts.
    pub fn check(&self) -> crate::error::Result<()> {
        match (self.since, self.until) {
            (Some(since), Some(until)) if until <= since => Err(crate::error::Error::invalid(format!(
                "--until ({} UTC) is not after --since ({} UTC); give a span that ends after it starts",
                until.format("%Y-%m-%d %H:%M:%S"),
                since.format("%Y-%m-%d %H:%M:%S")
            ))),
            _ => Ok(()),
        }
    }
}

/// Which callbacks `callbacks retry` and `cancel` take when no ids are given.
#[derive(Debug, Args, Clone, Default)]
pub struct OperatorFilter {
    /// Only callbacks of the hook with this name (repeatable).
    #[arg(long, conflicts_with = "ids")]
    pub hook: Vec<String>,
    #[command(flatten)]
    pub made: MadeBetween,
    /// Say how many callbacks would change, and change nothing.
    #[arg(long = "dry-run", visible_alias = "dry_run")]
    pub dry_run: bool,
}

/// A moment as `--since`/`--until` take it: a span before now (`90m`, `6h`, `2d`), or a
/// UTC time (RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]`).
fn parse_moment(text: &str) -> Result<chrono::NaiveDateTime, String> {
    if let Ok(span) = humantime::parse_duration(text) {
        let span = chrono::Duration::from_std(span).map_err(|e| e.to_string())?;
        return chrono::Utc::now()
            .naive_utc()
            .checked_sub_signed(span)
            .ok_or_else(|| format!("{text} ago is before any date"));
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.naive_utc());
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(time) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(time);
        }
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN));
    }
    Err(format!(
        "`{text}` is neither a span ago (6h, 2d, 90m) nor a UTC time (2026-12-01T08:00:00Z, 2026-12-01 08:00)"
    ))
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The hook's name.
    #[arg(long)]
    pub hook: String,
    /// The custom event, e.g. attempt.submitted.
    #[arg(long)]
    pub event: String,
    /// The event's data as JSON.
    #[arg(long, default_value = "{}")]
    pub data: String,
}

/// Reports a command line clap refused. A Nagios check (`--nagios` anywhere) says
/// UNKNOWN on one line and exits 3, as the plugin guidelines ask for bad arguments;
/// everything else gets clap's message and exit 2 (0 for --help and --version).
pub fn usage_error(error: clap::Error) -> std::process::ExitCode {
    let nagios = std::env::args_os().any(|arg| arg == "--nagios");
    let is_usage_error = !matches!(
        error.kind(),
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
    );
    if nagios && is_usage_error {
        let rendered = error.render().to_string();
        // The message, without the usage and hints clap adds, on one line.
        let message: Vec<&str> = rendered
            .lines()
            .map(str::trim)
            .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more"))
            .filter(|line| !line.is_empty())
            .collect();
        let message = message.join(" ");
        println!(
            "HTTPHOOKS UNKNOWN - {}; see `httphooks monitor_callbacks --help`",
            message.trim_start_matches("error: ")
        );
        return std::process::ExitCode::from(3);
    }
    let _ = error.print();
    std::process::ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}
