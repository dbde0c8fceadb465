//! PostgreSQL: connection, table introspection, the generic capture trigger, and
//! claims with FOR UPDATE SKIP LOCKED so that runs on several hosts share the work.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
use diesel::PgConnection;

use super::callbacks::{lease_ms_sql, ClaimFilter, Claimed, StartMarks};
use super::{connection_error, now, primary_key, quote_ident, quote_literal, Column, ColumnKind};
use crate::error::Result;

/// The expression of the due index (see the migration): it must be written the same
/// way in queries for PostgreSQL to use the index.
const DUE_KEY: &str = "COALESCE(next_attempt_at, TIMESTAMP '1970-01-01')";

pub fn open(url: &str) -> Result<PgConnection> {
    let fail = |e: &dyn std::fmt::Display| {
        connection_error(
            "PostgreSQL",
            url,
            "that the server is running and accepts you",
            e,
        )
    };
    let mut conn = PgConnection::establish(url).map_err(|e| fail(&e))?;
    // A SQL_ASCII database holds any bytes in text, and the server refuses to send
    // bytes that are not UTF-8 to a UTF-8 client: take them as they are (they are read
    // as bytes, see storage::text).
    conn.batch_execute(
        "SELECT set_config('client_encoding', CASE current_setting('server_encoding') \
           WHEN 'SQL_ASCII' THEN 'SQL_ASCII' ELSE 'UTF8' END, false)",
    )
    .map_err(|e| fail(&e))?;
    Ok(conn)
}

#[derive(QueryableByName)]
struct TableInfo {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    declared: String,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

pub fn table_columns(conn: &mut PgConnection, table: &str) -> Result<Option<Vec<Column>>> {
    // Tables are looked up in the first schema of the search_path, where the
    // trigger's TG_TABLE_NAME will match them.
    let rows: Vec<TableInfo> = diesel::sql_query(
        "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS declared, \
                COALESCE((SELECT k.position FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) \
                          WHERE k.attnum = a.attnum), 0)::int AS pk \
         FROM pg_class c \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
         WHERE c.relname = $1 AND c.relkind IN ('r', 'p') \
           AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) \
         ORDER BY a.attnum",
    )
    .bind::<Text, _>(table)
    .load(conn)?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .map(|r| Column {
                always_integer: false,
                kind: ColumnKind::from_declared(&r.declared),
                name: r.name,
                primary_key: r.pk,
            })
            .collect(),
    ))
}

pub fn install_triggers(conn: &mut PgConnection, table: &str, columns: &[Column]) -> Result<()> {
    // The key columns as the trigger's arguments (see httphooks_capture()).
    let keys: Vec<String> = primary_key(columns)
        .iter()
        .map(|c| quote_literal(&c.name))
        .collect();
    let table = quote_ident(table);
    conn.batch_execute(&format!(
        "DROP TRIGGER IF EXISTS httphooks_capture ON {table}; \
         CREATE TRIGGER httphooks_capture AFTER INSERT OR UPDATE OR DELETE ON {table} \
         FOR EACH ROW EXECUTE FUNCTION httphooks_capture({});",
        keys.join(", ")
    ))?;
    Ok(())
}

pub fn drop_triggers(conn: &mut PgConnection, table: &str) -> Result<()> {
    conn.batch_execute(&format!(
        "DROP TRIGGER IF EXISTS httphooks_capture ON {}",
        quote_ident(table)
    ))?;
    Ok(())
}

