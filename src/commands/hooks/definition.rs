//! Raw flags to a validated hook: every field of a definition is checked, in full,
//! before anything is written (docs/behaviour.md §2).

use serde_json::Value;

use super::*;
use crate::cli::HookDefinition;
use crate::delivery::auth::{Auth, OAuth2Settings};
use crate::delivery::headers::{literal_dollar_warnings, parse_header_args};
use crate::error::{Error, Result};
use crate::payload::size;
use crate::payload::{check_against_columns, render_sample, ContentType, EventContext, Renderer};
use crate::storage::models::{join_events, Hook, HookContent, HookRow, HookSettings};
use crate::storage::{hooks, Column, Db, Table, TableEvent};

/// The headers given are saved as they are; a `$VAR` among them most likely meant
/// `${VAR}`, so say so (on stderr, where it does not disturb scripts).
pub(super) fn warn_about_literal_dollars(def: &HookDefinition) -> Result<()> {
    let given = parse_header_args(&def.headers).map_err(Error::Invalid)?;
    for warning in literal_dollar_warnings(&given) {
        eprintln!("httphooks: warning: {warning}");
    }
    Ok(())
}

pub(super) fn read_template(def: &HookDefinition) -> Result<Option<String>> {
    if let Some(path) = &def.template_file {
        return std::fs::read_to_string(path).map(Some).map_err(|e| {
            Error::invalid(format!(
                "cannot read the template file {}: {e}; check the path",
                path.display()
            ))
        });
    }
    Ok(def.template.clone())
}

/// A hook definition before validation: the hook's row, and its version's content and
/// settings.
pub(super) struct Draft {
    pub(super) name: String,
    pub(super) table: Option<String>,
    pub(super) events: Vec<String>,
    pub(super) enabled: bool,
    pub(super) key: Option<Vec<String>>,
    pub(super) when_changed: Option<Vec<String>>,
    pub(super) content: HookContent,
    pub(super) settings: HookSettings,
}

impl Draft {
    /// A new hook as `hooks add` starts it, before its flags: the defaults.
    pub(super) fn new(name: &str, events: Vec<String>, url: &str) -> Draft {
        Draft {
            name: name.to_owned(),
            table: None,
            events,
            enabled: true,
            key: None,
            when_changed: None,
            content: HookContent::default(),
            settings: HookSettings::new(url),
        }
    }
}

impl From<&Hook> for Draft {
    fn from(hook: &Hook) -> Self {
        Draft {
            name: hook.name.clone(),
            table: hook.table_name.clone(),
            events: hook.event_list(),
            enabled: hook.enabled,
            key: hook.key_list(),
            when_changed: hook.when_changed.as_ref().map(|_| hook.when_changed_list()),
            content: hook.content.clone(),
            settings: hook.settings.clone(),
        }
    }
}

/// A hook definition that passed every check: what to store.
pub(super) struct Validated {
    pub(super) row: HookRow,
    pub(super) content: HookContent,
    pub(super) settings: HookSettings,
}

pub(super) fn valid_event_name(event: &str) -> bool {
    !event.is_empty()
        && event.len() <= 100
        && event
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
}

/// Checks everything a hook definition holds and returns what to store, with the
/// table's columns for its triggers. Nothing is written here.
pub(super) fn validate(
    db: &mut Db,
    draft: &Draft,
    sample_data: Option<&str>,
    editing: Option<i64>,
) -> Result<Validated> {
    let name = check_name(&draft.name)?;
    let events = check_events(&draft.events)?;
    let table = match &draft.table {
        Some(table) => Some(check_table(
            db,
            table,
            &events,
            draft.key.as_deref(),
            editing,
        )?),
        None => {
            check_custom_events(&events, draft)?;
            None
        }
    };
    let settings = check_settings(&draft.settings)?;
    let content_type = ContentType::parse(&draft.content.content_type).ok_or_else(|| {
        Error::invalid(format!(
            "{:?} is not a supported content type; use {}",
            draft.content.content_type,
            ContentType::ALLOWED
        ))
    })?;
    check_batch(&settings, content_type)?;
    let when_changed = check_when_changed(draft, &events, table.as_ref())?;
    check_template(
        draft,
        &name,
        &events,
        content_type,
        table.as_ref().map(|t| t.columns.as_slice()),
        sample_data,
    )?;
    let row = HookRow {
        name,
        table_name: table.as_ref().map(|t| t.name.clone()),
        events: join_events(&events),
        enabled: draft.enabled,
        when_changed,
        table_oid: table.as_ref().and_then(|t| t.oid),
        key_columns: match (&table, &draft.key) {
            (Some(_), Some(key)) => {
                Some(serde_json::to_string(&key_names(key)).expect("strings serialize"))
            }
            _ => None,
        },
    };
    let content = HookContent {
        content_type: draft.content.content_type.trim().to_owned(),
        ..draft.content.clone()
    };
    Ok(Validated {
        row,
        content,
        settings,
    })
}

