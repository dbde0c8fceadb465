//! PostgreSQL: connection, table introspection, the generic capture trigger, and
//! claims with FOR UPDATE SKIP LOCKED so that runs on several hosts share the work.

use std::borrow::Cow;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
use diesel::PgConnection;

use super::backend::{
    lease_ms_sql, outcomes_json, quote_ident, quote_literal, BackfillSql, Claim, ClaimFilter,
    Claimed, ColumnRow, IdRow, Outcome, Profile, UNCAPTURED,
};
use super::models::Attempt;
use super::{connection_error, now, primary_key, CaptureState, Table};
use crate::error::Result;

impl super::backend::Embedded for PgConnection {
    const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("migrations/postgres");
}

/// The expression of the due index (see the migration): it must be written the same
/// way in queries for PostgreSQL to use the index.
const DUE_KEY: &str = "COALESCE(next_attempt_at, TIMESTAMP '1970-01-01')";

pub fn open(url: &str) -> Result<PgConnection> {
    let check = "that the server is running and accepts you";
    let fail = |e: &dyn std::fmt::Display| connection_error("PostgreSQL", url, check, e);
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
struct TableRow {
    #[diesel(sql_type = BigInt)]
    oid: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    sql_name: String,
}

/// The name a table is shown and stored under: bare in the schema httphooks works in
/// (the first of the search_path), schema-qualified elsewhere.
const TABLE_ROW: &str = "SELECT c.oid::bigint AS oid, \
      CASE WHEN n.nspname = current_schema() THEN c.relname::text \
           ELSE n.nspname || '.' || c.relname END AS name, \
      c.oid::regclass::text AS sql_name \
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind IN ('r', 'p') AND c.oid = ";

fn with_columns(conn: &mut PgConnection, rows: Vec<TableRow>) -> Result<Option<Table>> {
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let columns: Vec<ColumnRow> = diesel::sql_query(
        "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS declared, \
                COALESCE((SELECT k.position FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) \
                          WHERE k.attnum = a.attnum), 0)::int AS pk \
         FROM pg_attribute a \
         LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
         WHERE a.attrelid = $1::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind::<BigInt, _>(row.oid)
    .load(conn)?;
    Ok(Some(Table {
        name: row.name,
        sql_name: row.sql_name,
        oid: Some(row.oid),
        captured_as: None,
        columns: columns.into_iter().map(|r| r.into_column(false)).collect(),
    }))
}

/// The row trigger's arguments (see httphooks_capture()): the watched table's oid, which
/// the clones of a partitioned table's trigger on its partitions pass on, then the key
/// columns.
fn trigger_arguments(table: &Table) -> Vec<String> {
    std::iter::once(table.oid.unwrap_or(0).to_string())
        .chain(primary_key(&table.columns).iter().map(|c| c.name.clone()))
        .collect()
}

/// httphooks' two triggers of a table: its rows' changes, and TRUNCATE. Each with its
/// `tgtype` (AFTER each row's INSERT, UPDATE and DELETE: 1 + 4 + 8 + 16; AFTER the
/// statement's TRUNCATE: 32) and arguments.
fn triggers(table: &Table) -> [(&'static str, &'static str, i16, Vec<String>); 2] {
    let arguments = trigger_arguments(table);
    [
        (
            "httphooks_capture",
            "AFTER INSERT OR UPDATE OR DELETE ON {table} FOR EACH ROW",
            29,
            arguments.clone(),
        ),
        (
            "httphooks_truncate",
            "AFTER TRUNCATE ON {table} FOR EACH STATEMENT",
            32,
            arguments[..1].to_vec(),
        ),
    ]
}

pub fn trigger_sql(table: &Table) -> Vec<String> {
    triggers(table)
        .into_iter()
        .map(|(name, when, _, arguments)| {
            let arguments: Vec<String> = arguments.iter().map(|a| quote_literal(a)).collect();
            format!(
                "CREATE TRIGGER {name} {} EXECUTE FUNCTION httphooks_capture({});",
                when.replace("{table}", &table.sql_name),
                arguments.join(", ")
            )
        })
        .collect()
}

pub fn drop_trigger_sql(table: &Table) -> Vec<String> {
    triggers(table)
        .into_iter()
        .map(|(name, ..)| format!("DROP TRIGGER IF EXISTS {name} ON {};", table.sql_name))
        .collect()
}

#[derive(QueryableByName)]
struct TriggerRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::SmallInt)]
    tgtype: i16,
    #[diesel(sql_type = diesel::sql_types::Binary)]
    tgargs: Vec<u8>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ours: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    disabled: bool,
}

