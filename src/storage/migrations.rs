//! Embedded migrations, recorded in httphooks' own `httphooks_schema_migrations` table so
//! they never mix with the application's diesel migrations in the same database.

use diesel::backend::Backend;
use diesel::migration::{Migration, MigrationSource};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::{with_conn, Db};
use crate::error::{Error, Result};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

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

/// Applies every pending migration in one transaction. Returns how many ran.
pub fn migrate(db: &mut Db) -> Result<usize> {
    db.write_transaction(|db| {
        let source = match db {
            Db::Sqlite(_) => &SQLITE,
            Db::Postgres(conn) => {
                // Two `migrate` runs at once: the second waits, then finds nothing to do.
                diesel::sql_query("SELECT pg_advisory_xact_lock(727274685)").execute(conn)?;
                &POSTGRES
            }
        };
        with_conn!(db, |conn| diesel::sql_query(CREATE_TABLE).execute(conn))?;
        let applied = applied_versions(db)?;
        let ran = with_conn!(db, |conn| {
            let mut ran = 0;
            for (version, migration) in versions(source)? {
                if applied.contains(&version) {
                    continue;
                }
                migration.run(conn).map_err(|e| {
                    Error::environment(format!(
                        "migration {version} failed: {e}; fix the database and run `httphooks migrate` again"
                    ))
                })?;
                // Versions are digits and dashes from our own directory names.
                diesel::sql_query(format!("INSERT INTO httphooks_schema_migrations (version) VALUES ('{version}')"))
                    .execute(conn)?;
                ran += 1;
            }
            Ok::<_, Error>(ran)
        })?;
        if ran > 0 {
            // Triggers are generated, not migrated: a new schema may need new ones.
            for table in super::hooks::reinstall_triggers(db, None)? {
                log::warn!("table {table} has hooks but no longer exists; remove them with `httphooks hooks remove`");
            }
        }
        Ok(ran)
    })
}

/// Refuses to go on with a schema that is missing, older or newer than this binary's.
pub fn ensure_migrated(db: &mut Db) -> Result<()> {
    let not_migrated = || {
        Error::environment(
            "the database has no current httphooks schema; run `httphooks migrate` first",
        )
    };
    let applied = applied_versions(db).map_err(|_| not_migrated())?;
    let expected: Vec<String> = match db {
        Db::Sqlite(_) => versions::<diesel::sqlite::Sqlite>(&SQLITE)?
            .into_iter()
            .map(|v| v.0)
            .collect(),
        Db::Postgres(_) => versions::<diesel::pg::Pg>(&POSTGRES)?
            .into_iter()
            .map(|v| v.0)
            .collect(),
    };
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
