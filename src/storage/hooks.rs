//! Hook definitions, and keeping each watched table's triggers in step with them.

use diesel::prelude::*;

use super::models::{Hook, HookContent, HookRow, HookSettings, NewHookVersion};
use super::schema::httphooks_hook_versions;
use super::schema::httphooks_hooks::dsl as h;

/// Hooks joined to the version they are at, which holds their content and settings:
/// select [`Hook::as_select`] from it.
macro_rules! hooks_with_version {
    () => {
        h::httphooks_hooks.inner_join(
            httphooks_hook_versions::table
                .on(httphooks_hook_versions::id.nullable().eq(h::version_id)),
        )
    };
}
use super::{with_conn, Db, Table, TableEvent, Watched};
use crate::error::{DbFailure, Error, Result};

pub fn find(db: &mut Db, name: &str) -> Result<Option<Hook>> {
    find_by(db, Some(name), None)
}

pub fn find_by_id(db: &mut Db, id: i64) -> Result<Option<Hook>> {
    find_by(db, None, Some(id))
}

fn find_by(db: &mut Db, name: Option<&str>, id: Option<i64>) -> Result<Option<Hook>> {
    with_conn!(db, |conn| {
        let mut query = hooks_with_version!().select(Hook::as_select()).into_boxed();
        if let Some(name) = name {
            query = query.filter(h::name.eq(name));
        }
        if let Some(id) = id {
            query = query.filter(h::id.eq(id));
        }
        Ok(query.first(conn).optional()?)
    })
}

/// The hook of that name, or an error that says how to find the right name.
pub fn require(db: &mut Db, name: &str) -> Result<Hook> {
    find(db, name)?.ok_or_else(|| {
        Error::invalid(format!(
            "there is no hook named {name:?}; `httphooks hooks list` shows the hooks"
        ))
    })
}

/// The hook a user named by id or by name (a name made of digits is tried as a name
/// when no hook has that id).
pub fn require_by_id_or_name(db: &mut Db, given: &str) -> Result<Hook> {
    let by_id = match given.trim().parse::<i64>() {
        Ok(id) => find_by_id(db, id)?,
        Err(_) => None,
    };
    match by_id {
        Some(hook) => Ok(hook),
        None => find(db, given.trim())?.ok_or_else(|| {
            Error::invalid(format!(
                "there is no hook with id or name {given:?}; `httphooks hooks list` shows them (nothing was sent)"
            ))
        }),
    }
}

pub fn list(db: &mut Db) -> Result<Vec<Hook>> {
    with_conn!(db, |conn| Ok(hooks_with_version!()
        .select(Hook::as_select())
        .order(h::id)
        .load(conn)?))
}

pub(crate) fn hooks_on_table(db: &mut Db, table: &str) -> Result<Vec<Hook>> {
    with_conn!(db, |conn| {
        Ok(hooks_with_version!()
            .select(Hook::as_select())
            .filter(h::table_name.eq(table))
            .load(conn)?)
    })
}

/// What the enabled hooks among `hooks` listen to.
pub(crate) fn watched_by(hooks: &[Hook]) -> Watched {
    let enabled: Vec<&Hook> = hooks.iter().filter(|h| h.enabled).collect();
    let listens = |hook: &Hook, event: TableEvent| hook.table_events().contains(&event);
    let events = TableEvent::ROW
        .into_iter()
        .filter(|&event| enabled.iter().any(|hook| listens(hook, event)))
        .collect();
    let mut update_columns = Some(Vec::new());
    for hook in enabled
        .iter()
        .filter(|hook| listens(hook, TableEvent::Update))
    {
        match (&mut update_columns, hook.when_changed_list()) {
            (Some(columns), list) if hook.when_changed.is_some() => columns.extend(list),
            _ => update_columns = None,
        }
    }
    Watched {
        events,
        update_columns,
    }
}