/// The due rule (see `ClaimFilter::sql_condition`) with PostgreSQL's spelling and
/// clock, the due time a literal.
fn due_condition(filter: &ClaimFilter) -> String {
    let due_before = format!(
        "{}::timestamp",
        super::backend::timestamp_literal(filter.due_before(now()))
    );
    let mut condition = filter.sql_condition(DUE_KEY, &due_before, NOW);
    if let Some((due_at, id)) = filter.after {
        // Literals: the timestamp is formatted by us, the id is an integer.
        condition.push_str(&format!(
            " AND ({DUE_KEY}, httphooks_callbacks.id) > ({}::timestamp, {id})",
            super::backend::timestamp_literal(due_at)
        ));
    }
    condition
}

/// Text as PostgreSQL's text can hold it, NUL as U+FFFD. Delivery records none in
/// response bodies (see `delivery::http`), but an outcome saved by an older version
/// (`unrecorded-*.json`) may hold one in an attempt or its details (an OAuth2 token
/// endpoint's answer), and refused, the whole file's callbacks would be sent again.
fn without_nul(value: &str) -> Cow<'_, str> {
    if value.contains('\0') {
        value.replace('\0', "\u{FFFD}").into()
    } else {
        value.into()
    }
}

/// A size in bytes (an SQL expression) as text for messages: "12.0 MB", "512.0 KB".
fn size_text(bytes: &str) -> String {
    format!(
        "(CASE WHEN {bytes} >= 1048576 THEN round({bytes} / 1048576.0, 1) || ' MB (' || {bytes} || ' bytes)' \
               WHEN {bytes} >= 1024 THEN round({bytes} / 1024.0, 1) || ' KB (' || {bytes} || ' bytes)' \
               ELSE {bytes} || ' bytes' END)"
    )
}

/// The database's clock, in the UTC the timestamps hold.
const NOW: &str = "(now() AT TIME ZONE 'UTC')";

static PROFILE: Profile = Profile {
    name: "PostgreSQL",
    // Row locks: runs on several hosts claim and record at the same time.
    allows_concurrent_writers: true,
    other_schema_hint: Some("a table of another schema is named schema.table"),
    commits_on_ddl: false,
    // A statement trigger sees TRUNCATE (see the sixth migration).
    captures_truncate: true,
    // A lock on httphooks' tables (a long transaction, a migration) must not hold a
    // run past its deadline: statements give up waiting after a second and the run
    // retries them until its deadline, like SQLite's busy timeout.
    delivery_session: "SET synchronous_commit = off; SET lock_timeout = '1s'",
    due_key: DUE_KEY,
};

#[derive(QueryableByName)]
struct Made {
    #[diesel(sql_type = Integer)]
    made: i32,
}

