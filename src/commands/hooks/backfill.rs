//! `hooks backfill NAME [--where SQL] [--chunk-size N] [--after KEY]`: a callback for
//! every existing row of a hook's table (`storage::backfill`). A stopped backfill (a
//! signal, an error) says the last key it finished and the command that goes on from
//! there: the operator keeps it, nothing is stored.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::cli::BackfillArgs;
use crate::error::{Error, Result};
use crate::storage::{backfill, hooks, primary_key, ColumnKind, Db};

pub fn backfill(db: &mut Db, args: &BackfillArgs) -> Result<()> {
    let name = &args.name;
    let hook = hooks::find(db, name)?.ok_or_else(|| {
        Error::invalid(format!(
            "there is no hook named {name:?}; `httphooks hooks list` shows the hooks"
        ))
    })?;
    let Some(table_name) = hook.table_name.clone() else {
        return Err(Error::invalid(format!(
            "hook {name} sends custom events and watches no table, so there are no rows to backfill; `httphooks enqueue --hook {name}` sends its events"
        )));
    };
    let table = hooks::locate(db, std::slice::from_ref(&hook), &table_name)?.ok_or_else(|| {
        Error::environment(format!(
            "table {table_name} of hook {name} is gone; `httphooks hooks sync` says more (nothing was written)"
        ))
    })?;
    let key = primary_key(&table.columns);
    if let Some(blob) = key.iter().find(|c| c.kind == ColumnKind::Blob) {
        return Err(Error::invalid(format!(
            "table {table_name} is keyed by {}, a binary column, which a backfill cannot go through in order; send its rows' changes as they come instead (nothing was written)",
            blob.name
        )));
    }
    let key_names: Vec<String> = key.iter().map(|c| c.name.clone()).collect();
    if key.is_empty() {
        return Err(Error::invalid(format!(
            "table {table_name} has no key to go through its rows by; give hook {name} one with `httphooks hooks edit {name} --key COLUMN,…` (nothing was written)"
        )));
    }
    let version = backfill::current_version(db, hook.id)?.ok_or_else(|| {
        Error::invalid(format!("hook {name} has no version to make callbacks with"))
    })?;
    let sql = db.backend().backfill_sql(&table, version);
    let condition = args.condition.as_deref().unwrap_or("1 = 1");
    let mut after: Option<Vec<Value>> = match &args.after {
        None => None,
        Some(text) => Some(parse_key(text, key_names.len())?),
    };
    let total = backfill::count(db, &sql, condition)?;
    let without_key = backfill::count_without_key(db, &sql, condition)?;
    if without_key > 0 {
        let present: Vec<String> = key_names
            .iter()
            .map(|k| format!("{k} IS NOT NULL"))
            .collect();
        return Err(Error::invalid(format!(
            "{without_key} row(s) of table {table_name} have no value in key column(s) {}, so a backfill cannot go through them in key order; leave them out with --where '{}' (nothing was written)",
            key_names.join(", "),
            present.join(" AND ")
        )));
    }
    if !hook.enabled {
        eprintln!(
            "httphooks: warning: hook {name} is disabled: its backfilled callbacks wait until `httphooks hooks enable {name}`"
        );
    }
    let writers_run_beside = db.backend().profile().allows_concurrent_writers;
    let stop = crate::engine::stop_on_signals()?;
    let progress = progress_bar(total, after.is_some());
    let mut done = 0usize;
    loop {
        if stop.load(Ordering::SeqCst) {
            progress.finish_and_clear();
            return Err(Error::environment(format!(
                "stopped by a signal after {done} row(s){}",
                resume_hint(args, after.as_deref())
            )));
        }
        let started = std::time::Instant::now();
        let batch = backfill::batch(db, &sql, condition, after.as_deref(), args.chunk_size)
            .map_err(|error| {
                Error::environment(format!(
                    "the backfill failed after {done} row(s) ({error}){}",
                    resume_hint(args, after.as_deref())
                ))
            })?;
        if batch.rows == 0 {
            break;
        }
        done += batch.rows;
        progress.inc(batch.rows as u64);
        after = batch.last_key;
        if !writers_run_beside {
            // One writer at a time (SQLite): leave the lock free for twice as long as a
            // batch held it, so that the application's writes, whose busy handler
            // sleeps and retries, get their turn within a batch or two.
            std::thread::sleep((started.elapsed() * 2).max(Duration::from_millis(2)));
        }
    }
    progress.finish_and_clear();
    println!(
        "backfilled {done} row(s) of table {table_name} for hook {name}: {done} callback(s) with event backfill, sent by the next send_callbacks run"
    );
    Ok(())
}

/// `--after`: a JSON array of the key's values, as a stopped backfill prints it.
fn parse_key(text: &str, columns: usize) -> Result<Vec<Value>> {
    let scalar = |v: &Value| matches!(v, Value::Number(_) | Value::String(_) | Value::Bool(_));
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(values)) if values.len() == columns && values.iter().all(scalar) => {
            Ok(values)
        }
        _ => Err(Error::invalid(format!(
            "--after takes the key a stopped backfill printed, a JSON array of the table's {columns} key value(s) such as '[1000]' or '[\"eu\", 7]', not {text:?} (nothing was written)"
        ))),
    }
}

/// "; go on with `httphooks hooks backfill …`", or nothing when no batch finished.
fn resume_hint(args: &BackfillArgs, after: Option<&[Value]>) -> String {
    let Some(key) = after else {
        return "; nothing was written, run it again".to_owned();
    };
    let key = Value::Array(key.to_vec()).to_string();
    let condition = args
        .condition
        .as_ref()
        .map(|c| format!(" --where {}", shell_quote(c)))
        .unwrap_or_default();
    format!(
        "; go on with `httphooks hooks backfill {}{condition} --after {}`",
        shell_quote(&args.name),
        shell_quote(&key)
    )
}

fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.,:/".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// A bar on a terminal (a counter when going on after a key), nothing in scripts.
fn progress_bar(total: i64, resumed: bool) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = if resumed {
        (
            ProgressBar::new_spinner(),
            "{spinner} {pos} rows [{elapsed}]",
        )
    } else {
        (
            ProgressBar::new(u64::try_from(total).unwrap_or(0)),
            "{bar:40} {pos}/{len} rows [{elapsed}, {per_sec}]",
        )
    };
    bar.set_style(ProgressStyle::with_template(template).expect("a valid progress template"));
    bar
}