/// What is wrong when an enabled hook names a column (`--key`, `--when-changed`) that
/// the table does not have (it was re-created, or another table took its name): its
/// triggers could only record no key or miss its updates, so none are made.
pub(crate) fn columns_missing(hooks: &[Hook], table: &Table) -> Option<String> {
    let has = |name: &String| table.columns.iter().any(|column| &column.name == name);
    hooks.iter().filter(|hook| hook.enabled).find_map(|hook| {
        let named = [
            ("--key", hook.key_list().unwrap_or_default()),
            ("--when-changed", hook.when_changed_list()),
        ];
        named.into_iter().find_map(|(flag, columns)| {
            columns.into_iter().find(|column| !has(column)).map(|column| {
                format!(
                    "hook {hook} names column {column:?} ({flag}), which table {table} does not have; point it at the table's columns with `httphooks hooks edit {hook} {flag} …`",
                    hook = hook.name,
                    table = table.name
                )
            })
        })
    })
}

/// The key the hooks of a table identify its rows by: the `--key` columns they name
/// (all hooks of a table agree, see `commands::hooks`), None for the primary key.
pub fn key_of(hooks: &[Hook]) -> Option<Vec<String>> {
    hooks.iter().find_map(Hook::key_list)
}

/// The table a table's hooks watch, with their key: by identity first, so that a
/// renamed PostgreSQL table is still found; then by name (a re-created table); then,
/// when no table has the name, by the triggers made for it (a renamed MySQL table
/// carries them). On MySQL a table that took the name (a rebuild, tables that swapped
/// names) takes the hooks, and capture is restored by name: trigger names, unique in a
/// schema, follow table names.
pub(crate) fn locate(db: &mut Db, hooks: &[Hook], name: &str) -> Result<Option<Table>> {
    let by_identity = match hooks.iter().find_map(|hook| hook.table_oid) {
        Some(oid) => db.backend().table_by_oid(oid)?,
        None => None,
    };
    let table = match by_identity {
        Some(table) => Some(table),
        None => match db.backend().find_table(name)? {
            Some(table) => Some(table),
            None => db.backend().table_by_triggers(name)?,
        },
    };
    Ok(table.map(|table| table.keyed_by(key_of(hooks).as_deref())))
}

/// Gives the hooks of a renamed table its new name, with a new version each so that
/// new callbacks carry it.
pub(crate) fn adopt_name(db: &mut Db, hooks: &[Hook], table: &Table) -> Result<()> {
    for hook in hooks {
        let mut row = hook.row();
        row.table_name = Some(table.name.clone());
        row.table_oid = table.oid;
        with_conn!(db, |conn| {
            diesel::update(h::httphooks_hooks.filter(h::id.eq(hook.id)))
                .set((
                    h::table_name.eq(&row.table_name),
                    h::table_oid.eq(row.table_oid),
                ))
                .execute(conn)
        })?;
        new_version(db, hook.id, &row, &hook.content, &hook.settings)?;
    }
    // Triggers that capture under the old name (MySQL's go with a renamed table) are
    // remade under the new one, which the hooks now hold.
    if let Some(from) = &table.captured_as {
        db.move_capture(from, table, &watched_by(hooks))?;
    }
    Ok(())
}

/// Gives the hooks of a table renamed behind httphooks' back its new name, after
/// admitting what was captured under the old one.
pub(crate) fn adopt_rename(db: &mut Db, hooks: &[Hook], table: &Table) -> Result<()> {
    change_hooks(db, |db| adopt_name(db, hooks, table))
}

/// Records that the capture of these hooks was found (or made) intact now.
pub(crate) fn mark_verified(db: &mut Db, ids: &[i64]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    with_conn!(db, |conn| {
        diesel::update(h::httphooks_hooks.filter(h::id.eq_any(ids)))
            .set(h::capture_verified_at.eq(super::now()))
            .execute(conn)
    })?;
    Ok(())
}

