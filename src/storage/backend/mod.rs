//! The one interface every backend implements, and the types it speaks in.
//!
//! Each backend file (`sqlite.rs`, `postgres.rs`, `mysql.rs`) implements [`Backend`]
//! on its diesel connection type and holds all SQL that is its own: connection
//! settings, migrations, table introspection, triggers, admission and claims. The rest
//! of storage reaches it through [`super::Db::backend`], and uses diesel's DSL for
//! queries every backend runs as they are (the `with_conn!` macro). Nothing outside
//! storage asks which backend it has: it asks a capability.

use chrono::NaiveDateTime;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::migration::MigrationSource;
use diesel_migrations::EmbeddedMigrations;

use super::models::Attempt;
use crate::error::Result;

mod sql;
mod types;

pub(in crate::storage) use sql::*;
pub use types::*;

/// What a backend is, as values. The rest of the crate asks these, never which
/// backend it has.
#[derive(Debug)]
pub struct Profile {
    /// The product name, for messages ("SQLite").
    pub name: &'static str,
    /// Whether a second connection may write while the first claims. Where it may
    /// not (SQLite: one writer at a time), two connections would only wait on each
    /// other, so the engine records outcomes on its claiming connection.
    pub allows_concurrent_writers: bool,
    /// How a user names a table outside the current schema, for a message about a
    /// table not found; None where tables have one namespace per database.
    pub other_schema_hint: Option<&'static str>,
    /// Whether a DDL statement commits the transaction it runs in (MySQL), so that a
    /// change of hooks and their triggers is not one transaction there.
    pub commits_on_ddl: bool,
    /// Whether triggers see TRUNCATE (PostgreSQL), so that hooks may listen to it.
    pub captures_truncate: bool,
    /// The session settings of the delivery engine's connections (see
    /// `Backend::tune_for_delivery`).
    pub delivery_session: &'static str,
    /// The expression callbacks are claimed in the order of (their due time; 1970 for
    /// a new one), as the due index has it.
    pub due_key: &'static str,
}

/// A backend's embedded migrations (`migrations/<backend>`).
pub trait Embedded {
    const MIGRATIONS: EmbeddedMigrations;
}

/// What every backend does alike through its diesel connection: implemented once,
/// below, for each connection type with [`Embedded`] migrations.
pub trait Connected {
    /// Runs statements that return no rows (session settings).
    fn execute_batch(&mut self, sql: &str) -> Result<()>;

    /// Begins a transaction (a savepoint inside one).
    fn begin(&mut self) -> Result<()>;

    /// The versions of this binary's migrations for this backend, oldest first.
    fn migration_versions(&self) -> Result<Vec<String>>;

    /// Runs the migrations not in `applied` (recording each in
    /// `httphooks_schema_migrations`), inside the caller's write transaction.
    /// Returns how many ran.
    fn run_migrations(&mut self, applied: &[String]) -> Result<usize>;
}

impl<C> Connected for C
where
    C: diesel::Connection<TransactionManager = AnsiTransactionManager> + Embedded + 'static,
    EmbeddedMigrations: MigrationSource<C::Backend>,
{
    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.batch_execute(sql)?)
    }

    fn begin(&mut self) -> Result<()> {
        Ok(AnsiTransactionManager::begin_transaction(self)?)
    }

    fn migration_versions(&self) -> Result<Vec<String>> {
        super::migrations::version_names::<C::Backend>(&C::MIGRATIONS)
    }

    fn run_migrations(&mut self, applied: &[String]) -> Result<usize> {
        super::migrations::run_pending(self, &C::MIGRATIONS, applied)
    }
}

/// What a database must do for httphooks. Object safe: `Db` hands out `&mut dyn
/// Backend`.
pub trait Backend: Connected {
    fn profile(&self) -> &'static Profile;

    /// The most one callback's row may hold when read back (MySQL: a packet), so that
    /// its event data and stored body together stay readable; None where only memory
    /// limits it.
    fn max_callback_bytes(&mut self) -> Result<Option<i64>> {
        Ok(None)
    }

    /// Ways changes of `table` reach no trigger that a user should be warned of when
    /// hooks listen to `events` (MySQL: foreign-key cascades), one sentence each.
    fn uncaptured_paths(&mut self, _table: &Table, _events: &[TableEvent]) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Sets up a delivery engine's connection ([`Profile::delivery_session`]).
    fn tune_for_delivery(&mut self) -> Result<()> {
        let settings = self.profile().delivery_session;
        self.execute_batch(settings)
    }

    /// Settings a database of httphooks' keeps (SQLite's journal), made once it is
    /// known to be migrated.
    fn prepare_for_use(&mut self) -> Result<()> {
        Ok(())
    }

    /// Makes the index that ordered hooks' claims look up earlier callbacks of the same
    /// row in, where the migrations do not (see the MySQL backend); called before a
    /// hook becomes ordered, outside any transaction.
    fn index_for_ordered_hooks(&mut self) -> Result<()> {
        Ok(())
    }

    /// Makes the index a `--coalesce` hook's runs look up newer changes of a row by
    /// (`storage::coalesce`), when the first such hook is saved: waiting callbacks by
    /// row, hook and id. Until then no other hook pays for it. The row comes first so
    /// that claims of `--hook_id` runs (hook_id IN …) never pick it over the due index.
    fn index_for_coalescing(&mut self) -> Result<()> {
        self.execute_batch(
            "CREATE INDEX IF NOT EXISTS httphooks_callbacks_rows \
             ON httphooks_callbacks (object_id, hook_id, id) WHERE status = 'waiting'",
        )
    }

    /// Begins a transaction that writes (see `Db::write_transaction`).
    fn begin_write(&mut self) -> Result<()> {
        self.begin()
    }

