//! What each command does about capture when it opens the database (docs/behaviour.md §2: capture
//! never stops silently): `send_callbacks` restores it, `monitor_callbacks` fails while
//! it is broken, every other command warns. All of them but the read-only ones give a
//! renamed table's hooks its new name, and say so.

use crate::error::Result;
use crate::payload::{check_against_columns, ContentType, Renderer};
use crate::storage::capture::{self, State, TableCapture};
use crate::storage::Db;

/// A hook whose template no longer renders against its table's columns.
pub struct TemplateProblem {
    pub hook: String,
    /// One sentence, naming the fix.
    pub message: String,
}

/// Enabled hooks whose template no longer renders against their table's columns (a
/// column it names was renamed or dropped), so that it is said before the first
/// callback fails on it.
pub fn template_problems(tables: &[TableCapture]) -> Vec<TemplateProblem> {
    let mut renderer = Renderer::new();
    let mut problems = Vec::new();
    for capture in tables {
        let Some(table) = &capture.table else {
            continue;
        };
        for hook in capture.hooks.iter().filter(|hook| hook.enabled) {
            let Some(template) = hook.content.payload_template.as_deref() else {
                continue;
            };
            let Some(content_type) = ContentType::parse(&hook.content.content_type) else {
                continue;
            };
            let checked = check_against_columns(
                &mut renderer,
                Some(template),
                content_type,
                &hook.name,
                &table.name,
                &hook.event_list(),
                &table.columns,
            );
            if let Err((event, problem)) = checked {
                let message = format!(
                    "the template of hook {hook} no longer fits table {table} (for {event} \
                     events {problem}), so its callbacks will fail; fix it with `httphooks \
                     hooks edit {hook} --template …` (callbacks that failed on it are sent \
                     again by `httphooks callbacks retry`)",
                    hook = hook.name,
                    table = table.name,
                );
                problems.push(TemplateProblem {
                    hook: hook.name.clone(),
                    message,
                });
            }
        }
    }
    problems
}

/// Warns on stderr about broken capture and adopts renames. Never fails the command:
/// a check that cannot run is logged and the command goes on.
pub fn warn(db: &mut Db) {
    warn_except_template_of(db, None);
}

/// [`warn`], but not of the template of hook `editing`, which the command is about to
/// replace (`hooks edit --template`).
pub fn warn_except_template_of(db: &mut Db, editing: Option<&str>) {
    if let Err(error) = try_warn(db, editing) {
        log::warn!("could not check the watched tables' triggers: {error}");
    }
}

fn try_warn(db: &mut Db, editing: Option<&str>) -> Result<()> {
    let mut tables = capture::inspect(db)?;
    for table in &mut tables {
        adopt_or_warn(db, table);
        if table.broken() {
            eprintln!("httphooks: warning: {}", fix_line(table));
        }
    }
    for problem in template_problems(&tables) {
        if Some(problem.hook.as_str()) != editing {
            eprintln!("httphooks: warning: {}", problem.message);
        }
    }
    Ok(())
}

/// `send_callbacks`: re-creates missing or stale triggers, reports tables that are
/// gone, and records when capture was found intact.
pub fn restore(db: &mut Db) -> Result<()> {
    let mut tables = capture::inspect(db)?;
    for table in &mut tables {
        adopt_or_warn(db, table);
        match table.state {
            State::Intact => {}
            State::Gone => eprintln!("httphooks: warning: {}", fix_line(table)),
            State::Missing | State::Stale | State::Disabled | State::Recreated => {
                let problem = table.problem();
                let restored = match capture::restore(db, table) {
                    Ok(restored) => restored,
                    // Its hooks need an edit first (a column they name is gone); the
                    // others are restored all the same.
                    Err(error) => {
                        eprintln!("httphooks: warning: {error}");
                        continue;
                    }
                };
                if restored {
                    table.state = State::Intact;
                    eprintln!(
                        "httphooks: warning: capture of table {} was broken for hook(s) {} ({problem}); \
                         its triggers are restored, but changes made since {} may have made no callbacks",
                        table.name(),
                        table.hook_names(),
                        table.since()
                    );
                } else {
                    table.state = State::Gone;
                    eprintln!("httphooks: warning: {}", fix_line(table));
                }
            }
        }
    }
    for problem in template_problems(&tables) {
        eprintln!("httphooks: warning: {}", problem.message);
    }
    let intact: Vec<&TableCapture> = tables.iter().filter(|t| !t.broken()).collect();
    capture::mark_verified(db, &intact)
}

/// `monitor_callbacks` and dry runs: one line per table whose capture is broken, and
/// per hook whose template no longer fits its table; writes nothing.
pub fn broken_lines(db: &mut Db) -> Result<Vec<String>> {
    let tables = capture::inspect(db)?;
    let mut lines: Vec<String> = tables
        .iter()
        .filter(|table| table.broken())
        .map(fix_line)
        .collect();
    lines.extend(template_problems(&tables).into_iter().map(|p| p.message));
    Ok(lines)
}

/// Adopts a rename; where it cannot be (tables that swapped names on MySQL), says why
/// and leaves the table capturing under its old name.
fn adopt_or_warn(db: &mut Db, table: &mut TableCapture) {
    if let Err(error) = adopt_rename(db, table) {
        eprintln!("httphooks: warning: {error}");
    }
}

fn adopt_rename(db: &mut Db, table: &mut TableCapture) -> Result<()> {
    let Some(to) = table.renamed_to().map(str::to_owned) else {
        return Ok(());
    };
    let from = table.stored_name.clone();
    capture::adopt_rename(db, table)?;
    eprintln!(
        "httphooks: table {from} was renamed to {to}; its hooks ({}) now watch {to}",
        table
            .hooks
            .iter()
            .map(|hook| hook.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// One sentence naming the hooks, the table, since when, and the fix.
pub fn fix_line(table: &TableCapture) -> String {
    match table.state {
        State::Gone => format!(
            "table {} of hook(s) {} no longer exists, so nothing was captured for them since {} at the latest; \
             re-create the table, or remove the hooks with `httphooks hooks remove NAME`",
            table.name(),
            table.hook_names(),
            table.since()
        ),
        _ if table.needs_edit.is_some() => format!(
            "capture of table {} is broken for hook(s) {} (last found intact at {}): {}",
            table.name(),
            table.hook_names(),
            table.since(),
            table.needs_edit.as_deref().unwrap_or_default()
        ),
        _ => format!(
            "capture of table {} is broken for hook(s) {} ({}; last found intact at {}); \
             restore it with `httphooks hooks sync {}` (the next send_callbacks does it too)",
            table.name(),
            table.hook_names(),
            table.problem(),
            table.since(),
            table.name()
        ),
    }
}