fn check_name(given: &str) -> Result<String> {
    let name = given.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(|c| c.is_control() || c == ',') {
        return Err(Error::invalid(
            "a hook name must be 1 to 100 characters without commas or control characters",
        ));
    }
    // `--hook_id` and `hooks show` take an id or a name: a name of digits would be read
    // as another hook's id.
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(format!(
            "a hook name cannot be a number ({name}), which commands would read as a hook's id; choose a name with a letter, such as hook-{name}"
        )));
    }
    Ok(name.to_owned())
}

/// The events, lower case, each once.
fn check_events(given: &[String]) -> Result<Vec<String>> {
    let mut events: Vec<String> = Vec::new();
    for event in given {
        let event = event.trim().to_ascii_lowercase();
        if !valid_event_name(&event) {
            return Err(Error::invalid(format!(
                "{event:?} is not a valid event name; use insert, update, delete or a name like attempt.submitted"
            )));
        }
        if !events.contains(&event) {
            events.push(event);
        }
    }
    if events.is_empty() {
        return Err(Error::invalid(
            "--events needs at least one event (e.g. insert,update)",
        ));
    }
    Ok(events)
}

/// The watched table, keyed as its hooks identify rows.
fn check_table(
    db: &mut Db,
    table: &str,
    events: &[String],
    key: Option<&[String]>,
    editing: Option<i64>,
) -> Result<Table> {
    if table.to_ascii_lowercase().starts_with("httphooks_") {
        return Err(Error::invalid(
            "hooks cannot watch httphooks' own tables; choose an application table",
        ));
    }
    if let Some(custom) = events.iter().find(|e| TableEvent::parse(e).is_none()) {
        return Err(Error::invalid(format!(
            "a table hook takes only insert, update, delete and truncate, not {custom:?}; omit --table for custom events"
        )));
    }
    let listens = |wanted: TableEvent| events.iter().any(|e| TableEvent::parse(e) == Some(wanted));
    if listens(TableEvent::Truncate) && !db.backend().profile().captures_truncate {
        return Err(Error::invalid(format!(
            "{} fires no trigger on TRUNCATE, so a hook cannot listen to truncate there \
             (README: What is captured); remove truncate from --events",
            db.backend().profile().name
        )));
    }
    let found = db.backend().find_table(table)?.ok_or_else(|| {
        Error::invalid(format!(
            "there is no table {table:?} in the {} database; create it first or check the name{}",
            db.backend().profile().name,
            db.backend()
                .profile()
                .other_schema_hint
                .map(|hint| format!(" ({hint})"))
                .unwrap_or_default()
        ))
    })?;
    check_partition_tree(db, &found, editing)?;
    check_key(db, found, key, editing)
}

fn check_custom_events(events: &[String], draft: &Draft) -> Result<()> {
    if draft.key.is_some() {
        return Err(Error::invalid(
            "--key names a table's key columns; give --table too, or omit --key for custom events",
        ));
    }
    if let Some(row_event) = events.iter().find(|e| TableEvent::parse(e).is_some()) {
        return Err(Error::invalid(format!(
            "the {row_event} event needs --table; hooks without a table take custom events only"
        )));
    }
    if draft.settings.coalesced {
        return Err(Error::invalid(
            "--coalesce folds the changes of a table's row, and custom events have no row; give --table too, or omit --coalesce",
        ));
    }
    Ok(())
}

