//! Whether capture still works: every watched table must have the triggers its
//! enabled hooks need. A table rebuilt (create, copy, drop, rename), altered or renamed
//! behind httphooks' back loses or outdates them without a word, so every command
//! looks (cheaply: the hooks and the catalog, never the application's rows).

use chrono::NaiveDateTime;

use super::hooks::{self, hooks_on_table, locate, watched_by};
use super::models::Hook;
use super::{CaptureState, Db, Table};
use crate::error::Result;

/// How the capture of one watched table stands.
#[derive(Debug, Clone)]
pub struct TableCapture {
    /// The table's name as its hooks hold it.
    pub stored_name: String,
    /// Every hook of the table, enabled or not.
    pub hooks: Vec<Hook>,
    /// The table as it is now (found by identity, then by name); None when it is gone.
    pub table: Option<Table>,
    pub state: State,
    /// Why capture cannot be restored until a hook is edited (it names a column the
    /// table does not have), with the edit that fixes it.
    pub needs_edit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Capturing as its hooks say (or no enabled hook: nothing to capture).
    Intact,
    Missing,
    Stale,
    /// A trigger of httphooks' on it, or on one of its partitions, is disabled.
    Disabled,
    /// A table of that name exists, but not the one the hooks were made for (it was
    /// dropped and created again): the hooks get none of its changes.
    Recreated,
    /// The table no longer exists.
    Gone,
}

impl TableCapture {
    pub fn broken(&self) -> bool {
        self.state != State::Intact
    }

    /// The table's current name when it was renamed (PostgreSQL and MySQL follow
    /// renames).
    pub fn renamed_to(&self) -> Option<&str> {
        self.table
            .as_ref()
            .map(|t| t.name.as_str())
            .filter(|name| *name != self.stored_name)
    }

    /// The name to show: the current one.
    pub fn name(&self) -> &str {
        self.renamed_to().unwrap_or(&self.stored_name)
    }

    /// The enabled hooks, whose changes are lost while capture is broken.
    pub fn hook_names(&self) -> String {
        let names: Vec<&str> = self
            .hooks
            .iter()
            .filter(|hook| hook.enabled)
            .map(|hook| hook.name.as_str())
            .collect();
        names.join(", ")
    }

    /// Since when capture may have been missing: the last time httphooks found or
    /// made it intact (or, before it ever checked, the last change of a hook).
    pub fn since(&self) -> String {
        self.hooks
            .iter()
            .filter(|hook| hook.enabled)
            .map(|hook| hook.capture_verified_at.unwrap_or(hook.updated_at))
            .min()
            .map(|at: NaiveDateTime| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "an unknown time".to_owned())
    }

    /// What is wrong, as a clause.
    pub fn problem(&self) -> &'static str {
        match self.state {
            State::Intact => "its triggers are intact",
            State::Missing => "its triggers are missing",
            State::Stale => "its triggers do not match its columns, key or hooks",
            State::Disabled => {
                "a trigger of httphooks' on it or on one of its partitions is disabled (ALTER TABLE … DISABLE TRIGGER)"
            }
            State::Recreated => "the table was dropped and created again, without its triggers",
            State::Gone => "the table no longer exists",
        }
    }
}

/// Looks at every watched table; reads only.
pub fn inspect(db: &mut Db) -> Result<Vec<TableCapture>> {
    let mut found = Vec::new();
    for name in hooks::watched_tables(db)? {
        let hooks = hooks_on_table(db, &name)?;
        let table = locate(db, &hooks, &name)?;
        let capturing = hooks.iter().any(|hook| hook.enabled);
        let needs_edit = table
            .as_ref()
            .filter(|_| capturing)
            .and_then(|table| hooks::columns_missing(&hooks, table));
        let state = match &table {
            _ if !capturing => State::Intact,
            None => State::Gone,
            // A PostgreSQL trigger matches hooks by the table's oid: hooks that hold
            // another (the table was re-created) get none of its changes.
            Some(table) if hooks.iter().any(|hook| hook.table_oid != table.oid) => State::Recreated,
            // Triggers cannot capture what its hooks name (see `columns_missing`).
            Some(_) if needs_edit.is_some() => State::Stale,
            Some(table) => match db.backend().capture_state(table, &watched_by(&hooks))? {
                CaptureState::Intact => State::Intact,
                CaptureState::Missing => State::Missing,
                CaptureState::Stale => State::Stale,
                CaptureState::Disabled => State::Disabled,
            },
        };
        found.push(TableCapture {
            stored_name: name,
            hooks,
            table,
            state,
            needs_edit,
        });
    }
    Ok(found)
}

/// Gives the hooks of a renamed table its new name (capture went on: the trigger
/// follows the table's identity).
pub fn adopt_rename(db: &mut Db, capture: &mut TableCapture) -> Result<()> {
    let Some(table) = capture.table.clone() else {
        return Ok(());
    };
    hooks::adopt_rename(db, &capture.hooks, &table)?;
    capture.stored_name = table.name.clone();
    if let Some(table) = &mut capture.table {
        // Its triggers are made for its name now.
        table.captured_as = None;
    }
    Ok(())
}

/// Re-creates the table's triggers for its current columns; false when the table is
/// gone.
pub fn restore(db: &mut Db, capture: &TableCapture) -> Result<bool> {
    let name = capture.stored_name.clone();
    Ok(db
        .write_transaction(|db| hooks::refresh_triggers(db, &name))?
        .is_some())
}

/// Records that the capture of these tables' hooks is intact now.
pub fn mark_verified(db: &mut Db, intact: &[&TableCapture]) -> Result<()> {
    let ids: Vec<i64> = intact
        .iter()
        .flat_map(|capture| capture.hooks.iter().map(|hook| hook.id))
        .collect();
    db.write_transaction(|db| hooks::mark_verified(db, &ids))
}
