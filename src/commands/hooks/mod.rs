//! `hooks add|list|show|edit|enable|disable|remove|sync|test`. Every definition is
//! validated in full before anything is written (`definition`, docs/behaviour.md §2);
//! `hooks test` is in `test`.

mod backfill;
mod definition;
mod test;

use definition::{
    auth_from_flags, ca_file_from_flag, read_template, validate, warn_about_literal_dollars, Draft,
};

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use super::output::{clip, print_json, print_table, timestamp};
use crate::cli::{Format, HookAddArgs, HookDefinition, HookEditArgs, HooksCommand};
use crate::delivery::auth::Auth;
use crate::delivery::headers::{parse_header_args, stored_pairs};
use crate::error::{Error, Result};
use crate::payload::size;
use crate::storage::capture::{self, State};
use crate::storage::models::Hook;
use crate::storage::{callbacks, hooks, Db};

const METHODS: [&str; 5] = ["POST", "PUT", "PATCH", "DELETE", "GET"];
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

pub fn run(url: Option<&str>, command: HooksCommand) -> Result<ExitCode> {
    let mut db = Db::open_migrated(url)?;
    // sync and triggers are how capture is repaired: they say what they find themselves.
    match &command {
        HooksCommand::Sync { .. } | HooksCommand::Triggers { .. } => {}
        // Its template about to be replaced, a hook's old one is not worth a warning.
        HooksCommand::Edit(args)
            if args.no_template
                || args.definition.template.is_some()
                || args.definition.template_file.is_some() =>
        {
            super::capture::warn_except_template_of(&mut db, Some(&args.name));
        }
        _ => super::capture::warn(&mut db),
    }
    match command {
        HooksCommand::Add(args) => add(&mut db, &args),
        HooksCommand::List(format) => list(&mut db, format.format),
        HooksCommand::Show { name, format } => show(&mut db, &name, format.format),
        HooksCommand::Edit(args) => edit(&mut db, &args),
        HooksCommand::Enable { name } => set_enabled(&mut db, &name, true),
        HooksCommand::Disable { name } => set_enabled(&mut db, &name, false),
        HooksCommand::Remove { name, force } => remove(&mut db, &name, force),
        HooksCommand::Sync { name } => return sync(&mut db, name.as_deref()),
        HooksCommand::Triggers { table, drop } => triggers(&mut db, &table, drop),
        HooksCommand::Test(args) => return test::test(&mut db, url, &args),
        HooksCommand::Backfill(args) => backfill::backfill(&mut db, &args),
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
    let mut draft = Draft::new(&args.name, events, &url);
    draft.enabled = !args.disabled;
    apply_definition(&mut draft, def, &Clears::default())?;
    let valid = validate(db, &draft, def.sample_data.as_deref(), None)?;
    warn_about_literal_dollars(def)?;
    let hook = hooks::create(db, &valid.row, &valid.content, &valid.settings)?;
    warn_of_uncaptured_changes(db, &hook)?;
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
    let clears = Clears {
        headers: args.clear_headers,
        template: args.no_template,
        signing: args.no_signing,
        ca_file: args.no_ca_file,
        ordered: args.no_ordered,
        when_changed: args.no_when_changed,
        coalesce: args.no_coalesce,
    };
    apply_definition(&mut draft, def, &clears)?;
    let valid = validate(db, &draft, def.sample_data.as_deref(), Some(hook.id))?;
    warn_about_literal_dollars(def)?;
    let hook = hooks::update(db, &hook, &valid.row, &valid.content, &valid.settings)?;
    warn_of_uncaptured_changes(db, &hook)?;
    println!(
        "updated hook {} (id {}); callbacks already made keep their content and go out with the new settings",
        hook.name, hook.id
    );
    Ok(())
}

/// What `hooks edit --clear-headers`, `--no-template`… take away before the flags given
/// add their own (nothing, for `hooks add`).
#[derive(Default)]
struct Clears {
    headers: bool,
    template: bool,
    signing: bool,
    ca_file: bool,
    ordered: bool,
    when_changed: bool,
    coalesce: bool,
}

/// Changes the draft by the definition flags given; what is not given stays as it is
/// (the defaults, for `hooks add`). Checked in full afterwards by `validate`.
fn apply_definition(draft: &mut Draft, def: &HookDefinition, clears: &Clears) -> Result<()> {
    let settings = &mut draft.settings;
    let content = &mut draft.content;
    if def.table.is_some() {
        draft.table = def.table.clone();
    }
    if let Some(events) = &def.events {
        draft.events = events.clone();
    }
    if let Some(url) = &def.url {
        settings.target_url = url.clone();
    }
    if let Some(method) = &def.method {
        settings.http_method = method.clone();
    }
    if clears.headers || !def.headers.is_empty() {
        let mut given = if clears.headers {
            Vec::new()
        } else {
            vec![settings.headers.clone()]
        };
        given.extend(def.headers.iter().cloned());
        settings.headers = parse_header_args(&given).map_err(Error::Invalid)?;
    }
    if let Some(content_type) = &def.content_type {
        content.content_type = content_type.clone();
    }
    if clears.template {
        content.payload_template = None;
    } else if let Some(template) = read_template(def)? {
        content.payload_template = Some(template);
    }
    if def.key.is_some() {
        draft.key = def.key.clone();
    }
    if clears.when_changed {
        draft.when_changed = None;
    } else if def.when_changed.is_some() {
        draft.when_changed = def.when_changed.clone();
    }
    if let Some(timeout) = def.timeout {
        let timeout: Duration = timeout.into();
        settings.timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    }
    if def.ordered || clears.ordered {
        content.ordered = def.ordered;
    }
    if def.coalesce || clears.coalesce {
        settings.coalesced = def.coalesce;
    }
    if let Some(batch_size) = def.batch_size {
        settings.batch_size = batch_size;
    }
    let current = Auth::parse(settings.auth.as_deref());
    if let Some(auth) = auth_from_flags(def, current.as_ref())? {
        settings.auth = auth;
    }
    if clears.signing {
        settings.signing_secret_env = None;
    } else if def.signing_secret_env.is_some() {
        settings.signing_secret_env = def.signing_secret_env.clone();
    }
    if clears.ca_file {
        settings.ca_file = None;
    } else if def.ca_file.is_some() {
        settings.ca_file = ca_file_from_flag(def)?;
    }
    if let Some(max_attempts) = def.max_attempts {
        settings.max_attempts = max_attempts;
    }
    if let Some(given) = &def.max_payload_size {
        settings.max_payload_size = size::parse(given)
            .map_err(|problem| Error::invalid(format!("--max-payload-size: {problem}")))?;
    }
    Ok(())
}

/// Says which changes of the hook's table reach no trigger (MySQL: foreign-key
/// cascades), for the events it listens to; `status` shows them too.
fn warn_of_uncaptured_changes(db: &mut Db, hook: &Hook) -> Result<()> {
    let Some(table) = hook.table_name.as_deref() else {
        return Ok(());
    };
    if let Some(table) = db.backend().find_table(table)? {
        for path in db
            .backend()
            .uncaptured_paths(&table, &hook.table_events())?
        {
            eprintln!("httphooks: warning: {path}");
        }
    }
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
    if waiting > 0 {
        wait_for_in_flight(db, &hook)?;
    }
    let cancelled = hooks::remove(db, &hook, &format!("cancelled: hook {name} was removed"))?;
    let also = match cancelled {
        0 => String::new(),
        n => format!(" and cancelled {n} waiting callbacks"),
    };
    println!("removed hook {name}{also}");
    Ok(())
}

/// Lets the runs sending the hook's callbacks right now record them, so that a
/// callback delivered meanwhile is not marked cancelled (nor one that failed left
/// waiting for a hook that is gone): the hook is paused first, so nothing more starts,
/// and the wait ends with the last lease of those callbacks (a run that died holding
/// them leaves them at that time).
fn wait_for_in_flight(db: &mut Db, hook: &Hook) -> Result<()> {
    let (mut in_flight, mut until) = callbacks::in_flight_of_hook(db, hook.id)?;
    if in_flight == 0 {
        return Ok(());
    }
    if hook.enabled {
        hooks::set_enabled(db, hook, false)?;
    }
    if let Some(until) = until {
        eprintln!(
            "httphooks: waiting for a run to record the {in_flight} callback(s) of hook {} it is sending (until {} UTC at the latest)",
            hook.name,
            until.format("%H:%M:%S")
        );
    }
    while in_flight > 0 && until.is_some_and(|until| until > crate::storage::now()) {
        std::thread::sleep(std::time::Duration::from_millis(200));
        (in_flight, until) = callbacks::in_flight_of_hook(db, hook.id)?;
    }
    Ok(())
}

/// Re-creates the triggers of every watched table, or of the one a hook watches, or of
/// a table named directly, each table in a transaction of its own: a table that is gone
/// is reported and the others are still synced; then exit 3.
fn sync(db: &mut Db, name: Option<&str>) -> Result<ExitCode> {
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
        return Ok(ExitCode::SUCCESS);
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
    // Triggers synced, but a template no longer fits: the condition to act on (exit 1).
    let templates = super::capture::template_problems(&tables);
    if gone.is_empty() {
        for problem in &templates {
            eprintln!("httphooks: {}", problem.message);
        }
        Ok(if templates.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
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
        db.backend().drop_trigger_sql(found)
    } else {
        let mut statements = db.backend().drop_trigger_sql(found);
        statements.extend(
            db.backend()
                .trigger_sql(found, &hooks::watched_by(&table.hooks)),
        );
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
                        h.settings.http_method.clone(),
                        clip(&h.settings.target_url, 50),
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

/// A hook with docs/behaviour.md §2 field names.
fn hook_json(hook: &Hook) -> Value {
    let settings = &hook.settings;
    let headers: serde_json::Map<String, Value> = stored_pairs(&settings.headers)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({
        "id": hook.id,
        "name": hook.name,
        "table_name": hook.table_name,
        "events": hook.event_list(),
        "target_url": settings.target_url,
        "http_method": settings.http_method,
        "headers": headers,
        "content_type": hook.content.content_type,
        "payload_template": hook.content.payload_template,
        "enabled": hook.enabled,
        "ordered": hook.content.ordered,
        "when_changed": hook.when_changed.as_ref().map(|_| hook.when_changed_list()),
        "key": hook.key_list(),
        "timeout": humantime::format_duration(settings.timeout()).to_string(),
        "max_attempts": settings.max_attempts,
        "max_payload_size": size::format(settings.max_payload_size),
        "coalesce": settings.coalesced,
        "batch_size": settings.batch_size,
        "auth": Auth::parse(settings.auth.as_deref()).map(|auth| serde_json::to_value(auth).expect("serializes")),
        "signing_secret_env": settings.signing_secret_env,
        "ca_file": settings.ca_file,
        "created_at": timestamp(&hook.created_at),
        "updated_at": timestamp(&hook.updated_at),
    })
}