/// Each setting in its range (docs/behaviour.md §2, §8), as it will be stored.
fn check_settings(given: &HookSettings) -> Result<HookSettings> {
    let mut settings = given.clone();
    settings.target_url = settings.target_url.trim().to_owned();
    check_url("--url", &settings.target_url)?;
    let method = settings.http_method.trim().to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(Error::invalid(format!(
            "{:?} is not a supported method; use one of {}",
            settings.http_method,
            METHODS.join(", ")
        )));
    }
    settings.http_method = method;
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&settings.timeout()) || settings.timeout_ms < 0 {
        return Err(Error::invalid("--timeout must be between 100ms and 5m"));
    }
    if !(1..=50).contains(&settings.max_attempts) {
        return Err(Error::invalid("--max-attempts must be between 1 and 50"));
    }
    if !(size::MIN_MAX_PAYLOAD..=size::MAX_MAX_PAYLOAD).contains(&settings.max_payload_size) {
        return Err(Error::invalid(format!(
            "--max-payload-size must be between {} and {}",
            size::format(size::MIN_MAX_PAYLOAD),
            size::format(size::MAX_MAX_PAYLOAD)
        )));
    }
    if let Some(variable) = &settings.signing_secret_env {
        check_variable_name("--signing-secret-env", variable)?;
    }
    Ok(settings)
}

/// The most callbacks one request may carry (`--batch-size`).
pub const MAX_BATCH_SIZE: i32 = 1000;

/// A batch is a JSON array of payloads: only JSON bodies, sent with a body, make one.
fn check_batch(settings: &HookSettings, content_type: ContentType) -> Result<()> {
    if !(1..=MAX_BATCH_SIZE).contains(&settings.batch_size) {
        return Err(Error::invalid(format!(
            "--batch-size must be between 1 and {MAX_BATCH_SIZE}"
        )));
    }
    if settings.batch_size == 1 {
        return Ok(());
    }
    if content_type != ContentType::Json {
        return Err(Error::invalid(
            "--batch-size above 1 sends a JSON array of payloads, so it needs --content-type application/json; use --batch-size 1 for other content types",
        ));
    }
    if settings.http_method == "GET" {
        return Err(Error::invalid(
            "--batch-size above 1 sends the payloads as a request body, which GET does not carry; use --method POST (or PUT, PATCH) or --batch-size 1",
        ));
    }
    Ok(())
}

/// The columns whose change makes an update count, as stored (a JSON array).
fn check_when_changed(
    draft: &Draft,
    events: &[String],
    table: Option<&Table>,
) -> Result<Option<String>> {
    let Some(list) = &draft.when_changed else {
        return Ok(None);
    };
    let list: Vec<String> = list
        .iter()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let Some(table) = table else {
        return Err(Error::invalid(
            "--when-changed needs --table: it filters a table's updates",
        ));
    };
    if !events
        .iter()
        .any(|e| TableEvent::parse(e) == Some(TableEvent::Update))
    {
        return Err(Error::invalid(
            "--when-changed filters updates; add update to --events",
        ));
    }
    if list.is_empty() {
        return Err(Error::invalid("--when-changed needs at least one column"));
    }
    if let Some(unknown) = list
        .iter()
        .find(|c| !table.columns.iter().any(|col| &col.name == *c))
    {
        return Err(Error::invalid(format!(
            "--when-changed names {unknown:?}, which is not a column of table {}; check the spelling",
            table.name
        )));
    }
    Ok(Some(
        serde_json::to_string(&list).expect("strings serialize"),
    ))
}

/// One table of a partition tree may be watched (PostgreSQL): a hook on a partitioned
/// table gets the changes of every partition, through the same trigger cloned onto them.
fn check_partition_tree(db: &mut Db, table: &Table, editing: Option<i64>) -> Result<()> {
    let relatives = db.backend().partition_relatives(table)?;
    if relatives.is_empty() {
        return Ok(());
    }
    for other in hooks::list(db)? {
        if Some(other.id) == editing {
            continue;
        }
        if let Some(watched) = other.table_name.filter(|name| relatives.contains(name)) {
            return Err(Error::invalid(format!(
                "table {} and table {watched} are in one partition tree and hook {} already \
                 watches {watched}; watch one table per partition tree (a partitioned table's \
                 hooks get every partition's changes), or move hook {} to another table first",
                table.name, other.name, other.name
            )));
        }
    }
    Ok(())
}

