//! `--coalesce`: of the waiting callbacks of a hook's row, a run sends only the newest.
//! A run asks, for the callbacks it claimed, which newer waiting ones their rows have;
//! a callback that was never attempted, of an insert, update or backfill, with a newer
//! one of the same kind and no waiting delete in between, is marked `superseded` with
//! a pointer to the newest (which is sent in its turn). A delete is never folded, nor
//! folded into: the row's deletion always goes out.

use std::collections::HashMap;

use diesel::prelude::*;

use super::backend::{quote_literal, timestamp_literal};
use super::schema::httphooks_callbacks;
use super::{now, with_conn, Db};
use crate::error::Result;
use crate::storage::models::{Callback, Status};

/// The events a newer change of the row makes stale.
const FOLDED: [&str; 3] = ["insert", "update", "backfill"];

/// A hook's row.
type Row = (i64, String);

/// Which of `claimed` (callbacks this run holds) are superseded, and by which callback:
/// `(superseded, newest)` pairs.
pub fn superseded(db: &mut Db, claimed: &[&Callback]) -> Result<Vec<(i64, i64)>> {
    let candidates: Vec<&&Callback> = claimed
        .iter()
        .filter(|c| {
            c.settings.coalesced
                && c.attempts == 0
                && c.attempts_before_retry == 0
                && c.object_id.is_some()
                && FOLDED.contains(&c.event_type.as_str())
        })
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let hook_ids: Vec<i64> = candidates.iter().map(|c| c.hook_id).collect();
    let object_ids: Vec<String> = candidates
        .iter()
        .filter_map(|c| c.object_id.clone())
        .collect();
    let (newest, deletes) = with_conn!(db, |conn| {
        use httphooks_callbacks::dsl as c;
        let newest: Vec<(i64, Option<String>, Option<i64>)> = c::httphooks_callbacks
            .filter(c::status.eq(Status::Waiting))
            .filter(c::hook_id.eq_any(&hook_ids))
            .filter(c::object_id.eq_any(&object_ids))
            .filter(c::event_type.eq_any(FOLDED))
            .group_by((c::hook_id, c::object_id))
            .select((c::hook_id, c::object_id, diesel::dsl::max(c::id)))
            .load(conn)?;
        let deletes: Vec<(i64, Option<String>, i64)> = c::httphooks_callbacks
            .filter(c::status.eq(Status::Waiting))
            .filter(c::hook_id.eq_any(&hook_ids))
            .filter(c::object_id.eq_any(&object_ids))
            .filter(c::event_type.eq("delete"))
            .select((c::hook_id, c::object_id, c::id))
            .load(conn)?;
        Ok::<_, crate::Error>((newest, deletes))
    })?;
    let newest: HashMap<Row, i64> = newest
        .into_iter()
        .filter_map(|(hook, object, id)| Some(((hook, object?), id?)))
        .collect();
    let mut deleted: HashMap<Row, Vec<i64>> = HashMap::new();
    for (hook, object, id) in deletes {
        if let Some(object) = object {
            deleted.entry((hook, object)).or_default().push(id);
        }
    }
    Ok(candidates
        .iter()
        .filter_map(|c| {
            let row = (c.hook_id, c.object_id.clone()?);
            let newest = *newest.get(&row)?;
            let deleted_between = deleted
                .get(&row)
                .is_some_and(|ids| ids.iter().any(|d| *d > c.id && *d < newest));
            (newest > c.id && !deleted_between).then_some((c.id, newest))
        })
        .collect())
}

/// Marks `pairs` (superseded, newest) as superseded, where `token` still holds them,
/// in one statement; returns how many changed.
pub fn supersede(db: &mut Db, token: &str, pairs: &[(i64, i64)]) -> Result<usize> {
    if pairs.is_empty() {
        return Ok(0);
    }
    // Ids are integers: inlining them is safe.
    let newest: Vec<String> = pairs
        .iter()
        .map(|(old, newest)| format!("WHEN {old} THEN {newest}"))
        .collect();
    let olds: Vec<String> = pairs.iter().map(|(old, _)| old.to_string()).collect();
    let sql = format!(
        "UPDATE httphooks_callbacks SET status = 'superseded', \
           superseded_by = CASE id {} END, \
           status_details = 'superseded by a newer change of the same row (--coalesce); not sent', \
           next_attempt_at = NULL, updated_at = {}, claimed_until = NULL, claim_token = NULL, \
           claim_started = FALSE \
         WHERE id IN ({}) AND claim_token = {} AND status = 'waiting'",
        newest.join(" "),
        timestamp_literal(now()),
        olds.join(", "),
        // A run's token is `host:pid:hex`: no quote or backslash to escape.
        quote_literal(token),
    );
    with_conn!(db, |conn| Ok(diesel::sql_query(&sql).execute(conn)?))
}
