//! Embedded migrations, recorded in httphooks' own `httphooks_schema_migrations` table so
//! they never mix with the application's diesel migrations in the same database. Each
//! backend embeds its own directory (`migrations/<backend>`) and runs it through
//! [`run_pending`].

use diesel::backend::Backend;
use diesel::migration::{Migration, MigrationSource};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::EmbeddedMigrations;

use super::{with_conn, Db};
use crate::error::{DbFailure, Error, Result};

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS httphooks_schema_migrations (\
    version VARCHAR(50) PRIMARY KEY NOT NULL, \
    run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)";

#[derive(QueryableByName)]
struct AppliedVersion {
    #[diesel(sql_type = Text)]
    version: String,
}

/// Embedded migrations with their versions, oldest first.
type Versioned<DB> = Vec<(String, Box<dyn Migration<DB>>)>;

fn versions<DB: Backend>(source: &EmbeddedMigrations) -> Result<Versioned<DB>>
where
    EmbeddedMigrations: MigrationSource<DB>,
{
    let migrations = MigrationSource::<DB>::migrations(source).map_err(|e| {
        Error::environment(format!(
            "cannot read the embedded migrations: {e}; rebuild httphooks"
        ))
    })?;
    let mut list: Vec<_> = migrations
        .into_iter()
        .map(|m| (m.name().version().to_string(), m))
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(list)
}

/// Applies every pending migration in one transaction (where the backend's DDL is
/// transactional). Returns how many ran.
pub fn migrate(db: &mut Db) -> Result<usize> {
    db.write_transaction(|db| {
        db.backend().lock_migrations()?;
        with_conn!(db, |conn| diesel::sql_query(CREATE_TABLE).execute(conn))?;
        let applied = applied_versions(db)?;
        let ran = db.backend().run_migrations(&applied)?;
        if ran > 0 {
            // Triggers are generated, not migrated: a new schema may need new ones.
            for table in super::hooks::reinstall_triggers(db, None)? {
                log::warn!("table {table} has hooks but no longer exists; remove them with `httphooks hooks remove`");
            }
        }
        Ok(ran)
    })
    .and_then(|ran| {
        db.backend().prepare_for_use()?;
        Ok(ran)
    })
}

/// The versions of `source`, oldest first.
pub(super) fn version_names<DB: Backend>(source: &EmbeddedMigrations) -> Result<Vec<String>>
where
    EmbeddedMigrations: MigrationSource<DB>,
{
    Ok(versions::<DB>(source)?.into_iter().map(|v| v.0).collect())
}

/// Runs the migrations of `source` not in `applied` on `conn`, recording each: what
/// every backend's `run_migrations` does once it holds its migration lock.
pub(super) fn run_pending<C>(
    conn: &mut C,
    source: &EmbeddedMigrations,
    applied: &[String],
) -> Result<usize>
where
    C: diesel::Connection + 'static,
    EmbeddedMigrations: MigrationSource<C::Backend>,
{
    let mut ran = 0;
    for (version, migration) in versions::<C::Backend>(source)? {
        if applied.contains(&version) {
            continue;
        }
        migration.run(conn).map_err(|e| {
            Error::environment(format!(
                "migration {version} failed: {e}; fix the database and run `httphooks migrate` again"
            ))
        })?;
        // Versions are digits and dashes from our own directory names.
        conn.batch_execute(&format!(
            "INSERT INTO httphooks_schema_migrations (version) VALUES ('{version}')"
        ))?;
        ran += 1;
    }
    Ok(ran)
}

/// Refuses to go on with a schema that is missing, older or newer than this binary's.
pub fn ensure_migrated(db: &mut Db) -> Result<()> {
    let not_migrated = || {
        Error::environment(
            "the database has no current httphooks schema; run `httphooks migrate` first",
        )
    };
    // A connection lost or a lock in the way is said as such (and retried by a run); only
    // a missing table means an unmigrated database.
    let applied = applied_versions(db).map_err(|error| match error.db_failure() {
        Some(failure) if failure.is_transient() => error,
        // A file it may not open (SQLite) is that, not a missing schema.
        Some(DbFailure::Other | DbFailure::Data) => error,
        _ => not_migrated(),
    })?;
    let expected = db.backend().migration_versions()?;
    if expected.iter().any(|v| !applied.contains(v)) {
        return Err(not_migrated());
    }
    if applied.iter().any(|v| !expected.contains(v)) {
        return Err(Error::environment(
            "the database's httphooks schema is newer than this binary; upgrade httphooks",
        ));
    }
    Ok(())
}

fn applied_versions(db: &mut Db) -> Result<Vec<String>> {
    let rows: Vec<AppliedVersion> = with_conn!(db, |conn| {
        diesel::sql_query("SELECT version FROM httphooks_schema_migrations").load(conn)
    })?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}
