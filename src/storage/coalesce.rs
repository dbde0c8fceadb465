//! `--coalesce`: of the waiting callbacks of a hook's row, a run sends only the newest.
//! A run asks, for the callbacks it claimed, which newer waiting ones their rows have.
//! When a row has a newer insert, update or backfill with no waiting delete in between,
//! every older waiting callback of the row since its last delete that was never
//! attempted and that no other run holds is marked `superseded`, with a pointer to the
//! newest (which is sent in its turn): one statement per row, so a backlog of a hundred
//! changes of a row is folded by the first claim that meets one of them. A delete is
//! never folded, nor folded across: the row's deletion always goes out.

use std::collections::{BTreeSet, HashMap};

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

/// A row's older changes to fold into its newest: those with an id in `(after, newest)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    pub hook_id: i64,
    pub object_id: String,
    /// The row's last waiting delete before `newest`, or 0.
    pub after: i64,
    pub newest: i64,
}

/// The rows of `claimed` (callbacks this run holds) that have a newer change to fold
/// into, and which of `claimed` are folded.
pub fn folds(db: &mut Db, claimed: &[&Callback]) -> Result<(Vec<Fold>, BTreeSet<i64>)> {
    let candidates: Vec<&&Callback> = claimed
        .iter()
        .filter(|c| {
            // One an operator sent again (`callbacks retry --force`) is not folded again.
            c.settings.coalesced
                && c.superseded_by.is_none()
                && c.attempts == 0
                && c.attempts_before_retry == 0
                && c.object_id.is_some()
                && FOLDED.contains(&c.event_type.as_str())
        })
        .collect();
    if candidates.is_empty() {
        return Ok((Vec::new(), BTreeSet::new()));
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
    let mut folds: HashMap<Row, Fold> = HashMap::new();
    let mut folded = BTreeSet::new();
    for c in candidates {
        let Some(object_id) = c.object_id.clone() else {
            continue;
        };
        let row = (c.hook_id, object_id.clone());
        let Some(&newest) = newest.get(&row) else {
            continue;
        };
        // The last delete before the newest change bounds what may be folded into it.
        let after = deleted
            .get(&row)
            .and_then(|ids| ids.iter().filter(|d| **d < newest).max().copied())
            .unwrap_or(0);
        if c.id < newest && c.id > after {
            folded.insert(c.id);
            folds.entry(row).or_insert(Fold {
                hook_id: c.hook_id,
                object_id,
                after,
                newest,
            });
        }
    }
    Ok((folds.into_values().collect(), folded))
}

/// Marks the older changes of each fold's row superseded: those waiting, never
/// attempted, and held by no other run's live claim (this run's claims, `token`, are
/// folded too). Returns how many each hook had folded.
pub fn supersede(db: &mut Db, token: &str, folds: &[Fold]) -> Result<HashMap<i64, usize>> {
    let now = now();
    let mut by_hook: HashMap<i64, usize> = HashMap::new();
    for fold in folds {
        let changed = with_conn!(db, |conn| {
            use httphooks_callbacks::dsl as c;
            diesel::update(
                c::httphooks_callbacks
                    .filter(c::hook_id.eq(fold.hook_id))
                    .filter(c::object_id.eq(&fold.object_id))
                    .filter(c::id.gt(fold.after))
                    .filter(c::id.lt(fold.newest))
                    .filter(c::status.eq(Status::Waiting))
                    .filter(c::attempts.eq(0))
                    .filter(c::attempts_before_retry.eq(0))
                    .filter(c::superseded_by.is_null())
                    .filter(c::event_type.eq_any(FOLDED))
                    .filter(
                        c::claim_token
                            .is_null()
                            .or(c::claim_token.eq(token))
                            .or(c::claimed_until.lt(now)),
                    ),
            )
            .set((
                c::status.eq(Status::Superseded),
                c::superseded_by.eq(Some(fold.newest)),
                // The same words for every one, so that outcomes group by reason;
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
        *by_hook.entry(fold.hook_id).or_default() += changed;
    }
    Ok(by_hook)
}
