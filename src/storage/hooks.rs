//! Hook definitions, and keeping each watched table's triggers in step with them.

use diesel::prelude::*;

use super::models::{Hook, HookFields, NewHookVersion};
use super::schema::httphooks_hook_versions;
use super::schema::httphooks_hooks::dsl as h;
use super::{with_conn, Column, Db};
use crate::error::{Error, Result};

pub fn find(db: &mut Db, name: &str) -> Result<Option<Hook>> {
    with_conn!(db, |conn| {
        Ok(h::httphooks_hooks
            .select(Hook::as_select())
            .filter(h::name.eq(name))
            .first(conn)
            .optional()?)
    })
}

pub fn find_by_id(db: &mut Db, id: i64) -> Result<Option<Hook>> {
    with_conn!(db, |conn| {
        Ok(h::httphooks_hooks
            .select(Hook::as_select())
            .filter(h::id.eq(id))
            .first(conn)
            .optional()?)
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

pub fn list(db: &mut Db) -> Result<Vec<Hook>> {
    with_conn!(db, |conn| Ok(h::httphooks_hooks
        .select(Hook::as_select())
        .order(h::id)
        .load(conn)?))
}

fn count_on_table(db: &mut Db, table: &str) -> Result<i64> {
    with_conn!(db, |conn| {
        Ok(h::httphooks_hooks
            .filter(h::table_name.eq(table))
            .count()
            .get_result(conn)?)
    })
}

/// Re-creates the triggers of `tables` (every watched table without it) from their
/// current columns. Returns the tables that no longer exist, whose triggers went with
/// them.
pub fn reinstall_triggers(db: &mut Db, tables: Option<&[String]>) -> Result<Vec<String>> {
    let tables = match tables {
        Some(tables) => tables.to_vec(),
        None => watched_tables(db)?,
    };
    let mut missing = Vec::new();
    for table in tables {
        match db.table_columns(&table)? {
            Some(columns) => db.install_triggers(&table, &columns)?,
            None => missing.push(table),
        }
    }
    Ok(missing)
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

/// Makes a new version of the hook's delivery settings its current one.
fn new_version(db: &mut Db, hook_id: i64, fields: &HookFields) -> Result<()> {
    let version = NewHookVersion::of(hook_id, fields);
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
pub fn create(db: &mut Db, fields: &HookFields, columns: Option<&[Column]>) -> Result<Hook> {
    db.write_transaction(|db| {
        with_conn!(db, |conn| diesel::insert_into(h::httphooks_hooks)
            .values(fields)
            .execute(conn))?;
        let id = find(db, &fields.name)?
            .ok_or_else(|| Error::environment("the new hook vanished; run the command again"))?
            .id;
        new_version(db, id, fields)?;
        if let (Some(table), Some(columns)) = (&fields.table_name, columns) {
            db.install_triggers(table, columns)?;
        }
        find(db, &fields.name)?
            .ok_or_else(|| Error::environment("the new hook vanished; run the command again"))
    })
}

/// Saves a changed hook; moves triggers when its table changed. `columns` are those of
/// the (new) table.
pub fn update(
    db: &mut Db,
    before: &Hook,
    fields: &HookFields,
    columns: Option<&[Column]>,
) -> Result<Hook> {
    db.write_transaction(|db| {
        with_conn!(db, |conn| {
            diesel::update(h::httphooks_hooks.filter(h::id.eq(before.id)))
                .set((fields, h::updated_at.eq(super::now())))
                .execute(conn)
        })?;
        new_version(db, before.id, fields)?;
        if before.table_name != fields.table_name {
            if let Some(old_table) = &before.table_name {
                drop_triggers_if_unwatched(db, old_table)?;
            }
            if let (Some(table), Some(columns)) = (&fields.table_name, columns) {
                db.install_triggers(table, columns)?;
            }
        }
        find_by_id(db, before.id)?
            .ok_or_else(|| Error::environment("the hook vanished; run the command again"))
    })
}

pub fn set_enabled(db: &mut Db, hook: &Hook, enabled: bool) -> Result<()> {
    with_conn!(db, |conn| {
        diesel::update(h::httphooks_hooks.filter(h::id.eq(hook.id)))
            .set((h::enabled.eq(enabled), h::updated_at.eq(super::now())))
            .execute(conn)
    })?;
    Ok(())
}

/// Deletes a hook (its callbacks keep their history, with `hook_id` emptied) and drops
/// its table's triggers when no other hook watches the table.
pub fn remove(db: &mut Db, hook: &Hook, cancel_reason: &str) -> Result<usize> {
    db.write_transaction(|db| {
        // Its new callbacks too: they are waiting callbacks of the hook.
        db.admit_new_callbacks(i64::MAX)?;
        let cancelled = super::callbacks::cancel_waiting_for_hook(db, hook.id, cancel_reason)?;
        with_conn!(db, |conn| diesel::delete(
            h::httphooks_hooks.filter(h::id.eq(hook.id))
        )
        .execute(conn))?;
        if let Some(table) = &hook.table_name {
            drop_triggers_if_unwatched(db, table)?;
        }
        Ok(cancelled)
    })
}

fn drop_triggers_if_unwatched(db: &mut Db, table: &str) -> Result<()> {
    if count_on_table(db, table)? == 0 {
        db.drop_triggers(table)?;
    }
    Ok(())
}

/// Deletes hook versions that no hook and no callback refers to any more.
pub fn prune_unused_versions(db: &mut Db) -> Result<usize> {
    with_conn!(db, |conn| {
        Ok(diesel::sql_query(
            "DELETE FROM httphooks_hook_versions \
             WHERE id NOT IN (SELECT version_id FROM httphooks_hooks WHERE version_id IS NOT NULL) \
               AND id NOT IN (SELECT version_id FROM httphooks_callbacks) \
               AND id NOT IN (SELECT version_id FROM httphooks_new_callbacks)",
        )
        .execute(conn)?)
    })
}