/// Moves up to `limit` of the oldest new callbacks into httphooks_callbacks; returns
/// how many. Each gets its webhook-id: the change's time in milliseconds (12 hex
/// digits) and 80 random bits. One admitter at a time (a transaction-scoped advisory lock), so that
/// callback ids follow the order the events were made in, which `--ordered` relies on.
pub fn admit(conn: &mut PgConnection, limit: i64) -> Result<usize> {
    conn.transaction(|conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(727274686)").execute(conn)?;
        Ok(diesel::sql_query(
            "WITH moved AS ( \
               DELETE FROM httphooks_new_callbacks WHERE id IN \
                 (SELECT id FROM httphooks_new_callbacks ORDER BY id LIMIT $1) \
               RETURNING *) \
             INSERT INTO httphooks_callbacks \
               (hook_id, version_id, event_type, object_id, ordered, event_data, created_at, webhook_id) \
             SELECT v.hook_id, m.version_id, m.event_type, m.object_id, v.ordered, \
               (CASE m.event_type \
                 WHEN 'insert' THEN jsonb_build_object('instance', m.row_data, 'old', NULL) \
                 WHEN 'update' THEN jsonb_build_object('instance', m.row_data, 'old', m.old_row_data) \
                 WHEN 'delete' THEN jsonb_build_object('instance', m.row_data, 'old', m.row_data) \
                 ELSE jsonb_build_object('data', m.row_data) END)::text, \
               m.created_at, \
               'msg_' || lpad(to_hex((extract(epoch FROM m.created_at) * 1000)::bigint), 12, '0') \
                 || lpad(to_hex((random() * 1099511627776)::bigint), 10, '0') \
                 || lpad(to_hex((random() * 1099511627776)::bigint), 10, '0') \
             FROM moved m JOIN httphooks_hook_versions v ON v.id = m.version_id \
             ORDER BY m.id",
        )
        .bind::<BigInt, _>(limit)
        .execute(conn)?)
    })
}

/// Counts new callbacks not yet admitted, made at or after `since` (all without it).
pub fn count_new(conn: &mut PgConnection, since: Option<chrono::NaiveDateTime>) -> Result<i64> {
    let query = "SELECT count(*) AS n FROM httphooks_new_callbacks \
                 WHERE $1::timestamp IS NULL OR created_at >= $1";
    let count: super::CountRow = diesel::sql_query(query)
        .bind::<diesel::sql_types::Nullable<Timestamp>, _>(since)
        .get_result(conn)?;
    Ok(count.n)
}

/// The due rule (see `ClaimFilter::sql_condition`) with PostgreSQL's spelling and
/// clock; binds the due time as $1.
fn due_condition(filter: &ClaimFilter) -> String {
    let mut condition = filter.sql_condition(DUE_KEY, "$1", NOW, "IS NOT DISTINCT FROM");
    if let Some((due_at, id)) = filter.after {
        // Literals: the timestamp is formatted by us, the id is an integer.
        condition.push_str(&format!(
            " AND ({DUE_KEY}, httphooks_callbacks.id) > ({}::timestamp, {id})",
            super::callbacks::timestamp_literal(due_at)
        ));
    }
    condition
}

/// The database's clock, in the UTC the timestamps hold.
const NOW: &str = "(now() AT TIME ZONE 'UTC')";