/// Makes the triggers of `table` match its hooks as they are now (none without hooks),
/// following a rename (the hooks take the new name). Returns the table, or None when
/// it no longer exists (its triggers went with it).
pub(crate) fn refresh_triggers(db: &mut Db, table: &str) -> Result<Option<Table>> {
    // MySQL: trigger names follow table names, so remaking a table's triggers takes
    // them from another table that carried them (tables that swapped names); that
    // table's own are remade next, and so on, so that no table is left without.
    let mut refreshed: Vec<String> = Vec::new();
    let mut first = None;
    let mut next = Some(table.to_owned());
    while let Some(name) = next.take() {
        let displaced = db
            .backend()
            .table_by_triggers(&name)?
            .map(|carrier| carrier.name);
        let found = refresh_one_table(db, &name)?;
        if refreshed.is_empty() {
            first = found;
        }
        refreshed.push(name);
        next = displaced.filter(|carrier| !refreshed.contains(carrier));
    }
    Ok(first)
}

fn refresh_one_table(db: &mut Db, table: &str) -> Result<Option<Table>> {
    let hooks = hooks_on_table(db, table)?;
    if hooks.is_empty() {
        if let Some(found) = db.backend().find_table(table)? {
            db.drop_triggers(&found)?;
            return Ok(Some(found));
        }
        return Ok(None);
    }
    let Some(found) = locate(db, &hooks, table)? else {
        return Ok(None);
    };
    if let Some(problem) = columns_missing(&hooks, &found) {
        return Err(Error::invalid(problem));
    }
    let watched = watched_by(&hooks);
    let adopted = found.name != table || hooks.iter().any(|hook| hook.table_oid != found.oid);
    if adopted {
        adopt_name(db, &hooks, &found)?;
    }
    // Triggers already as they would be made are left alone: a change of URL or
    // timeout touches no trigger, and on MySQL remaking one leaves a moment in which
    // writes are not captured.
    if adopted || db.backend().capture_state(&found, &watched)? != super::CaptureState::Intact {
        db.install_triggers(&found, &watched)?;
    }
    mark_verified(db, &hooks.iter().map(|hook| hook.id).collect::<Vec<_>>())?;
    Ok(Some(found))
}

/// Re-creates the triggers of `tables` (every watched table without it) from their
/// current columns. Returns the tables that no longer exist.
pub fn reinstall_triggers(db: &mut Db, tables: Option<&[String]>) -> Result<Vec<String>> {
    let tables = match tables {
        Some(tables) => tables.to_vec(),
        None => watched_tables(db)?,
    };
    let mut missing = Vec::new();
    for table in tables {
        if refresh_triggers(db, &table)?.is_none() {
            missing.push(table);
        }
    }
    Ok(missing)
}

/// Runs a change to hooks in one write transaction, after admitting every new callback:
/// on SQLite a change is matched to hooks when it is admitted, so what was made before
/// this change must be matched against the hooks as they were. The bulk is admitted
/// first in short transactions of its own; the rest inside this one.
fn change_hooks<T>(db: &mut Db, change: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
    super::callbacks::admit_all(db)?;
    let changed = db.write_transaction(|db| {
        db.backend().admit(i64::MAX)?;
        change(db)
    });
    match changed {
        // MySQL commits before each DDL statement: a trigger that could not be made
        // (its table held by a long transaction) may leave the hooks saved without it.
        Err(Error::Database {
            failure: DbFailure::Busy,
            message,
        }) if db.backend().profile().commits_on_ddl => Err(Error::environment(format!(
            "{message}; the change may have been saved without its table's triggers: run \
             `httphooks hooks sync` once that transaction has ended (`httphooks hooks list` \
             shows what was saved)"
        ))),
        other => other,
    }
}

/// [`change_hooks`] for a change that saves a hook version of `content` and
/// `settings`: an ordered or coalescing hook's claims need their index first, made
/// outside any transaction.
fn change_hook_content<T>(
    db: &mut Db,
    content: &HookContent,
    settings: &HookSettings,
    change: impl FnOnce(&mut Db) -> Result<T>,
) -> Result<T> {
    if content.ordered {
        db.backend().index_for_ordered_hooks()?;
    }
    if settings.coalesced {
        db.backend().index_for_coalescing()?;
    }
    change_hooks(db, change)
}