pub(super) fn key_names(given: &[String]) -> Vec<String> {
    given
        .iter()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

/// The table keyed as the hook's `object_id` will be: by `--key` (columns that must
/// exist), else by its primary key; a table without one needs `--key`. Every hook of a
/// table must use the same key (one trigger serves them all).
pub(super) fn check_key(
    db: &mut Db,
    table: Table,
    given: Option<&[String]>,
    editing: Option<i64>,
) -> Result<Table> {
    let primary = table.key_names();
    let key = match given.map(key_names) {
        Some(key) if key.is_empty() => {
            return Err(Error::invalid(
                "--key needs at least one column (e.g. --key id or --key order_id,line)",
            ))
        }
        Some(key) => {
            if let Some(unknown) = key
                .iter()
                .find(|k| !table.columns.iter().any(|c| &c.name == *k))
            {
                return Err(Error::invalid(format!(
                    "--key names {unknown:?}, which is not a column of table {}; check the spelling",
                    table.name
                )));
            }
            key
        }
        None if primary.is_empty() => {
            return Err(Error::invalid(format!(
            "table {} has no primary key; name the columns that identify a row with --key COL,…",
            table.name
        )))
        }
        None => primary.clone(),
    };
    for other in hooks::hooks_on_table(db, &table.name)? {
        if Some(other.id) == editing {
            continue;
        }
        let theirs = other.key_list().unwrap_or_else(|| primary.clone());
        if theirs != key {
            return Err(Error::invalid(format!(
                "hook {} identifies rows of table {} by ({}), and all hooks of a table must use the same key; give --key {}",
                other.name,
                table.name,
                theirs.join(", "),
                theirs.join(",")
            )));
        }
    }
    Ok(table.keyed_by(Some(&key)))
}

/// Renders the template (or default payload) against a sample for every event the hook
/// takes: it must parse and yield a valid document for its content type.
pub(super) fn check_template(
    draft: &Draft,
    name: &str,
    events: &[String],
    content_type: ContentType,
    columns: Option<&[Column]>,
    sample_data: Option<&str>,
) -> Result<()> {
    let mut renderer = Renderer::new();
    let template = draft.content.payload_template.as_deref();
    let fail = |event: &str, problem: crate::payload::PayloadError| {
        let hint = if TableEvent::parse(event) == Some(TableEvent::Truncate) {
            " (a truncate event has no row: instance and old are null, so test them with {% if instance %})"
        } else {
            ""
        };
        Error::invalid(format!(
            "hook {name}: for {event} events {problem}; fix the template{hint} and try again"
        ))
    };
    match (columns, &draft.table) {
        (Some(columns), Some(table)) => {
            check_against_columns(
                &mut renderer,
                template,
                content_type,
                name,
                table,
                events,
                columns,
            )
            .map_err(|(event, problem)| fail(&event, problem))?;
        }
        _ => match sample_data {
            Some(sample) => {
                let data: Value = serde_json::from_str(sample).map_err(|e| {
                    Error::invalid(format!(
                        "--sample-data is not valid JSON ({e}); pass a JSON document"
                    ))
                })?;
                for event in events {
                    let mut context = EventContext::sample(name, "", event, &[]);
                    context.table = None;
                    context.instance = None;
                    context.old = None;
                    context.object_id = None;
                    context.data = Some(data.clone());
                    render_sample(&mut renderer, template, content_type, &context, &[])
                        .map_err(|p| fail(event, p))?;
                }
            }
            None => {
                if content_type == ContentType::Xml && template.is_none() {
                    return Err(Error::invalid(
                        "an application/xml hook needs a template (--template or --template-file)",
                    ));
                }
                if let Some(template) = template {
                    renderer.check_syntax(template, content_type).map_err(|p| {
                        Error::invalid(format!("hook {name}: {p}; fix the template and try again"))
                    })?;
                }
            }
        },
    }
    Ok(())
}

/// An absolute http(s) URL with a host that the HTTP client can send as it is: checked
/// with the parser ureq itself uses, so a URL it would refuse at every attempt (a space
/// in the path) is refused here instead, once.
pub(super) fn check_url(flag: &str, given: &str) -> Result<()> {
    let text = given.trim();
    let url = url::Url::parse(text).map_err(|e| {
        Error::invalid(format!(
            "{flag} {given:?} is not a valid URL ({e}); give an absolute http:// or https:// URL"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(format!(
            "{flag} {given:?} is not an http(s) URL with a host; give an absolute http:// or https:// URL"
        )));
    }
    if let Err(e) = text.parse::<ureq::http::Uri>() {
        return Err(Error::invalid(format!(
            "{flag} {given:?} cannot be sent by the HTTP client ({e}); percent-encode spaces and other special characters (a space is %20, as in {})",
            url.as_str()
        )));
    }
    Ok(())
}

pub(super) fn check_variable_name(flag: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{flag} takes the name of an environment variable (letters, digits, _), not {name:?}"
        )))
    }
}

