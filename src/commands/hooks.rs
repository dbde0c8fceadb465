//! `hooks add|list|show|edit|enable|disable|remove|sync`. Every definition is validated
//! in full before anything is written (SPEC §2).

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use super::output::{clip, print_json, print_table, timestamp};
use crate::cli::{Format, HookAddArgs, HookDefinition, HookEditArgs, HookTestArgs, HooksCommand};
use crate::delivery::auth::Auth;
use crate::delivery::headers::{literal_dollar_warnings, parse_header_args, stored_pairs};
use crate::delivery::{prepare, shown_headers, Deliverer, DeliverySettings};
use crate::error::{Error, Result};
use crate::payload::{render_sample, ContentType, EventContext, Renderer};
use crate::storage::capture::{self, State};
use crate::storage::models::{join_events, Hook, HookFields};
use crate::storage::{callbacks, hooks, Column, Db, Table, ROW_EVENTS};

const METHODS: [&str; 5] = ["POST", "PUT", "PATCH", "DELETE", "GET"];
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

pub fn run(url: Option<&str>, command: HooksCommand) -> Result<ExitCode> {
    let mut db = Db::open_migrated(url)?;
    // sync and triggers are how capture is repaired: they say what they find themselves.
    if !matches!(
        command,
        HooksCommand::Sync { .. } | HooksCommand::Triggers { .. }
    ) {
        super::capture::warn(&mut db);
    }
    match command {
        HooksCommand::Add(args) => add(&mut db, &args),
        HooksCommand::List(format) => list(&mut db, format.format),
        HooksCommand::Show { name, format } => show(&mut db, &name, format.format),
        HooksCommand::Edit(args) => edit(&mut db, &args),
        HooksCommand::Enable { name } => set_enabled(&mut db, &name, true),
        HooksCommand::Disable { name } => set_enabled(&mut db, &name, false),
        HooksCommand::Remove { name, force } => remove(&mut db, &name, force),
        HooksCommand::Sync { name } => sync(&mut db, name.as_deref()),
        HooksCommand::Triggers { table, drop } => triggers(&mut db, &table, drop),
        HooksCommand::Test(args) => return test(&mut db, url, &args),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn add(db: &mut Db, args: &HookAddArgs) -> Result<()> {
    if hooks::find(db, &args.name)?.is_some() {
        return Err(Error::invalid(format!(
            "a hook named {:?} already exists; choose another name or change it with `httphooks hooks edit`",
            args.name
        )));
    }
    let def = &args.definition;
    let events = def
        .events
        .clone()
        .ok_or_else(|| Error::invalid("hooks add needs --events (e.g. --events insert,update)"))?;
    let url = def
        .url
        .clone()
        .ok_or_else(|| Error::invalid("hooks add needs --url (an absolute http(s) URL)"))?;
    let draft = Draft {
        name: args.name.clone(),
        table: def.table.clone(),
        events,
        url,
        method: def.method.clone().unwrap_or_else(|| "POST".to_owned()),
        headers: parse_header_args(&def.headers).map_err(Error::Invalid)?,
        content_type: def
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".to_owned()),
        template: read_template(def)?,
        key: def.key.clone(),
        when_changed: def.when_changed.clone(),
        timeout: def
            .timeout
            .map(Into::into)
            .unwrap_or(Duration::from_secs(10)),
        max_attempts: def.max_attempts.unwrap_or(8),
        enabled: !args.disabled,
        ordered: def.ordered,
        auth: auth_from_flags(def)?.flatten(),
        signing_secret_env: def.signing_secret_env.clone(),
        ca_file: ca_file_from_flag(def)?,
    };
    let fields = validate(db, &draft, def.sample_data.as_deref(), None)?;
    warn_about_literal_dollars(def)?;
    let hook = hooks::create(db, &fields)?;
    println!(
        "created hook {} (id {}){}",
        hook.name,
        hook.id,
        match &hook.table_name {
            Some(table) => format!(", watching table {table}"),
            None => String::new(),
        }
    );
    Ok(())
}

fn edit(db: &mut Db, args: &HookEditArgs) -> Result<()> {
    let hook = hooks::require(db, &args.name)?;
    let def = &args.definition;
    let mut draft = Draft::from(&hook);
    if let Some(name) = &args.rename {
        if name != &hook.name && hooks::find(db, name)?.is_some() {
            return Err(Error::invalid(format!(
                "a hook named {name:?} already exists; choose another name"
            )));
        }
        draft.name = name.clone();
    }
    if def.table.is_some() {
        draft.table = def.table.clone();
    }
    if let Some(events) = &def.events {
        draft.events = events.clone();
    }
    if let Some(url) = &def.url {
        draft.url = url.clone();
    }
    if let Some(method) = &def.method {
        draft.method = method.clone();
    }
    if args.clear_headers || !def.headers.is_empty() {
        let mut given = if args.clear_headers {
            Vec::new()
        } else {
            vec![hook.headers.clone()]
        };
        given.extend(def.headers.iter().cloned());
        draft.headers = parse_header_args(&given).map_err(Error::Invalid)?;
    }
    if let Some(content_type) = &def.content_type {
        draft.content_type = content_type.clone();
    }
    if args.no_template {
        draft.template = None;
    } else if let Some(template) = read_template(def)? {
        draft.template = Some(template);
    }
    if def.key.is_some() {
        draft.key = def.key.clone();
    }
    if args.no_when_changed {
        draft.when_changed = None;
    } else if def.when_changed.is_some() {
        draft.when_changed = def.when_changed.clone();
    }
    if let Some(timeout) = def.timeout {
        draft.timeout = timeout.into();
    }
    if def.ordered || args.no_ordered {
        draft.ordered = def.ordered;
    }
    if let Some(auth) = auth_from_flags(def)? {
        draft.auth = auth;
    }
    if args.no_signing {
        draft.signing_secret_env = None;
    } else if def.signing_secret_env.is_some() {
        draft.signing_secret_env = def.signing_secret_env.clone();
    }
    if args.no_ca_file {
        draft.ca_file = None;
    } else if def.ca_file.is_some() {
        draft.ca_file = ca_file_from_flag(def)?;
    }
    if let Some(max_attempts) = def.max_attempts {
        draft.max_attempts = max_attempts;
    }
    let fields = validate(db, &draft, def.sample_data.as_deref(), Some(hook.id))?;
    warn_about_literal_dollars(def)?;
    let hook = hooks::update(db, &hook, &fields)?;
    println!(
        "updated hook {} (id {}); callbacks already made keep their content and go out with the new settings",
        hook.name, hook.id
    );
    Ok(())
}

fn set_enabled(db: &mut Db, name: &str, enabled: bool) -> Result<()> {
    let hook = hooks::require(db, name)?;
    hooks::set_enabled(db, &hook, enabled)?;
    println!(
        "hook {} is {}",
        hook.name,
        if enabled { "enabled" } else { "disabled" }
    );
    Ok(())
}

fn remove(db: &mut Db, name: &str, force: bool) -> Result<()> {
    let hook = hooks::require(db, name)?;
    callbacks::admit_all(db)?;
    let waiting = callbacks::count_waiting_for_hook(db, hook.id)?;
    if waiting > 0 && !force {
        return Err(Error::invalid(format!(
            "hook {name} still has {waiting} waiting callbacks; send them first, or pass --force to cancel them"
        )));
    }
    let cancelled = hooks::remove(db, &hook, &format!("cancelled: hook {name} was removed"))?;
    println!(
        "removed hook {name}{}",
        if cancelled > 0 {
            format!(" and cancelled {cancelled} waiting callbacks")
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Re-creates the triggers of every watched table, or of the one a hook watches, or of
/// a table named directly, each table in a transaction of its own: a table that is gone
/// is reported and the others are still synced; then exit 3.
fn sync(db: &mut Db, name: Option<&str>) -> Result<()> {
    let mut tables = capture::inspect(db)?;
    if let Some(name) = name {
        let wanted = match hooks::find(db, name)? {
            Some(hook) => hook.table_name.ok_or_else(|| {
                Error::invalid(format!(
                    "hook {name} has no table (it takes custom events); nothing to sync"
                ))
            })?,
            None => name.to_owned(),
        };
        tables.retain(|t| t.stored_name == wanted || t.name() == wanted);
        if tables.is_empty() {
            return Err(Error::invalid(format!(
                "there is no hook or watched table named {name:?}; `httphooks hooks list` shows them"
            )));
        }
    }
    if tables.is_empty() {
        println!("no table has hooks; nothing to sync");
        return Ok(());
    }
    let mut gone = Vec::new();
    for table in &tables {
        let hook_names: Vec<&str> = table.hooks.iter().map(|h| h.name.as_str()).collect();
        if table.state != State::Gone && capture::restore(db, table)? {
            if let Some(to) = table.renamed_to() {
                println!(
                    "table {} was renamed to {to}; its hooks now watch {to}",
                    table.stored_name
                );
            }
            println!(
                "synced the triggers of table {} (hooks {})",
                table.name(),
                hook_names.join(", ")
            );
            if table.broken() {
                eprintln!(
                    "httphooks: warning: capture of table {} was broken ({}): changes made since {} may have made no callbacks",
                    table.name(),
                    table.problem(),
                    table.since()
                );
            }
        } else {
            for hook in &hook_names {
                eprintln!(
                    "httphooks: hook {hook}: table {} no longer exists; re-create it or remove the hook with `httphooks hooks remove {hook}`",
                    table.name()
                );
            }
            gone.push(table.name().to_owned());
        }
    }
    if gone.is_empty() {
        Ok(())
    } else {
        Err(Error::environment(format!(
            "could not sync {} of {} watched table(s) because they no longer exist ({}); re-create them or remove their hooks",
            gone.len(),
            tables.len(),
            gone.join(", ")
        )))
    }
}

/// `hooks triggers TABLE [--drop]`: the SQL that creates (or drops) a watched table's
/// triggers, for a migration that changes the table. Writes nothing.
fn triggers(db: &mut Db, name: &str, drop: bool) -> Result<()> {
    let table = capture::inspect(db)?
        .into_iter()
        .find(|t| t.stored_name == name || t.name() == name)
        .ok_or_else(|| {
            Error::invalid(format!(
                "no hook watches a table named {name:?}; `httphooks hooks list` shows the watched tables"
            ))
        })?;
    let Some(found) = &table.table else {
        return Err(Error::invalid(format!(
            "table {name} no longer exists; re-create it or remove its hooks with `httphooks hooks remove`"
        )));
    };
    let statements = if drop {
        db.drop_trigger_sql(found)
    } else {
        let mut statements = db.drop_trigger_sql(found);
        statements.extend(db.trigger_sql(found, &hooks::watched_by(&table.hooks)));
        statements
    };
    // Each ends with `;`, ready for a migration file (MySQL's are kept without it,
    // as its API runs one statement at a time).
    for statement in statements {
        let end = if statement.ends_with(';') { "" } else { ";" };
        println!("{statement}{end}");
    }
    Ok(())
}

fn list(db: &mut Db, format: Format) -> Result<()> {
    let all = hooks::list(db)?;
    match format {
        Format::Json => print_json(&Value::Array(all.iter().map(hook_json).collect())),
        Format::Table => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|h| {
                    vec![
                        h.id.to_string(),
                        h.name.clone(),
                        h.table_name.clone().unwrap_or_else(|| "-".into()),
                        h.event_list().join(","),
                        h.http_method.clone(),
                        clip(&h.target_url, 50),
                        if h.enabled { "yes".into() } else { "no".into() },
                    ]
                })
                .collect();
            print_table(
                &["ID", "NAME", "TABLE", "EVENTS", "METHOD", "URL", "ENABLED"],
                &rows,
            );
        }
    }
    Ok(())
}

fn show(db: &mut Db, name: &str, format: Format) -> Result<()> {
    let hook = hooks::require(db, name)?;
    let document = hook_json(&hook);
    match format {
        Format::Json => print_json(&document),
        Format::Table => {
            for (key, value) in document.as_object().expect("built as an object") {
                let shown = match value {
                    Value::String(text) => text.clone(),
                    Value::Null => "-".to_owned(),
                    other => other.to_string(),
                };
                if shown.contains('\n') {
                    println!("{key}:\n  {}", shown.replace('\n', "\n  "));
                } else {
                    println!("{key}: {shown}");
                }
            }
        }
    }
    Ok(())
}

/// A hook with SPEC §2 field names.
fn hook_json(hook: &Hook) -> Value {
    let headers: serde_json::Map<String, Value> = stored_pairs(&hook.headers)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({
        "id": hook.id,
        "name": hook.name,
        "table_name": hook.table_name,
        "events": hook.event_list(),
        "target_url": hook.target_url,
        "http_method": hook.http_method,
        "headers": headers,
        "content_type": hook.content_type,
        "payload_template": hook.payload_template,
        "enabled": hook.enabled,
        "ordered": hook.ordered,
        "when_changed": hook.when_changed.as_ref().map(|_| hook.when_changed_list()),
        "key": hook.key_list(),
        "timeout": humantime::format_duration(Duration::from_millis(hook.timeout_ms as u64)).to_string(),
        "max_attempts": hook.max_attempts,
        "auth": Auth::parse(hook.auth.as_deref()).map(|auth| serde_json::to_value(auth).expect("serializes")),
        "signing_secret_env": hook.signing_secret_env,
        "ca_file": hook.ca_file,
        "created_at": timestamp(&hook.created_at),
        "updated_at": timestamp(&hook.updated_at),
    })
}

/// The headers given are saved as they are; a `$VAR` among them most likely meant
/// `${VAR}`, so say so (on stderr, where it does not disturb scripts).
fn warn_about_literal_dollars(def: &HookDefinition) -> Result<()> {
    let given = parse_header_args(&def.headers).map_err(Error::Invalid)?;
    for warning in literal_dollar_warnings(&given) {
        eprintln!("httphooks: warning: {warning}");
    }
    Ok(())
}

fn read_template(def: &HookDefinition) -> Result<Option<String>> {
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

/// A hook definition before validation.
struct Draft {
    name: String,
    table: Option<String>,
    events: Vec<String>,
    url: String,
    method: String,
    headers: String,
    content_type: String,
    template: Option<String>,
    key: Option<Vec<String>>,
    when_changed: Option<Vec<String>>,
    timeout: Duration,
    max_attempts: i32,
    enabled: bool,
    ordered: bool,
    auth: Option<String>,
    signing_secret_env: Option<String>,
    ca_file: Option<String>,
}

impl From<&Hook> for Draft {
    fn from(hook: &Hook) -> Self {
        Draft {
            name: hook.name.clone(),
            table: hook.table_name.clone(),
            events: hook.event_list(),
            url: hook.target_url.clone(),
            method: hook.http_method.clone(),
            headers: hook.headers.clone(),
            content_type: hook.content_type.clone(),
            template: hook.payload_template.clone(),
            key: hook.key_list(),
            when_changed: hook.when_changed.as_ref().map(|_| hook.when_changed_list()),
            timeout: Duration::from_millis(hook.timeout_ms as u64),
            max_attempts: hook.max_attempts,
            enabled: hook.enabled,
            ordered: hook.ordered,
            auth: hook.auth.clone(),
            signing_secret_env: hook.signing_secret_env.clone(),
            ca_file: hook.ca_file.clone(),
        }
    }
}

fn valid_event_name(event: &str) -> bool {
    !event.is_empty()
        && event.len() <= 100
        && event
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
}

/// Checks everything a hook definition holds and returns the fields to store, with the
/// table's columns for its triggers. Nothing is written here.
fn validate(
    db: &mut Db,
    draft: &Draft,
    sample_data: Option<&str>,
    editing: Option<i64>,
) -> Result<HookFields> {
    let name = draft.name.trim();
    if name.is_empty() || name.len() > 100 || name.chars().any(|c| c.is_control() || c == ',') {
        return Err(Error::invalid(
            "a hook name must be 1 to 100 characters without commas or control characters",
        ));
    }

    let mut events: Vec<String> = Vec::new();
    for event in &draft.events {
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

    let table = match &draft.table {
        Some(table) => {
            if table.to_ascii_lowercase().starts_with("httphooks_") {
                return Err(Error::invalid(
                    "hooks cannot watch httphooks' own tables; choose an application table",
                ));
            }
            if let Some(custom) = events.iter().find(|e| !ROW_EVENTS.contains(&e.as_str())) {
                return Err(Error::invalid(format!(
                    "a table hook takes only insert, update and delete, not {custom:?}; omit --table for custom events"
                )));
            }
            let found = db.find_table(table)?.ok_or_else(|| {
                Error::invalid(format!(
                    "there is no table {table:?} in the {} database; create it first or check the name{}",
                    db.backend_name(),
                    db.other_schema_hint()
                        .map(|hint| format!(" ({hint})"))
                        .unwrap_or_default()
                ))
            })?;
            Some(check_key(db, found, draft.key.as_deref(), editing)?)
        }
        None => {
            if draft.key.is_some() {
                return Err(Error::invalid(
                    "--key names a table's key columns; give --table too, or omit --key for custom events",
                ));
            }
            if let Some(row_event) = events.iter().find(|e| ROW_EVENTS.contains(&e.as_str())) {
                return Err(Error::invalid(format!(
                    "the {row_event} event needs --table; hooks without a table take custom events only"
                )));
            }
            None
        }
    };

    check_url("--url", &draft.url)?;

    let method = draft.method.trim().to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(Error::invalid(format!(
            "{:?} is not a supported method; use one of {}",
            draft.method,
            METHODS.join(", ")
        )));
    }

    let content_type = ContentType::parse(&draft.content_type).ok_or_else(|| {
        Error::invalid(format!(
            "{:?} is not a supported content type; use {}",
            draft.content_type,
            ContentType::ALLOWED
        ))
    })?;

    let when_changed = match &draft.when_changed {
        None => None,
        Some(list) => {
            let list: Vec<String> = list
                .iter()
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect();
            let Some(columns) = &table else {
                return Err(Error::invalid(
                    "--when-changed needs --table: it filters a table's updates",
                ));
            };
            if !events.iter().any(|e| e == "update") {
                return Err(Error::invalid(
                    "--when-changed filters updates; add update to --events",
                ));
            }
            if list.is_empty() {
                return Err(Error::invalid("--when-changed needs at least one column"));
            }
            let columns = &columns.columns;
            if let Some(unknown) = list
                .iter()
                .find(|c| !columns.iter().any(|col| &col.name == *c))
            {
                return Err(Error::invalid(format!(
                    "--when-changed names {unknown:?}, which is not a column of table {}; check the spelling",
                    draft.table.as_deref().unwrap_or_default()
                )));
            }
            Some(serde_json::to_string(&list).expect("strings serialize"))
        }
    };

    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&draft.timeout) {
        return Err(Error::invalid("--timeout must be between 100ms and 5m"));
    }
    if !(1..=50).contains(&draft.max_attempts) {
        return Err(Error::invalid("--max-attempts must be between 1 and 50"));
    }

    if let Some(variable) = &draft.signing_secret_env {
        check_variable_name("--signing-secret-env", variable)?;
    }
    check_template(
        draft,
        name,
        &events,
        content_type,
        table.as_ref().map(|t| t.columns.as_slice()),
        sample_data,
    )?;

    let fields = HookFields {
        name: name.to_owned(),
        table_name: table.as_ref().map(|t| t.name.clone()),
        events: join_events(&events),
        target_url: draft.url.trim().to_owned(),
        http_method: method,
        headers: draft.headers.clone(),
        content_type: draft.content_type.trim().to_owned(),
        payload_template: draft.template.clone(),
        enabled: draft.enabled,
        ordered: draft.ordered,
        when_changed,
        timeout_ms: draft.timeout.as_millis() as i32,
        max_attempts: draft.max_attempts,
        auth: draft.auth.clone(),
        signing_secret_env: draft.signing_secret_env.clone(),
        ca_file: draft.ca_file.clone(),
        table_oid: table.as_ref().and_then(|t| t.oid),
        key_columns: match (&table, &draft.key) {
            (Some(_), Some(key)) => {
                Some(serde_json::to_string(&key_names(key)).expect("strings serialize"))
            }
            _ => None,
        },
    };
    Ok(fields)
}

fn key_names(given: &[String]) -> Vec<String> {
    given
        .iter()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect()
}

/// The table keyed as the hook's `object_id` will be: by `--key` (columns that must
/// exist), else by its primary key; a table without one needs `--key`. Every hook of a
/// table must use the same key (one trigger serves them all).
fn check_key(
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
fn check_template(
    draft: &Draft,
    name: &str,
    events: &[String],
    content_type: ContentType,
    columns: Option<&[Column]>,
    sample_data: Option<&str>,
) -> Result<()> {
    let mut renderer = Renderer::new();
    let template = draft.template.as_deref();
    let fail = |event: &str, problem: String| {
        Error::invalid(format!(
            "hook {name}: for {event} events {problem}; fix the template and try again"
        ))
    };
    match (columns, &draft.table) {
        (Some(columns), Some(table)) => {
            for event in events {
                let sample = EventContext::sample(name, table, event, columns);
                render_sample(&mut renderer, template, content_type, &sample, columns)
                    .map_err(|p| fail(event, p))?;
            }
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
fn check_url(flag: &str, given: &str) -> Result<()> {
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

fn check_variable_name(flag: &str, name: &str) -> Result<()> {
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

/// The authentication the flags describe: None when --auth is not given (keep what
/// the hook has), Some(None) for `--auth none`. Only variable names are kept.
fn auth_from_flags(def: &HookDefinition) -> Result<Option<Option<String>>> {
    let given = |flag: &str, value: &Option<String>| -> Result<String> {
        let value = value.clone().ok_or_else(|| {
            Error::invalid(format!(
                "--auth {} needs {flag}",
                def.auth.as_deref().unwrap_or("")
            ))
        })?;
        if flag.ends_with("-env") {
            check_variable_name(flag, &value)?;
        }
        Ok(value)
    };
    let auth = match def.auth.as_deref() {
        None => {
            let stray = [
                ("--username-env", &def.username_env),
                ("--password-env", &def.password_env),
                ("--token-env", &def.token_env),
                ("--token-url", &def.token_url),
                ("--client-id-env", &def.client_id_env),
                ("--client-secret-env", &def.client_secret_env),
                ("--scope", &def.scope),
                ("--audience", &def.audience),
            ];
            if let Some((flag, _)) = stray.iter().find(|(_, value)| value.is_some()) {
                return Err(Error::invalid(format!(
                    "{flag} goes with --auth; say which kind of authentication"
                )));
            }
            return Ok(None);
        }
        Some("none") => return Ok(Some(None)),
        Some("basic") => Auth::Basic {
            username_env: given("--username-env", &def.username_env)?,
            password_env: given("--password-env", &def.password_env)?,
        },
        Some("bearer") => Auth::Bearer {
            token_env: given("--token-env", &def.token_env)?,
        },
        Some(_) => {
            let token_url = given("--token-url", &def.token_url)?;
            check_url("--token-url", &token_url)?;
            Auth::OAuth2 {
                token_url,
                client_id_env: given("--client-id-env", &def.client_id_env)?,
                client_secret_env: given("--client-secret-env", &def.client_secret_env)?,
                scope: def.scope.clone(),
                audience: def.audience.clone(),
            }
        }
    };
    Ok(Some(Some(
        serde_json::to_string(&auth).expect("serializes"),
    )))
}

/// The CA file as an absolute path, once it is known to hold a PEM certificate.
fn ca_file_from_flag(def: &HookDefinition) -> Result<Option<String>> {
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

/// `hooks test`: the request a real event would produce, shown or sent once. Nothing
/// is written to the callbacks table.
fn test(db: &mut Db, url: Option<&str>, args: &HookTestArgs) -> Result<ExitCode> {
    let hook = hooks::require(db, &args.name)?;
    let events = hook.event_list();
    let event = args.event.clone().unwrap_or_else(|| events[0].clone());
    if !events.contains(&event) {
        return Err(Error::invalid(format!(
            "hook {} does not take {event:?} events (it takes {}); pick one with --event",
            hook.name,
            events.join(", ")
        )));
    }
    let data: Option<Value> = match &args.data {
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            Error::invalid(format!(
                "--data is not valid JSON ({e}); pass a JSON document"
            ))
        })?),
        None => None,
    };
    let content_type = ContentType::parse(&hook.content_type).ok_or_else(|| {
        Error::invalid(format!(
            "hook {} has an unsupported content type; fix it with hooks edit",
            hook.name
        ))
    })?;
    let mut renderer = Renderer::new();
    let (context, columns) = match &hook.table_name {
        Some(table) => {
            let columns = db.table_columns(table)?.ok_or_else(|| {
                Error::invalid(format!(
                    "table {table} no longer exists; remove the hook or re-create the table"
                ))
            })?;
            let mut context = EventContext::sample(&hook.name, table, &event, &columns);
            // Given values replace the sample's, column by column.
            if let (Some(Value::Object(given)), Some(Value::Object(row))) =
                (&data, &mut context.instance)
            {
                for (key, value) in given {
                    row.insert(key.clone(), value.clone());
                }
                if context.old.is_some() {
                    context.old = context.instance.clone();
                }
            }
            (context, columns)
        }
        None => {
            let mut context = EventContext::sample(&hook.name, "", &event, &[]);
            context.table = None;
            context.instance = None;
            context.old = None;
            context.object_id = None;
            context.data = Some(data.unwrap_or_else(|| Value::Object(Default::default())));
            (context, Vec::new())
        }
    };
    let body = render_sample(
        &mut renderer,
        hook.payload_template.as_deref(),
        content_type,
        &context,
        &columns,
    )
    .map_err(|problem| {
        Error::invalid(format!("hook {}: {problem}; fix the template", hook.name))
    })?;
    if let Some(to) = &args.to {
        check_url("--to", to)?;
    }
    let target_url = args.to.clone().unwrap_or_else(|| hook.target_url.clone());
    let target = DeliverySettings {
        url: &target_url,
        http_method: &hook.http_method,
        headers: &hook.headers,
        content_type: &hook.content_type,
        timeout_ms: hook.timeout_ms,
        auth: hook.auth.as_deref(),
        signing_secret_env: hook.signing_secret_env.as_deref(),
        ca_file: hook.ca_file.as_deref(),
    };
    let prepared = prepare(&target, "msg_test", &body)
        .map_err(|problem| Error::environment(format!("{problem}; set it and try again")))?;
    if args.dry_run {
        println!("{}", prepared.as_text());
        println!("dry run: nothing was sent");
        return Ok(ExitCode::SUCCESS);
    }
    let deliverer = Deliverer::new(1, url)?;
    let mut ok = true;
    for exchange in deliverer.send(&prepared, &|| true) {
        println!("> {} {}", exchange.request.method, exchange.request.url);
        for (name, value) in shown_headers(&exchange.request) {
            println!("> {name}: {value}");
        }
        match &exchange.result {
            Ok(response) => {
                println!(
                    "< {} {} ({} ms)",
                    response.status,
                    response.reason,
                    exchange.elapsed.as_millis()
                );
                for (name, value) in &response.headers {
                    println!("< {name}: {value}");
                }
                println!("<\n{}", response.body);
                ok = (200..300).contains(&response.status);
            }
            Err(failure) => {
                println!("! {}: {}", failure.kind.as_str(), failure.message);
                ok = false;
            }
        }
    }
    // The test itself worked; a refusing target is what it reports, with exit 1.
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