/// Tables that have at least one hook.
pub fn watched_tables(db: &mut Db) -> Result<Vec<String>> {
    with_conn!(db, |conn| {
        let tables: Vec<Option<String>> = h::httphooks_hooks
            .select(h::table_name)
            .distinct()
            .order(h::table_name)
            .load(conn)?;
        Ok(tables.into_iter().flatten().collect())
    })
}

/// Makes a new version of the hook (its name, table, content and settings) its current
/// one.
fn new_version(
    db: &mut Db,
    hook_id: i64,
    row: &HookRow,
    content: &HookContent,
    settings: &HookSettings,
) -> Result<()> {
    let version = NewHookVersion {
        hook_id,
        name: row.name.clone(),
        table_name: row.table_name.clone(),
        content: content.clone(),
        settings: settings.clone(),
    };
    with_conn!(db, |conn| {
        diesel::insert_into(httphooks_hook_versions::table)
            .values(&version)
            .execute(conn)?;
        let version_id: i64 = httphooks_hook_versions::table
            .select(diesel::dsl::max(httphooks_hook_versions::id))
            .filter(httphooks_hook_versions::hook_id.eq(hook_id))
            .first::<Option<i64>>(conn)?
            .expect("the version just inserted");
        diesel::update(h::httphooks_hooks.filter(h::id.eq(hook_id)))
            .set(h::version_id.eq(version_id))
            .execute(conn)?;
        Ok(())
    })
}

/// Inserts a hook and installs its table's triggers, in one transaction.
pub fn create(
    db: &mut Db,
    row: &HookRow,
    content: &HookContent,
    settings: &HookSettings,
) -> Result<Hook> {
    let vanished = || Error::environment("the new hook vanished; run the command again");
    change_hook_content(db, content, settings, |db| {
        let id: i64 = with_conn!(db, |conn| {
            diesel::insert_into(h::httphooks_hooks)
                .values(row)
                .execute(conn)?;
            h::httphooks_hooks
                .select(h::id)
                .filter(h::name.eq(&row.name))
                .first(conn)
        })?;
        new_version(db, id, row, content, settings)?;
        if let Some(table) = &row.table_name {
            refresh_triggers(db, table)?;
        }
        find_by_id(db, id)?.ok_or_else(vanished)
    })
    .map_err(not_changed(&row.name))
}

/// Says which hook a refused change left as it was, when the refusal names another
/// (its table's capture cannot be made until that one is edited).
fn not_changed(hook: &str) -> impl FnOnce(Error) -> Error + '_ {
    move |error| match error {
        Error::Invalid(message) if !message.starts_with(&format!("hook {hook} ")) => {
            Error::invalid(format!("hook {hook} was not changed: {message}"))
        }
        other => other,
    }
}

/// Saves a changed hook and brings the triggers of its old and new table up to date.
pub fn update(
    db: &mut Db,
    before: &Hook,
    row: &HookRow,
    content: &HookContent,
    settings: &HookSettings,
) -> Result<Hook> {
    change_hook_content(db, content, settings, |db| {
        with_conn!(db, |conn| {
            diesel::update(h::httphooks_hooks.filter(h::id.eq(before.id)))
                .set((row, h::updated_at.eq(super::now())))
                .execute(conn)
        })?;
        new_version(db, before.id, row, content, settings)?;
        for table in [&before.table_name, &row.table_name].into_iter().flatten() {
            refresh_triggers(db, table)?;
        }
        find_by_id(db, before.id)?
            .ok_or_else(|| Error::environment("the hook vanished; run the command again"))
    })
    .map_err(not_changed(&before.name))
}

