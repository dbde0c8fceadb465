//! How the queue is doing, for `status`, `monitor_callbacks` and the metrics file.
//! Only indexed reads: the due index for waiting callbacks, the errors index for recent
//! errors, the primary key for new callbacks; nothing here writes.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::backend::timestamp_literal;
use super::callbacks::{self, ClaimFilter};
use super::models::Status;
use super::schema::httphooks_callbacks::dsl as c;
use super::{with_conn, Db};
use crate::error::Result;

/// Waiting callbacks of one hook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    pub total: i64,
    /// Waiting for their retry time.
    pub backing_off: i64,
    /// Held by a run right now (being sent, or about to be).
    pub claimed: i64,
    /// Of an ordered hook, behind an earlier callback of the same row.
    pub ordered_behind: i64,
}

impl Waiting {
    /// What a run could send now: neither backing off, claimed nor behind another.
    pub fn due(&self) -> i64 {
        (self.total - self.backing_off - self.claimed - self.ordered_behind).max(0)
    }
}

#[derive(QueryableByName)]
struct HookCount {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    hook_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Ordered callbacks behind an earlier waiting one of their row, per hook (the ordered
/// index serves it). Written in SQL both backends speak: no parameters, `=` or both
/// NULL for the row key.
const ORDERED_BEHIND: &str = "SELECT c.hook_id, COUNT(*) AS n FROM httphooks_callbacks c \
    WHERE c.status = 'waiting' AND c.ordered AND EXISTS (SELECT 1 FROM httphooks_callbacks e \
      WHERE e.status = 'waiting' AND e.ordered AND e.hook_id = c.hook_id AND e.id < c.id \
        AND (e.object_id = c.object_id OR (e.object_id IS NULL AND c.object_id IS NULL))) \
    GROUP BY c.hook_id";

#[derive(QueryableByName)]
struct WaitingRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    hook_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    later: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    claimed: i64,
}

/// Waiting callbacks per hook, split at `now` into due, backing off, claimed and
/// ordered behind another: one pass over the waiting callbacks (COUNT of a CASE is a
/// BIGINT on every backend, where SUM is not) and one over the ordered ones.
pub fn waiting_by_hook(db: &mut Db, now: NaiveDateTime) -> Result<BTreeMap<i64, Waiting>> {
    let now = timestamp_literal(now);
    let counts = format!(
        "SELECT hook_id, COUNT(*) AS total, \
           COUNT(CASE WHEN next_attempt_at > {now} THEN 1 END) AS later, \
           COUNT(CASE WHEN claimed_until > {now} THEN 1 END) AS claimed \
         FROM httphooks_callbacks WHERE status = 'waiting' GROUP BY hook_id"
    );
    let (rows, behind): (Vec<WaitingRow>, Vec<HookCount>) = with_conn!(db, |conn| {
        let rows = diesel::sql_query(&counts).load(conn)?;
        let behind = diesel::sql_query(ORDERED_BEHIND).load(conn)?;
        Ok::<_, crate::Error>((rows, behind))
    })?;
    let mut waiting: BTreeMap<i64, Waiting> = rows
        .into_iter()
        .map(|row| {
            let counts = Waiting {
                total: row.total,
                backing_off: row.later,
                claimed: row.claimed,
                ordered_behind: 0,
            };
            (row.hook_id, counts)
        })
        .collect();
    for row in behind {
        waiting.entry(row.hook_id).or_default().ordered_behind = row.n;
    }
    Ok(waiting)
}

/// Callbacks per hook that became errors at or after `since` (the errors index).
pub fn errors_by_hook(db: &mut Db, since: NaiveDateTime) -> Result<BTreeMap<i64, i64>> {
    finished_by_hook(db, Status::Error, since)
}

/// Per hook, how many callbacks reached `status` since then.
pub fn finished_by_hook(
    db: &mut Db,
    status: Status,
    since: NaiveDateTime,
) -> Result<BTreeMap<i64, i64>> {
    let rows: Vec<(i64, i64)> = with_conn!(db, |conn| c::httphooks_callbacks
        .filter(c::status.eq(status))
        .filter(c::updated_at.ge(since))
        .group_by(c::hook_id)
        .select((c::hook_id, diesel::dsl::count_star()))
        .load(conn))?;
    Ok(rows.into_iter().collect())
}

/// Since when the longest-waiting due callback has been due (of these hooks; of all
/// enabled hooks without them): a new callback from its creation, a retried one from
/// its retry time. Held callbacks (hook disabled, ordered behind another, claimed) are
/// not due. Changes not admitted yet count from when they were made, for all hooks.
pub fn oldest_due_since(db: &mut Db, hook_ids: &[i64]) -> Result<Option<NaiveDateTime>> {
    let mut filter = ClaimFilter {
        hook_ids: hook_ids.to_vec(),
        ..ClaimFilter::default()
    };
    // Claim order puts every new callback (oldest first) before every retried one;
    // look at the first of each.
    let first = callbacks::peek_due(db, &filter, 1)?;
    let mut oldest = first
        .first()
        .map(|c| c.next_attempt_at.unwrap_or(c.created_at));
    if first.first().is_some_and(|c| c.next_attempt_at.is_none()) {
        filter.after = Some((chrono::DateTime::UNIX_EPOCH.naive_utc(), i64::MAX));
        let retried = callbacks::peek_due(db, &filter, 1)?;
        if let Some(due) = retried.first().and_then(|c| c.next_attempt_at) {
            oldest = oldest.min(Some(due));
        }
    }
    if hook_ids.is_empty() {
        if let Some(new) = db.oldest_new_callback()? {
            oldest = Some(oldest.map_or(new, |o| o.min(new)));
        }
    }
    Ok(oldest)
}

/// The earliest waiting callback an ordered callback waits behind (same hook and row),
/// if any. Keys are compared in SQL: they may hold bytes that are not UTF-8.
pub fn ordered_behind(db: &mut Db, callback_id: i64) -> Result<Option<i64>> {
    let this = diesel::alias!(super::schema::httphooks_callbacks as this);
    with_conn!(db, |conn| {
        let Some((hook_id, keyless, ordered)) = c::httphooks_callbacks
            .filter(c::id.eq(callback_id))
            .select((c::hook_id, c::object_id.is_null(), c::ordered))
            .first::<(i64, bool, bool)>(conn)
            .optional()?
        else {
            return Ok(None);
        };
        if !ordered {
            return Ok(None);
        }
        let earlier = c::httphooks_callbacks
            .select(c::id)
            .filter(c::status.eq(Status::Waiting))
            .filter(c::ordered)
            .filter(c::hook_id.eq(hook_id))
            .filter(c::id.lt(callback_id))
            .into_boxed();
        let earlier = if keyless {
            earlier.filter(c::object_id.is_null())
        } else {
            earlier.filter(
                c::object_id.eq_any(
                    this.select(this.field(c::object_id))
                        .filter(this.field(c::id).eq(callback_id))
                        .filter(this.field(c::object_id).is_not_null()),
                ),
            )
        };
        Ok(earlier.order(c::id).first(conn).optional()?)
    })
}
