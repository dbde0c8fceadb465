//! `--coalesce`: of the waiting callbacks of a hook's row, a run sends only the newest.
//! A run asks, for the callbacks it claimed, which newer waiting ones their rows have;
//! a callback that was never attempted, of an insert, update or backfill, with a newer
//! one of the same kind and no waiting delete in between, is marked `superseded` with
//! a pointer to the newest (which is sent in its turn). A delete is never folded, nor
//! folded into: the row's deletion always goes out.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

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

/// Marks `pairs` (superseded, newest) as superseded, where `token` still holds them;
/// returns how many changed.
pub fn supersede(db: &mut Db, token: &str, pairs: &[(i64, i64)]) -> Result<usize> {
    let mut by_newest: HashMap<i64, Vec<i64>> = HashMap::new();
    for (old, newest) in pairs {
        by_newest.entry(*newest).or_default().push(*old);
    }
    let now = now();
    let mut changed = 0;
    for (newest, olds) in by_newest {
        changed += with_conn!(db, |conn| {
            use httphooks_callbacks::dsl as c;
            diesel::update(
                c::httphooks_callbacks
                    .filter(c::id.eq_any(&olds))
                    .filter(c::claim_token.eq(token))
                    .filter(c::status.eq(Status::Waiting)),
            )
            .set((
                c::status.eq(Status::Superseded),
                c::superseded_by.eq(Some(newest)),
                // The same words for every one, so that failures group by reason;
                // the pointer is `superseded_by`.
                c::status_details
                    .eq("superseded by a newer change of the same row (--coalesce); not sent"),
                c::next_attempt_at.eq(None::<NaiveDateTime>),
                c::updated_at.eq(Some(now)),
                c::claimed_until.eq(None::<NaiveDateTime>),
                c::claim_token.eq(None::<String>),
                c::claim_started.eq(false),
            ))
            .execute(conn)
        })?;
    }
    Ok(changed)
}