/// Enables or disables a hook, from the next change of its table on.
pub fn set_enabled(db: &mut Db, hook: &Hook, enabled: bool) -> Result<()> {
    change_hooks(db, |db| {
        with_conn!(db, |conn| {
            diesel::update(h::httphooks_hooks.filter(h::id.eq(hook.id)))
                .set((h::enabled.eq(enabled), h::updated_at.eq(super::now())))
                .execute(conn)
        })?;
        if let Some(table) = &hook.table_name {
            refresh_triggers(db, table)?;
        }
        Ok(())
    })
    .map_err(not_changed(&hook.name))
}

/// Deletes a hook, cancelling its waiting callbacks (they keep their history), and
/// brings its table's triggers up to date (none when no other hook watches it).
pub fn remove(db: &mut Db, hook: &Hook, cancel_reason: &str) -> Result<usize> {
    change_hooks(db, |db| {
        let cancelled =
            super::callbacks::cancel(db, super::callbacks::Which::OfHook(hook.id), cancel_reason)?;
        with_conn!(db, |conn| diesel::delete(
            h::httphooks_hooks.filter(h::id.eq(hook.id))
        )
        .execute(conn))?;
        if let Some(table) = &hook.table_name {
            refresh_triggers(db, table)?;
        }
        Ok(cancelled)
    })
    .map_err(not_changed(&hook.name))
}

/// Deletes hook versions that no hook and no callback refers to any more. A table's
/// change not admitted yet (SQLite, MySQL) names no version, which its hook's current
/// one will be; a NULL in `NOT IN`'s list would keep every version.
pub fn prune_unused_versions(db: &mut Db) -> Result<usize> {
    with_conn!(db, |conn| {
        Ok(diesel::sql_query(
            "DELETE FROM httphooks_hook_versions \
             WHERE id NOT IN (SELECT version_id FROM httphooks_hooks WHERE version_id IS NOT NULL) \
               AND id NOT IN (SELECT version_id FROM httphooks_callbacks) \
               AND id NOT IN (SELECT version_id FROM httphooks_new_callbacks \
                              WHERE version_id IS NOT NULL)",
        )
        .execute(conn)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(events: &str, enabled: bool, when_changed: Option<&str>) -> Hook {
        Hook {
            id: 1,
            name: "h".to_owned(),
            table_name: Some("t".to_owned()),
            events: events.to_owned(),
            enabled,
            when_changed: when_changed.map(str::to_owned),
            created_at: chrono::NaiveDateTime::default(),
            updated_at: chrono::NaiveDateTime::default(),
            table_oid: None,
            key_columns: None,
            capture_verified_at: None,
            content: crate::storage::models::HookContent::default(),
            settings: HookSettings::new("http://127.0.0.1:9/"),
        }
    }

    fn watched(events: &[&str], update_columns: Option<&[&str]>) -> Watched {
        Watched {
            events: events.iter().filter_map(|e| TableEvent::parse(e)).collect(),
            update_columns: update_columns.map(|c| c.iter().map(|c| c.to_string()).collect()),
        }
    }

    #[test]
    fn triggers_record_what_enabled_hooks_listen_to() {
        assert_eq!(watched_by(&[]), watched(&[], Some(&[])));
        assert_eq!(
            watched_by(&[
                hook(",delete,insert,", true, None),
                hook(",update,", false, None)
            ]),
            watched(&["insert", "delete"], Some(&[]))
        );
        assert_eq!(
            watched_by(&[
                hook(",update,", true, Some(r#"["a"]"#)),
                hook(",insert,update,", true, Some(r#"["b", "a"]"#)),
            ]),
            watched(&["insert", "update"], Some(&["a", "b", "a"]))
        );
        // One hook that takes every update makes every update count.
        assert_eq!(
            watched_by(&[
                hook(",update,", true, Some(r#"["a"]"#)),
                hook(",update,", true, None),
                hook(",update,", true, Some(r#"["b"]"#)),
            ]),
            watched(&["update"], None)
        );
    }
}