impl super::Backend for PgConnection {
    fn profile(&self) -> &'static Profile {
        &PROFILE
    }

    /// Two `migrate` runs at once: the second waits, then finds nothing to do.
    fn lock_migrations(&mut self) -> Result<()> {
        diesel::sql_query("SELECT pg_advisory_xact_lock(727274685)").execute(self)?;
        Ok(())
    }

    /// A table by name: the whole name as one identifier first (so `My Table` and
    /// `order` work as they are), then `schema.table` split at its first dot. to_regclass
    /// looks names up along the search_path and returns NULL, not an error, for none.
    fn find_table(&mut self, name: &str) -> Result<Option<Table>> {
        let rows: Vec<TableRow> = diesel::sql_query(format!(
            "{TABLE_ROW} coalesce(to_regclass(quote_ident($1)), \
               CASE WHEN position('.' IN $1) > 1 THEN to_regclass(quote_ident(split_part($1, '.', 1)) \
                 || '.' || quote_ident(substr($1, position('.' IN $1) + 1))) END)"
        ))
        .bind::<Text, _>(name)
        .load(self)?;
        with_columns(self, rows)
    }

    fn table_by_oid(&mut self, oid: i64) -> Result<Option<Table>> {
        let rows: Vec<TableRow> = diesel::sql_query(format!("{TABLE_ROW} $1::bigint::oid"))
            .bind::<BigInt, _>(oid)
            .load(self)?;
        with_columns(self, rows)
    }

    /// One trigger per table; the function it runs reads the hooks when it fires.
    fn trigger_sql(&self, table: &Table, _watched: &super::Watched) -> Vec<String> {
        trigger_sql(table)
    }

    fn drop_trigger_sql(&self, table: &Table) -> Vec<String> {
        drop_trigger_sql(table)
    }

    /// The triggers are intact when both are httphooks' function, enabled, of their
    /// kind (`triggers`), with their arguments (each followed by a NUL byte in tgargs).
    fn capture_state(&mut self, table: &Table, _watched: &super::Watched) -> Result<CaptureState> {
        let found: Vec<TriggerRow> = diesel::sql_query(
            "SELECT t.tgname::text AS name, t.tgtype, t.tgargs, \
                    t.tgfoid = 'httphooks_capture()'::regprocedure AS ours, t.tgenabled = 'D' AS disabled \
             FROM pg_trigger t WHERE t.tgrelid = $1::bigint::oid \
               AND t.tgname IN ('httphooks_capture', 'httphooks_truncate')",
        )
        .bind::<BigInt, _>(table.oid.unwrap_or(0))
        .load::<TriggerRow>(self)?;
        let disabled_here = found.iter().any(|t| t.ours && t.disabled);
        let found: Vec<(String, i16, Vec<u8>)> = found
            .into_iter()
            .map(|t| (t.name, if t.ours { t.tgtype } else { -1 }, t.tgargs))
            .collect();
        let expected = triggers(table)
            .into_iter()
            .map(|(name, _, tgtype, arguments)| {
                let mut bytes = Vec::new();
                for argument in arguments {
                    bytes.extend_from_slice(argument.as_bytes());
                    bytes.push(0);
                }
                (name.to_owned(), tgtype, bytes)
            })
            .collect();
        let state = CaptureState::comparing(found, expected);
        if state != CaptureState::Intact {
            return Ok(state);
        }
        if disabled_here {
            return Ok(CaptureState::Disabled);
        }
        // A partition's clone of the trigger disabled on its own loses that partition's
        // changes.
        let disabled: super::CountRow = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_partition_tree($1::bigint::oid) p \
             JOIN pg_trigger t ON t.tgrelid = p.relid AND t.tgname = 'httphooks_capture' \
             WHERE p.relid <> $1::bigint::oid AND t.tgenabled = 'D'",
        )
        .bind::<BigInt, _>(table.oid.unwrap_or(0))
        .get_result(self)?;
        Ok(if disabled.n > 0 {
            CaptureState::Disabled
        } else {
            state
        })
    }

    /// Its ancestors and descendants in a partition tree, as hooks name them: a hook on
    /// one of them would need a trigger of the same name on the same partitions.
    fn partition_relatives(&mut self, table: &Table) -> Result<Vec<String>> {
        #[derive(QueryableByName)]
        struct Name {
            #[diesel(sql_type = Text)]
            name: String,
        }
        let names: Vec<Name> = diesel::sql_query(
            "SELECT CASE WHEN n.nspname = current_schema() THEN c.relname::text \
                         ELSE n.nspname || '.' || c.relname END AS name \
             FROM (SELECT relid FROM pg_partition_ancestors($1::bigint::oid) \
                   UNION SELECT relid FROM pg_partition_tree($1::bigint::oid)) t \
             JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE t.relid <> $1::bigint::oid",
        )
        .bind::<BigInt, _>(table.oid.unwrap_or(0))
        .load(self)?;
        Ok(names.into_iter().map(|n| n.name).collect())
    }

    /// Moves up to `limit` of the oldest new callbacks into httphooks_callbacks; returns
    /// how many. Each gets its webhook-id: the change's time in milliseconds (12 hex
    /// digits) and 80 random bits. One admitter at a time (a transaction-scoped advisory lock), so that
    /// callback ids follow the order the events were made in, which `--ordered` relies on.
    fn admit(&mut self, limit: i64) -> Result<usize> {
        self.transaction(|conn| {
            // Per schema: installations in other schemas of the database admit apart.
            diesel::sql_query(
                "SELECT pg_advisory_xact_lock(727274686, hashtext(current_schema()))",
            )
            .execute(conn)?;
            // A change marked as not captured (a truncation under a hook that listens to
            // deletes), or whose data is larger than its hook allows, becomes a failed
            // callback that says why: it stops nothing else.
            Ok(diesel::sql_query(format!(
                "WITH moved AS ( \
                   DELETE FROM httphooks_new_callbacks WHERE id IN \
                     (SELECT id FROM httphooks_new_callbacks ORDER BY id LIMIT $1) \
                   RETURNING *), \
                 made AS MATERIALIZED ( \
                   SELECT m.id, v.hook_id, m.version_id, m.event_type, m.object_id, v.ordered, m.problem, \
                     v.max_payload_size, v.name AS hook_name, v.table_name, \
                     (CASE m.event_type \
                       WHEN 'insert' THEN jsonb_build_object('instance', m.row_data, 'old', NULL) \
                       WHEN 'backfill' THEN jsonb_build_object('instance', m.row_data, 'old', NULL) \
                       WHEN 'update' THEN jsonb_build_object('instance', m.row_data, 'old', m.old_row_data) \
                       WHEN 'delete' THEN jsonb_build_object('instance', m.row_data, 'old', NULL) \
                       WHEN 'truncate' THEN jsonb_build_object('instance', NULL, 'old', NULL) \
                       ELSE jsonb_build_object('data', m.row_data) END)::text AS event_data, \
                     CASE WHEN m.created_at BETWEEN '1970-01-01' AND '100000-01-01' \
                       THEN m.created_at ELSE now() AT TIME ZONE 'UTC' END AS made_at \
                   FROM moved m JOIN httphooks_hook_versions v ON v.id = m.version_id), \
                 judged AS ( \
                   SELECT made.*, CASE WHEN problem IS NOT NULL THEN problem \
                     WHEN octet_length(event_data) > max_payload_size THEN \
                       'the change''s data is ' || {size} || ', more than the hook''s --max-payload-size of ' \
                       || {limit} || '; raise it with `httphooks hooks edit ' || hook_name \
                       || ' --max-payload-size SIZE` to send such changes' END AS refusal \
                   FROM made) \
                 INSERT INTO httphooks_callbacks \
                   (hook_id, version_id, event_type, object_id, ordered, event_data, created_at, webhook_id, \
                    status, status_details, updated_at) \
                 SELECT hook_id, version_id, event_type, object_id, ordered, \
                   CASE WHEN refusal IS NULL THEN event_data ELSE '{UNCAPTURED}' END, \
                   made_at, \
                   'msg_' || lpad(to_hex((extract(epoch FROM made_at) * 1000)::bigint), 12, '0') \
                     || lpad(to_hex((random() * 1099511627776)::bigint), 10, '0') \
                     || lpad(to_hex((random() * 1099511627776)::bigint), 10, '0'), \
                   CASE WHEN refusal IS NULL THEN 'waiting' ELSE 'error' END, \
                   CASE WHEN refusal IS NULL THEN '' ELSE 'hook ' || hook_name \
                     || CASE WHEN table_name IS NULL THEN ' (event ' || event_type || ')' \
                        ELSE ' (table ' || table_name || coalesce(', row ' || object_id, '') || ')' END || ': ' \
                     || refusal || '; nothing was sent' END, \
                   CASE WHEN refusal IS NULL THEN NULL ELSE {NOW} END \
                 FROM judged ORDER BY id",
                size = size_text("octet_length(event_data)"),
                limit = size_text("max_payload_size"),
            ))
            .bind::<BigInt, _>(limit)
            .execute(conn)?)
        })
    }

    /// Counts new callbacks not yet admitted, made at or after `since` (all without it).
    fn count_new(&mut self, since: Option<chrono::NaiveDateTime>) -> Result<i64> {
        let query = "SELECT count(*) AS n FROM httphooks_new_callbacks \
                     WHERE $1::timestamp IS NULL OR created_at >= $1";
        let count: super::CountRow = diesel::sql_query(query)
            .bind::<diesel::sql_types::Nullable<Timestamp>, _>(since)
            .get_result(self)?;
        Ok(count.n)
    }

    /// A CTE that locks the due rows (skipping those another run holds) and then updates
    /// them: unlike `IN (SELECT … FOR UPDATE SKIP LOCKED)`, it never claims more than the
    /// limit whatever plan PostgreSQL picks. The callbacks to mark as started are picked
    /// with an aggregate: a window function there made PostgreSQL read the whole backlog. Leases are set and checked with the database's
    /// clock, so runs on hosts whose clocks differ still agree on when a lease ran out.
    fn claim(&mut self, claim: &Claim) -> Result<Vec<Claimed>> {
        let (filter, limit, token, marks) = (claim.filter, claim.limit, claim.token, claim.marks);
        // The outer SELECT sees the rows as they were before the UPDATE (one snapshot);
        // only the lease columns differ, and the caller knows its own token.
        // Which claims to mark as started: all of them when nothing stands in the way (the
        // usual case), else the first `up_to` of hooks not excepted, picked with an
        // aggregate (a window function there made PostgreSQL read the whole backlog),
        // materialized: inlined, PostgreSQL could run the aggregate again for every
        // claimed row (seen: 2.2–2.9 s for a claim of 2,950).
        let (picked, picked_from, mark) = if marks.except_hooks.is_empty() && marks.up_to >= limit {
            ("", "", "TRUE")
        } else {
            (
                "picked AS MATERIALIZED ( \
                   SELECT (array_agg(id ORDER BY due_at, id))[1:$3] AS ids \
                   FROM due WHERE NOT (hook_id = ANY($4))), ",
                ", picked",
                "coalesce(due.id = ANY(picked.ids), FALSE)",
            )
        };
        let query = diesel::sql_query(format!(
            "WITH due AS ( \
               SELECT id, hook_id, {DUE_KEY} AS due_at, \
                      claim_token AS previous_token, claim_started AS previous_started \
               FROM httphooks_callbacks WHERE {condition} \
               ORDER BY {DUE_KEY}, id LIMIT $1 FOR UPDATE SKIP LOCKED), \
             {picked} \
             claimed AS ( \
               UPDATE httphooks_callbacks c \
               SET claimed_until = {NOW} + {lease} * interval '1 millisecond', \
                   claim_token = $2, claim_started = {mark} \
               FROM due{picked_from}, httphooks_hooks h, httphooks_hook_versions v \
               WHERE c.id = due.id AND h.id = c.hook_id AND v.id = h.version_id \
               RETURNING c.id, due.previous_token, due.previous_started, c.claim_started AS mark) \
             {callbacks}",
            callbacks = super::backend::callbacks_sql(
                ", claimed.previous_token, claimed.previous_started, claimed.mark AS marked",
                " JOIN claimed ON claimed.id = d.id"
            ),
            condition = due_condition(filter),
            lease = lease_ms_sql("v.timeout_ms"),
        ))
        .bind::<BigInt, _>(limit)
        .bind::<Text, _>(token)
        .bind::<BigInt, _>(marks.up_to)
        .bind::<diesel::sql_types::Array<BigInt>, _>(&marks.except_hooks);
        // New callbacks join the queue as runs need them.
        self.admit(limit * super::backend::ADMIT_AHEAD)?;
        // Read the due index in order and stop at the limit, whatever the statistics say:
        // on a freshly filled table they predict a handful of rows, and PostgreSQL would
        // sort the whole backlog on every claim (40 ms instead of 0.3 ms at 100,000). The
        // settings last until the caller's transaction ends, which holds only the claim.
        // Likewise, find the claimed rows by primary key: for a claim of thousands (a
        // batch hook's) PostgreSQL hashed the whole table, sent callbacks included, to
        // join it to them (35 ms of a claim's 85 at 100,000 rows, growing with the table).
        self.batch_execute(
            "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; \
             SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
        )?;
        let mut claimed: Vec<Claimed> = query.load(self)?;
        claimed.sort_by_key(|c| (c.callback.next_attempt_at, c.callback.id));
        Ok(claimed)
    }

    fn renew(&mut self, token: &str, ids: &[i64], started: bool) -> Result<Vec<i64>> {
        let enabled = if started { " AND h.enabled" } else { "" };
        let rows: Vec<IdRow> = diesel::sql_query(format!(
            "UPDATE httphooks_callbacks c \
             SET claimed_until = {NOW} + {lease} * interval '1 millisecond', \
                 claim_started = c.claim_started OR $2 \
             FROM httphooks_hooks h, httphooks_hook_versions v \
             WHERE h.id = c.hook_id AND v.id = h.version_id AND c.id = ANY($1) \
               AND c.claim_token = $3 AND c.status = 'waiting'{enabled} \
             RETURNING c.id",
            lease = lease_ms_sql("v.timeout_ms"),
        ))
        .bind::<diesel::sql_types::Array<BigInt>, _>(ids)
        .bind::<diesel::sql_types::Bool, _>(started)
        .bind::<Text, _>(token)
        .load(self)?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    fn due_condition(&self, filter: &ClaimFilter) -> String {
        due_condition(filter)
    }

    /// One INSERT of many rows, each column bound as one array: the statement's text
    /// stays the same whatever the count (a `VALUES` list of fifteen placeholders per
    /// row made PostgreSQL parse and plan some 9,000 of them per record, 18 µs of its
    /// time per attempt).
    fn insert_attempts(&mut self, attempts: &[&Attempt]) -> Result<()> {
        use diesel::sql_types::{Array, Nullable};
        let texts = |f: fn(&Attempt) -> &str| -> Vec<Cow<str>> {
            attempts.iter().map(|a| without_nul(f(a))).collect()
        };
        let optional = |f: fn(&Attempt) -> Option<&str>| -> Vec<Option<Cow<str>>> {
            attempts.iter().map(|a| f(a).map(without_nul)).collect()
        };
        diesel::sql_query(
            "INSERT INTO httphooks_attempts (callback_id, attempt, started_at, elapsed_ms, \
             request_method, request_url, request_headers, request_body, \
             response_status_code, response_reason, response_headers, response_body, \
             error_kind, error_message, batch, response_body_callback_id) \
             SELECT * FROM unnest($1::bigint[], $2::int[], $3::timestamp[], $4::bigint[], \
               $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::text[], \
               $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::bigint[])",
        )
        .bind::<Array<BigInt>, _>(attempts.iter().map(|a| a.callback_id).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(attempts.iter().map(|a| a.attempt).collect::<Vec<_>>())
        .bind::<Array<Timestamp>, _>(attempts.iter().map(|a| a.started_at).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(attempts.iter().map(|a| a.elapsed_ms).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(texts(|a| &a.request_method))
        .bind::<Array<Text>, _>(texts(|a| &a.request_url))
        .bind::<Array<Text>, _>(texts(|a| &a.request_headers))
        .bind::<Array<Text>, _>(texts(|a| &a.request_body))
        .bind::<Array<Nullable<Integer>>, _>(
            attempts
                .iter()
                .map(|a| a.response_status_code)
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(optional(|a| a.response_reason.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|a| a.response_headers.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|a| a.response_body.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|a| a.error_kind.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|a| a.error_message.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(optional(|a| a.batch.as_deref()))
        .bind::<Array<Nullable<BigInt>>, _>(
            attempts
                .iter()
                .map(|a| a.response_body_callback_id)
                .collect::<Vec<_>>(),
        )
        .execute(self)?;
        Ok(())
    }

    /// Planned each time, not prepared (`CachedSql`): prepared, runs delivered 30–45 %
    /// fewer callbacks (measured; PostgreSQL plans a prepared statement generically
    /// after five runs, blind to the array's size). The changes go as JSON, not as
    /// arrays (as attempts do): PostgreSQL counts an array's rows exactly, and for a
    /// record of thousands it then finds the callbacks by scanning the whole table
    /// rather than by key (seen in its plans; `jsonb_to_recordset` counts 100).
    fn apply_outcomes(&mut self, token: &str, outcomes: &[&Outcome]) -> Result<usize> {
        let changes = outcomes_json(outcomes, without_nul);
        Ok(diesel::sql_query(
            "UPDATE httphooks_callbacks AS c SET status = v.status, status_details = v.details, \
             attempts = c.attempts + v.attempted, next_attempt_at = v.next_attempt_at, updated_at = $1, \
             claimed_until = NULL, claim_token = NULL, claim_started = FALSE, \
             payload = COALESCE(v.payload, c.payload) \
             FROM jsonb_to_recordset($2::jsonb) AS v(id bigint, status text, details text, attempted int, \
                                                     next_attempt_at timestamp, payload text) \
             WHERE c.id = v.id AND c.claim_token = $3",
        )
        .bind::<Timestamp, _>(now())
        .bind::<Text, _>(&changes)
        .bind::<Text, _>(token)
        .execute(self)?)
    }

    /// The row as the capture trigger records it (`to_jsonb`), its key as the trigger
    /// takes it from that JSON.
    fn backfill_sql(&self, table: &Table, version_id: i64) -> BackfillSql {
        let keys = primary_key(&table.columns);
        let key_columns: Vec<String> = keys
            .iter()
            .map(|k| format!("t.{}", quote_ident(&k.name)))
            .collect();
        let object_id = match keys.as_slice() {
            [] => "NULL".to_owned(),
            [key] => format!("to_jsonb(t) ->> {}", quote_literal(&key.name)),
            // As the capture trigger writes it (compact JSON, key order), so that a
            // backfilled row's callbacks and its changes' are one row's.
            keys => format!(
                "(SELECT array_to_json(array_agg(to_jsonb(t) -> c ORDER BY n))::text \
                  FROM unnest(ARRAY[{}]::text[]) WITH ORDINALITY AS k(c, n))",
                keys.iter()
                    .map(|k| quote_literal(&k.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        BackfillSql {
            table: table.sql_name.clone(),
            key_columns: key_columns.join(", "),
            key_list: key_columns.clone(),
            key_json: format!("json_build_array({})::text", key_columns.join(", ")),
            insert_select: format!(
                "INSERT INTO httphooks_new_callbacks (version_id, event_type, object_id, row_data) \
                 SELECT {version_id}, 'backfill', {object_id}, to_jsonb(t)"
            ),
            lock: "FOR SHARE OF t",
            quote_literal,
        }
    }

    fn lock_unheld(&mut self, ids: &[i64]) -> Result<Vec<i64>> {
        super::backend::lock_unheld_rows(self, ids)
    }

    /// The SQL function applications in any language call (see the migrations).
    fn enqueue(&mut self, hook: &str, event: &str, data: &serde_json::Value) -> Result<usize> {
        let made: Made = diesel::sql_query("SELECT httphooks_enqueue($1, $2, $3::jsonb) AS made")
            .bind::<Text, _>(hook)
            .bind::<Text, _>(event)
            .bind::<Text, _>(data.to_string())
            .get_result(self)?;
        Ok(made.made as usize)
    }
}
