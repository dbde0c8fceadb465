//! `hooks backfill`: one callback per existing row of a hook's table, written where
//! triggers write (event `backfill`, the row as an insert's trigger records it, for the
//! hook's current version only), so that admission gives them ids, webhook-ids and size
//! checks like any change. Rows are read in key order, a batch at a time, each batch in
//! its own short transaction that locks the rows it reads against writers (SQLite: the
//! write lock) until it commits: a change that commits during a backfill is captured
//! after the backfilled state of its row, so an `--ordered` hook sends a row's states in
//! the order they happened.

use diesel::RunQueryDsl;
use serde_json::Value;

use super::backend::BackfillSql;
use super::{with_conn, CountRow, Db};
use crate::error::{Error, Result};

/// What one batch did: how many rows it wrote a callback for, and the key of the last.
pub struct Batch {
    pub rows: usize,
    pub last_key: Option<Vec<Value>>,
}

#[derive(diesel::QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    k: String,
}

/// The version a hook's new callbacks are made with.
pub fn current_version(db: &mut Db, hook_id: i64) -> Result<Option<i64>> {
    use super::schema::httphooks_hooks::dsl as h;
    use diesel::{ExpressionMethods, QueryDsl};
    let version: Option<Option<i64>> = with_conn!(db, |conn| {
        use diesel::OptionalExtension;
        h::httphooks_hooks
            .select(h::version_id)
            .filter(h::id.eq(hook_id))
            .first(conn)
            .optional()
    })?;
    Ok(version.flatten())
}

/// How many rows `condition` selects (`--where`, checked here before anything is
/// written: SQL the table cannot run is the operator's to fix, exit 2).
pub fn count(db: &mut Db, sql: &BackfillSql, condition: &str) -> Result<i64> {
    let query = format!(
        "SELECT count(*) AS n FROM {} t WHERE ({condition})",
        sql.table
    );
    let counted = with_conn!(db, |conn| Ok::<_, Error>(
        diesel::sql_query(&query).get_result::<CountRow>(conn)
    ))?;
    counted.map(|row| row.n).map_err(|error| {
        let detail = crate::error::one_line(&error.to_string());
        match Error::from(error) {
            transient if transient.db_failure().is_some_and(|f| f.is_transient()) => transient,
            _ => Error::invalid(format!(
                "the --where condition does not work on table {} ({detail}); fix it (nothing was written)",
                sql.table
            )),
        }
    })
}

/// How many rows `condition` selects that have no value in a key column: keyset
/// paging cannot go through them.
pub fn count_without_key(db: &mut Db, sql: &BackfillSql, condition: &str) -> Result<i64> {
    let missing: Vec<String> = sql
        .key_list
        .iter()
        .map(|k| format!("{k} IS NULL"))
        .collect();
    let query = format!(
        "SELECT count(*) AS n FROM {} t WHERE ({condition}) AND ({})",
        sql.table,
        missing.join(" OR ")
    );
    let row: CountRow = with_conn!(db, |conn| diesel::sql_query(&query).get_result(conn))?;
    Ok(row.n)
}

/// Writes the callbacks of the first `limit` rows that `condition` selects after the
/// key `after`, in key order, in one write transaction.
pub fn batch(
    db: &mut Db,
    sql: &BackfillSql,
    condition: &str,
    after: Option<&[Value]>,
    limit: i64,
) -> Result<Batch> {
    let after = match after {
        Some(key) => format!(" AND ({}) > ({})", sql.key_columns, literals(sql, key)?),
        None => String::new(),
    };
    let keys_query = format!(
        "SELECT {} AS k FROM {} t WHERE ({condition}){after} ORDER BY {} LIMIT {limit} {}",
        sql.key_json, sql.table, sql.key_columns, sql.lock
    );
    db.write_transaction(|db| {
        let keys: Vec<KeyRow> = with_conn!(db, |conn| diesel::sql_query(&keys_query).load(conn))?;
        let Some(last) = keys.last() else {
            return Ok(Batch {
                rows: 0,
                last_key: None,
            });
        };
        let last_key: Vec<Value> = serde_json::from_str(&last.k)
            .map_err(|e| Error::environment(format!("a key read back as {}: {e}", last.k)))?;
        let insert = format!(
            "{} FROM {} t WHERE ({condition}){after} AND ({}) <= ({}) ORDER BY {}",
            sql.insert_select,
            sql.table,
            sql.key_columns,
            literals(sql, &last_key)?,
            sql.key_columns
        );
        let rows = with_conn!(db, |conn| diesel::sql_query(&insert).execute(conn))?;
        Ok(Batch {
            rows,
            last_key: Some(last_key),
        })
    })
}

/// A key's values as SQL literals (numbers as they are, text quoted): the databases
/// compare them with the key's columns by the columns' types.
fn literals(sql: &BackfillSql, key: &[Value]) -> Result<String> {
    let parts: Result<Vec<String>> = key
        .iter()
        .map(|value| match value {
            Value::Number(n) => Ok(n.to_string()),
            Value::String(text) => Ok((sql.quote_literal)(text)),
            Value::Bool(b) => Ok(if *b { "TRUE" } else { "FALSE" }.to_owned()),
            other => Err(Error::invalid(format!(
                "a backfill goes through rows by their key, and a key value of {other} cannot be compared; backfill with --where to leave those rows out"
            ))),
        })
        .collect();
    Ok(parts?.join(", "))
}