/// A CTE that locks the due rows (skipping those another run holds) and then updates
/// them: unlike `IN (SELECT … FOR UPDATE SKIP LOCKED)`, it never claims more than the
/// limit whatever plan PostgreSQL picks. The callbacks to mark as started are picked
/// with an aggregate: a window function there made PostgreSQL read the whole backlog. Leases are set and checked with the database's
/// clock, so runs on hosts whose clocks differ still agree on when a lease ran out.
pub fn claim(
    conn: &mut PgConnection,
    filter: &ClaimFilter,
    limit: i64,
    token: &str,
    marks: &StartMarks,
) -> Result<Vec<Claimed>> {
    // The outer SELECT sees the rows as they were before the UPDATE (one snapshot);
    // only the lease columns differ, and the caller knows its own token.
    // Which claims to mark as started: all of them when nothing stands in the way (the
    // usual case), else the first `up_to` of hooks not excepted, picked with an
    // aggregate (a window function there made PostgreSQL read the whole backlog).
    let (picked, picked_from, mark) = if marks.except_hooks.is_empty() && marks.up_to >= limit {
        ("", "", "TRUE")
    } else {
        (
            "picked AS ( \
               SELECT (array_agg(id ORDER BY due_at, id))[1:$4] AS ids \
               FROM due WHERE NOT (hook_id = ANY($5))), ",
            ", picked",
            "coalesce(due.id = ANY(picked.ids), FALSE)",
        )
    };
    let query = diesel::sql_query(format!(
        "WITH due AS ( \
           SELECT id, hook_id, {DUE_KEY} AS due_at, \
                  claim_token AS previous_token, claim_started AS previous_started \
           FROM httphooks_callbacks WHERE {condition} \
           ORDER BY {DUE_KEY}, id LIMIT $2 FOR UPDATE SKIP LOCKED), \
         {picked} \
         claimed AS ( \
           UPDATE httphooks_callbacks c \
           SET claimed_until = {NOW} + {lease} * interval '1 millisecond', \
               claim_token = $3, claim_started = {mark} \
           FROM due{picked_from}, httphooks_hooks h WHERE c.id = due.id AND h.id = c.hook_id \
           RETURNING c.id, due.previous_token, due.previous_started, c.claim_started AS mark) \
         SELECT d.*, claimed.previous_token, claimed.previous_started, claimed.mark AS marked \
         FROM claimed JOIN httphooks_callback_details d ON d.id = claimed.id",
        condition = due_condition(filter),
        lease = lease_ms_sql("h.timeout_ms"),
    ))
    .bind::<Timestamp, _>(filter.due_before(now()))
    .bind::<BigInt, _>(limit)
    .bind::<Text, _>(token)
    .bind::<BigInt, _>(marks.up_to)
    .bind::<diesel::sql_types::Array<BigInt>, _>(&marks.except_hooks);
    // New callbacks join the queue as runs need them.
    admit(conn, limit * super::callbacks::ADMIT_AHEAD)?;
    // Read the due index in order and stop at the limit, whatever the statistics say:
    // on a freshly filled table they predict a handful of rows, and PostgreSQL would
    // sort the whole backlog on every claim (40 ms instead of 0.3 ms at 100,000). The
    // settings last until the caller's transaction ends, which holds only the claim.
    conn.batch_execute("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")?;
    let mut claimed: Vec<Claimed> = query.load(conn)?;
    claimed.sort_by_key(|c| (c.callback.next_attempt_at, c.callback.id));
    Ok(claimed)
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

pub fn renew(conn: &mut PgConnection, token: &str, ids: &[i64], started: bool) -> Result<Vec<i64>> {
    let enabled = if started { " AND h.enabled" } else { "" };
    let rows: Vec<IdRow> = diesel::sql_query(format!(
        "UPDATE httphooks_callbacks c \
         SET claimed_until = {NOW} + {lease} * interval '1 millisecond', \
             claim_started = c.claim_started OR $2 \
         FROM httphooks_hooks h \
         WHERE h.id = c.hook_id AND c.id = ANY($1) AND c.claim_token = $3 \
           AND c.status = 'waiting'{enabled} \
         RETURNING c.id",
        lease = lease_ms_sql("h.timeout_ms"),
    ))
    .bind::<diesel::sql_types::Array<BigInt>, _>(ids)
    .bind::<diesel::sql_types::Bool, _>(started)
    .bind::<Text, _>(token)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Due callbacks in claim order, without claiming them.
pub fn peek_due(
    conn: &mut PgConnection,
    filter: &ClaimFilter,
    limit: i64,
) -> Result<Vec<super::models::Callback>> {
    Ok(diesel::sql_query(format!(
        "SELECT d.* FROM httphooks_callback_details d JOIN \
           (SELECT id, {DUE_KEY} AS due FROM httphooks_callbacks WHERE {} ORDER BY {DUE_KEY}, id LIMIT $2) q \
         ON q.id = d.id ORDER BY q.due, q.id",
        due_condition(filter)
    ))
    .bind::<Timestamp, _>(filter.due_before(now()))
    .bind::<BigInt, _>(limit)
    .load(conn)?)
}

pub fn apply_outcomes(
    conn: &mut PgConnection,
    token: &str,
    changes: &str,
    now: chrono::NaiveDateTime,
) -> Result<usize> {
    Ok(diesel::sql_query(
        "UPDATE httphooks_callbacks AS c SET status = v.status, status_details = v.details, \
         attempts = c.attempts + v.attempted, next_attempt_at = v.next_attempt_at, updated_at = $1, \
         claimed_until = NULL, claim_token = NULL, claim_started = FALSE, \
         payload = COALESCE(v.payload, c.payload) \
         FROM jsonb_to_recordset($2::jsonb) AS v(id bigint, status text, details text, attempted int, \
                                                 next_attempt_at timestamp, payload text) \
         WHERE c.id = v.id AND c.claim_token = $3",
    )
    .bind::<Timestamp, _>(now)
    .bind::<Text, _>(changes)
    .bind::<Text, _>(token)
    .execute(conn)?)
}
