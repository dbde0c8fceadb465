//! MySQL's admission: new changes matched to their hooks' versions and turned into
//! callbacks, or into failed callbacks saying why a change cannot be sent.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::MysqlConnection;

use super::{id_list, IdRow, NOW, PACKET_HEADROOM};

use crate::error::Result;
use crate::storage::backend::UNCAPTURED;

/// The rows of the view `httphooks_new_callback_matches` (see the migration) for the
/// new callbacks `ids`: spelt out so that each branch reads those rows by primary key,
/// whatever the optimizer would make of a condition on the view.
fn matches_of(ids: &str) -> String {
    format!(
        "SELECT n.id AS seq, v.hook_id, v.id AS version_id, v.ordered, n.event_type, n.object_id, \
           n.row_data, n.old_row_data, n.created_at, n.problem, v.max_payload_size, \
           v.name AS hook_name, v.table_name \
         FROM httphooks_new_callbacks n JOIN httphooks_hook_versions v ON v.id = n.version_id \
         WHERE n.id IN ({ids}) AND n.version_id IS NOT NULL \
         UNION ALL \
         SELECT n.id, h.id, v.id, v.ordered, n.event_type, n.object_id, \
           n.row_data, n.old_row_data, n.created_at, n.problem, v.max_payload_size, \
           v.name, v.table_name \
         FROM httphooks_new_callbacks n \
         JOIN httphooks_hooks h ON h.table_name = n.table_name AND h.enabled \
           AND LOCATE(CONCAT(',', n.event_type, ','), h.events) > 0 \
           AND (n.event_type <> 'update' OR h.when_changed IS NULL OR n.problem IS NOT NULL OR EXISTS ( \
             SELECT 1 FROM JSON_TABLE(h.when_changed, '$[*]' COLUMNS (col VARCHAR(255) PATH '$')) w \
             WHERE NOT (JSON_EXTRACT(n.row_data, CONCAT('$.', JSON_QUOTE(w.col))) \
                        <=> JSON_EXTRACT(n.old_row_data, CONCAT('$.', JSON_QUOTE(w.col)))))) \
         JOIN httphooks_hook_versions v ON v.id = h.version_id \
         WHERE n.id IN ({ids}) AND n.version_id IS NULL"
    )
}

/// A size in bytes (an SQL expression) as text for messages: "12.0 MB", "512.0 KB".
fn size_text(bytes: &str) -> String {
    format!(
        "CASE WHEN {bytes} >= 1048576 THEN CONCAT(ROUND({bytes} / 1048576, 1), ' MB (', {bytes}, ' bytes)') \
              WHEN {bytes} >= 1024 THEN CONCAT(ROUND({bytes} / 1024, 1), ' KB (', {bytes}, ' bytes)') \
              ELSE CONCAT({bytes}, ' bytes') END"
    )
}

/// Moves up to `limit` of the oldest new callbacks into httphooks_callbacks. One
/// admitter at a time (the `admit` row of httphooks_locks, held until the caller's
/// transaction ends), so that callback ids follow the order of the changes. Exactly
/// the rows read are admitted and deleted: a trigger's insert that commits meanwhile
/// waits for the next admission.
pub(super) fn admit(conn: &mut MysqlConnection, limit: i64) -> Result<usize> {
    conn.transaction(|conn| {
        diesel::sql_query("SELECT 1 FROM httphooks_locks WHERE name = 'admit' FOR UPDATE")
            .execute(conn)?;
        let ids: Vec<IdRow> =
            diesel::sql_query("SELECT id FROM httphooks_new_callbacks ORDER BY id LIMIT ?")
                .bind::<BigInt, _>(limit)
                .load(conn)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let list = id_list(ids.iter().map(|r| r.id));
        // The row data is JSON made by JSON_OBJECT(), pasted into the event data as it
        // is. The webhook-id: the change's time in milliseconds (12 hex digits) and 80
        // random bits.
        // A change that could not be captured (too large for its trigger), or whose data
        // is larger than its hook allows or than a packet can carry back, becomes a failed
        // callback that says why: it stops nothing else. CASE evaluates only the branch
        // it takes, so no CONCAT of a too large change is ever made.
        let size = "(LENGTH(row_data) + COALESCE(LENGTH(old_row_data), 0) + 32)";
        let packet_limit = format!("((@@max_allowed_packet - {PACKET_HEADROOM}) DIV 2)");
        let refusal = format!(
            "CASE WHEN problem IS NOT NULL THEN problem \
               WHEN {size} > max_payload_size THEN CONCAT('the change''s data is ', {size_text}, \
                 ', more than the hook''s --max-payload-size of ', {limit_text}, \
                 '; raise it with `httphooks hooks edit ', hook_name, ' --max-payload-size SIZE` to send such changes') \
               WHEN {size} > {packet_limit} THEN CONCAT('the change''s data is ', {size_text}, \
                 ', more than half of the server''s max_allowed_packet of ', {packet_text}, \
                 ', since a callback must fit in one packet with its body; raise max_allowed_packet on the server to send such changes') \
             END",
            size_text = size_text(size),
            limit_text = size_text("max_payload_size"),
            packet_text = size_text("@@max_allowed_packet"),
        );
        let made = diesel::sql_query(format!(
            "INSERT INTO httphooks_callbacks \
               (hook_id, version_id, event_type, object_id, ordered, event_data, created_at, webhook_id, \
                status, status_details, updated_at) \
             SELECT hook_id, version_id, event_type, object_id, ordered, \
               CASE WHEN refusal IS NOT NULL THEN '{UNCAPTURED}' \
                 WHEN event_type IN ('insert', 'backfill') THEN CONCAT('{{\"instance\":', row_data, ',\"old\":null}}') \
                 WHEN event_type = 'update' THEN CONCAT('{{\"instance\":', row_data, ',\"old\":', COALESCE(old_row_data, 'null'), '}}') \
                 WHEN event_type = 'delete' THEN CONCAT('{{\"instance\":', row_data, ',\"old\":null}}') \
                 ELSE CONCAT('{{\"data\":', row_data, '}}') END, \
               created_at, \
               LOWER(CONCAT('msg_', LPAD(HEX(FLOOR(UNIX_TIMESTAMP(created_at) * 1000)), 12, '0'), \
                 LPAD(HEX(FLOOR(RAND() * 1099511627776)), 10, '0'), \
                 LPAD(HEX(FLOOR(RAND() * 1099511627776)), 10, '0'))), \
               IF(refusal IS NULL, 'waiting', 'error'), \
               IF(refusal IS NULL, '', CONCAT('hook ', hook_name, \
                 IF(table_name IS NULL, CONCAT(' (event ', event_type, ')'), \
                   CONCAT(' (table ', table_name, COALESCE(CONCAT(', row ', object_id), ''), ')')), \
                 ': ', refusal, '; nothing was sent')), \
               IF(refusal IS NULL, NULL, {NOW}) \
             FROM (SELECT m.*, {refusal} AS refusal FROM ({matches}) m) r ORDER BY seq, hook_id",
            matches = matches_of(&list),
        ))
        .execute(conn)?;
        diesel::sql_query(format!(
            "DELETE FROM httphooks_new_callbacks WHERE id IN ({list})"
        ))
        .execute(conn)?;
        Ok(made)
    })
}