    // --- Schema -------------------------------------------------------------------

    /// Keeps concurrent `migrate` runs apart until the caller's transaction ends
    /// (where its write transaction does not already).
    fn lock_migrations(&mut self) -> Result<()> {
        Ok(())
    }

    // --- Application tables and capture --------------------------------------------

    /// An application table by the name a user gives or a hook stores, or None.
    fn find_table(&mut self, name: &str) -> Result<Option<Table>>;

    /// The table with this identity whatever it is called now; None where tables
    /// have no identity but their name.
    fn table_by_oid(&mut self, _oid: i64) -> Result<Option<Table>> {
        Ok(None)
    }

    /// The table that carries the capture triggers made for `stored_name`, when it is
    /// called something else now and no table has taken that name (MySQL moves a
    /// table's triggers with it on rename); None where triggers do not tell.
    fn table_by_triggers(&mut self, _stored_name: &str) -> Result<Option<Table>> {
        Ok(None)
    }

    /// The SQL that creates the triggers turning `table`'s row changes into new
    /// callbacks, for what its enabled hooks listen to (`watched`).
    fn trigger_sql(&self, table: &Table, watched: &Watched) -> Vec<String>;

    /// The SQL that drops httphooks' triggers of `table` (none there is fine).
    fn drop_trigger_sql(&self, table: &Table) -> Vec<String>;

    /// The SQL that replaces `table`'s triggers with those `trigger_sql` makes: drop,
    /// then create (SQLite and PostgreSQL run it in one transaction, so no write falls
    /// in between).
    fn replace_trigger_sql(&mut self, table: &Table, watched: &Watched) -> Result<Vec<String>> {
        let mut statements = self.drop_trigger_sql(table);
        statements.extend(self.trigger_sql(table, watched));
        Ok(statements)
    }

    /// Where triggers write the table's name (MySQL), the SQL that gives the changes a
    /// renamed table's old triggers wrote, and that are not admitted yet, its new name:
    /// its hooks hold the new one now.
    fn rename_pending_sql(&self, _from: &str, _to: &str) -> Option<String> {
        None
    }

    /// The other tables of `table`'s partition tree (PostgreSQL), whose capture would
    /// collide with its own; none where tables are not partitioned so.
    fn partition_relatives(&mut self, _table: &Table) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Whether the table's triggers are the ones `trigger_sql` would make now.
    fn capture_state(&mut self, table: &Table, watched: &Watched) -> Result<CaptureState>;

    // --- The queue ------------------------------------------------------------------

    /// Moves up to `limit` of the oldest new callbacks (where triggers and enqueue
    /// write) into httphooks_callbacks, ids in creation order, each with its
    /// webhook-id. Returns how many callbacks that made.
    fn admit(&mut self, limit: i64) -> Result<usize>;

    /// Callbacks that admitting would make, of changes made at or after `since`.
    fn count_new(&mut self, since: Option<NaiveDateTime>) -> Result<i64>;

    /// Makes a claim (admitting first), with leases, inside a write transaction.
    /// Returns the claimed callbacks in claim order.
    fn claim(&mut self, claim: &Claim) -> Result<Vec<Claimed>>;

    /// Renews the leases `token` holds on `ids` (see `callbacks::renew`); returns the
    /// ids it still holds.
    fn renew(&mut self, token: &str, ids: &[i64], started: bool) -> Result<Vec<i64>>;

    /// When a callback is due, in this backend's SQL on `httphooks_callbacks` (see
    /// `ClaimFilter::sql_condition`), with the due time and any position as literals.
    fn due_condition(&self, filter: &ClaimFilter) -> String;

    /// Applies outcomes (bodies larger than [`INLINE_PAYLOAD`] stored already) to the
    /// callbacks `token` still holds, in the caller's transaction: one statement fed by
    /// [`outcomes_json`] on a server, one cached statement per callback in-process
    /// (SQLite); returns how many changed.
    fn apply_outcomes(&mut self, token: &str, outcomes: &[&Outcome]) -> Result<usize>;

    /// Inserts attempt records (a part of at most `RECORD_BYTES`, in the caller's
    /// transaction).
    fn insert_attempts(&mut self, attempts: &[&Attempt]) -> Result<()>;

    /// Of `ids` (callbacks), locks those no other transaction holds until the caller's
    /// transaction ends, and returns them: an operator's batch (`callbacks retry|cancel`
    /// by filter) neither waits behind a run's claim or record nor keeps one waiting
    /// past its lock timeout. Where one writer holds the whole database at a time
    /// (SQLite) the caller's write transaction holds them all already.
    fn lock_unheld(&mut self, ids: &[i64]) -> Result<Vec<i64>> {
        Ok(ids.to_vec())
    }

    /// Before the callbacks `holders` are deleted: the attempts of the callbacks
    /// `staying` whose answer (a batch's, stored once) is in a holder's attempt get a
    /// copy of it, so deleting part of a batch loses no answer a kept callback shows.
    fn keep_answers_of(&mut self, holders: &[i64], staying: &[i64]) -> Result<()> {
        self.execute_batch(&sql::keep_answers_sql(holders, staying))
    }

    /// How this backend writes backfill callbacks (`hooks backfill`) of hook version
    /// `version_id` for rows of `table` read as `t`.
    fn backfill_sql(&self, table: &Table, version_id: i64) -> BackfillSql;

    /// Writes a custom event of the enabled hook named `hook` where triggers write;
    /// returns how many callbacks it makes. The caller has checked hook and event.
    fn enqueue(&mut self, hook: &str, event: &str, data: &serde_json::Value) -> Result<usize>;
}