/// The authentication the flags describe: None when none of them is given (keep what
/// the hook has), Some(None) for `--auth none`. Flags given without `--auth` change
/// the hook's `current` authentication of their kind; a value not given keeps the
/// current one where the kind stays. Only variable names are kept.
pub(super) fn auth_from_flags(
    def: &HookDefinition,
    current: Option<&Auth>,
) -> Result<Option<Option<String>>> {
    let flags = [
        ("--username-env", &def.username_env, "basic"),
        ("--password-env", &def.password_env, "basic"),
        ("--token-env", &def.token_env, "bearer"),
        ("--token-url", &def.token_url, OAUTH2),
        ("--client-id-env", &def.client_id_env, OAUTH2),
        ("--client-secret-env", &def.client_secret_env, OAUTH2),
        ("--scope", &def.scope, OAUTH2),
        ("--audience", &def.audience, OAUTH2),
    ];
    let given_flags: Vec<(&str, &str)> = flags
        .iter()
        .filter(|(_, value, _)| value.is_some())
        .map(|(flag, _, kind)| (*flag, *kind))
        .collect();
    let kind = match (def.auth.as_deref(), current) {
        (Some(kind), _) => kind,
        (None, _) if given_flags.is_empty() => return Ok(None),
        (None, Some(auth)) => auth.kind(),
        (None, None) => {
            return Err(Error::invalid(format!(
            "{} goes with --auth, and the hook has no authentication; say which kind with --auth",
            given_flags[0].0
        )))
        }
    };
    if kind == "none" {
        return Ok(Some(None));
    }
    if let Some((flag, _)) = given_flags.iter().find(|(_, of)| *of != kind) {
        return Err(Error::invalid(format!(
            "{flag} does not go with {kind} authentication; give --auth with the kind it belongs to"
        )));
    }
    // What the hook has, kept where no flag replaces it (the same kind only).
    let kept = current.filter(|auth| auth.kind() == kind);
    let value = |flag: &str, given: &Option<String>, kept: Option<&String>| -> Result<String> {
        let value = given
            .clone()
            .or_else(|| kept.cloned())
            .ok_or_else(|| Error::invalid(format!("--auth {kind} needs {flag}")))?;
        if flag.ends_with("-env") {
            check_variable_name(flag, &value)?;
        }
        Ok(value)
    };
    let auth = match (kind, kept) {
        ("basic", kept) => {
            let (user, password) = match kept {
                Some(Auth::Basic {
                    username_env,
                    password_env,
                }) => (Some(username_env), Some(password_env)),
                _ => (None, None),
            };
            Auth::Basic {
                username_env: value("--username-env", &def.username_env, user)?,
                password_env: value("--password-env", &def.password_env, password)?,
            }
        }
        ("bearer", kept) => {
            let token = match kept {
                Some(Auth::Bearer { token_env }) => Some(token_env),
                _ => None,
            };
            Auth::Bearer {
                token_env: value("--token-env", &def.token_env, token)?,
            }
        }
        (_, kept) => {
            let kept = match kept {
                Some(Auth::OAuth2(oauth)) => Some(oauth),
                _ => None,
            };
            let token_url = value("--token-url", &def.token_url, kept.map(|k| &k.token_url))?;
            check_url("--token-url", &token_url)?;
            Auth::OAuth2(OAuth2Settings {
                token_url,
                client_id_env: value(
                    "--client-id-env",
                    &def.client_id_env,
                    kept.map(|k| &k.client_id_env),
                )?,
                client_secret_env: value(
                    "--client-secret-env",
                    &def.client_secret_env,
                    kept.map(|k| &k.client_secret_env),
                )?,
                scope: def
                    .scope
                    .clone()
                    .or_else(|| kept.and_then(|k| k.scope.clone())),
                audience: def
                    .audience
                    .clone()
                    .or_else(|| kept.and_then(|k| k.audience.clone())),
            })
        }
    };
    Ok(Some(Some(
        serde_json::to_string(&auth).expect("serializes"),
    )))
}

const OAUTH2: &str = "oauth2-client-credentials";

/// The CA file as an absolute path, once it is known to hold a PEM certificate.
pub(super) fn ca_file_from_flag(def: &HookDefinition) -> Result<Option<String>> {
    let Some(path) = &def.ca_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid(format!(
            "cannot read --ca-file {}: {e}; check the path",
            path.display()
        ))
    })?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(Error::invalid(format!(
            "--ca-file {} holds no PEM certificate; give a CA certificate file",
            path.display()
        )));
    }
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
    Ok(Some(absolute.display().to_string()))
}
