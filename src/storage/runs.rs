//! `httphooks_runs`: one row per `send_callbacks` run, written when it starts and
//! completed when it ends. A run that never ended is a run in progress, or one that
//! died (the next run on its host finds out and takes its claims back).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use std::collections::BTreeMap;

use super::schema::httphooks_run_endpoints::dsl as re;
use super::schema::httphooks_run_hooks::dsl as rh;
use super::schema::httphooks_runs::dsl as r;
use super::{now, with_conn, Db};
use crate::error::Result;

/// Who is running: written when a run starts.
#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = super::schema::httphooks_runs)]
pub struct RunStart {
    pub token: String,
    pub host: String,
    pub pid: i32,
    pub process: String,
    pub started_at: NaiveDateTime,
    /// `send_callbacks --follow`: it waits for changes until its deadline.
    pub following: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Default, AsChangeset, Queryable, Selectable)]
#[diesel(table_name = super::schema::httphooks_runs)]
pub struct RunEnd {
    pub ended_at: Option<NaiveDateTime>,
    pub claimed: i32,
    pub sent: i32,
    pub retried: i32,
    pub failed: i32,
    pub held: i32,
    pub released: i32,
    pub exit_code: Option<i32>,
    pub stop_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = super::schema::httphooks_runs)]
pub struct Run {
    pub id: i64,
    #[diesel(embed)]
    pub start: RunStart,
    /// Empty while it runs (or when it died), but for the counts of a following run,
    /// written as it goes.
    #[diesel(embed)]
    pub end: RunEnd,
    /// When a following run last wrote its progress (every [`PROGRESS_EVERY`]).
    pub alive_at: Option<NaiveDateTime>,
}

/// How often a following run writes its progress and the time.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// A following run not heard from for this long has stopped, whatever its row says
/// (killed, or its host lost): five missed beats.
pub fn silent_after() -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(15)
}

impl Run {
    /// A following run that has not ended and wrote its progress lately.
    pub fn is_following(&self, now: NaiveDateTime) -> bool {
        self.start.following
            && self.end.ended_at.is_none()
            && self
                .alive_at
                .unwrap_or(self.start.started_at)
                .signed_duration_since(now)
                .abs()
                < silent_after()
    }
}

/// What a following run has done so far.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub claimed: i32,
    pub sent: i32,
    pub retried: i32,
    pub failed: i32,
}

/// Records that a run started; returns its id (found by its token, which is the run's
/// own: not every backend returns what it inserted).
pub fn start(db: &mut Db, run: &RunStart) -> Result<i64> {
    with_conn!(db, |conn| {
        diesel::insert_into(r::httphooks_runs)
            .values(run)
            .execute(conn)?;
        Ok(r::httphooks_runs
            .select(r::id)
            .filter(r::token.eq(&run.token))
            .order(r::id.desc())
            .first(conn)?)
    })
}

pub fn end(db: &mut Db, id: i64, end: &RunEnd) -> Result<()> {
    with_conn!(db, |conn| diesel::update(
        r::httphooks_runs.filter(r::id.eq(id))
    )
    .set(end)
    .execute(conn))?;
    Ok(())
}

/// Writes what a following run has done so far, with its per-hook and per-endpoint
/// stats (so that `status` shows its last success while it runs) and the time, in one
/// transaction.
pub fn progress(
    db: &mut Db,
    id: i64,
    done: &Progress,
    hooks: &BTreeMap<i64, HookStats>,
    endpoints: &BTreeMap<String, EndpointStats>,
) -> Result<()> {
    db.write_transaction(|db| {
        with_conn!(db, |conn| diesel::update(
            r::httphooks_runs
                .filter(r::id.eq(id))
                .filter(r::ended_at.is_null())
        )
        .set((
            r::claimed.eq(done.claimed),
            r::sent.eq(done.sent),
            r::retried.eq(done.retried),
            r::failed.eq(done.failed),
            r::alive_at.eq(Some(now())),
        ))
        .execute(conn))?;
        record_stats(db, id, hooks, endpoints)
    })
}

/// Runs of `host` that have not ended, other than `except` (this run).
pub fn unfinished_on(db: &mut Db, host: &str, except: i64) -> Result<Vec<Run>> {
    with_conn!(db, |conn| Ok(r::httphooks_runs
        .select(Run::as_select())
        .filter(r::ended_at.is_null())
        .filter(r::host.eq(host))
        .filter(r::id.ne(except))
        .load(conn)?))
}

/// Following runs (`send_callbacks --follow`) that have not ended, newest first.
pub fn following(db: &mut Db) -> Result<Vec<Run>> {
    with_conn!(db, |conn| Ok(r::httphooks_runs
        .select(Run::as_select())
        .filter(r::ended_at.is_null())
        .filter(r::following.eq(true))
        .order(r::id.desc())
        .load(conn)?))
}

/// Ends a run that was found dead, keeping what a following run wrote of its progress.
pub fn mark_died(db: &mut Db, id: i64) -> Result<()> {
    with_conn!(db, |conn| diesel::update(
        r::httphooks_runs.filter(r::id.eq(id))
    )
    .set((r::ended_at.eq(Some(now())), r::stop_reason.eq("died")))
    .execute(conn))?;
    Ok(())
}

/// The most recent runs, and every run that has not ended, newest first.
pub fn recent(db: &mut Db, limit: i64) -> Result<Vec<Run>> {
    let (mut runs, unfinished) = with_conn!(db, |conn| {
        let recent: Vec<Run> = r::httphooks_runs
            .select(Run::as_select())
            .order(r::id.desc())
            .limit(limit)
            .load(conn)?;
        let unfinished: Vec<Run> = r::httphooks_runs
            .select(Run::as_select())
            .filter(r::ended_at.is_null())
            .order(r::id.desc())
            .limit(100)
            .load(conn)?;
        Ok::<_, crate::Error>((recent, unfinished))
    })?;
    for run in unfinished {
        if !runs.iter().any(|shown| shown.id == run.id) {
            runs.push(run);
        }
    }
    runs.sort_by_key(|run| std::cmp::Reverse(run.id));
    Ok(runs)
}

/// Deletes runs that ended before `before`, with what they did per hook and endpoint.
pub fn delete_ended_before(db: &mut Db, before: NaiveDateTime) -> Result<usize> {
    db.write_transaction(|db| {
        with_conn!(db, |conn| {
            let old = r::httphooks_runs
                .select(r::id)
                .filter(r::ended_at.is_not_null())
                .filter(r::ended_at.lt(before));
            diesel::delete(rh::httphooks_run_hooks.filter(rh::run_id.eq_any(old))).execute(conn)?;
            diesel::delete(re::httphooks_run_endpoints.filter(re::run_id.eq_any(old)))
                .execute(conn)?;
            Ok(diesel::delete(
                r::httphooks_runs
                    .filter(r::ended_at.is_not_null())
                    .filter(r::ended_at.lt(before)),
            )
            .execute(conn)?)
        })
    })
}

/// The run that holds (or held) claims under `token`.
pub fn by_token(db: &mut Db, token: &str) -> Result<Option<Run>> {
    with_conn!(db, |conn| Ok(r::httphooks_runs
        .select(Run::as_select())
        .filter(r::token.eq(token))
        .first(conn)
        .optional()?))
}

/// The last run that ended (not one found dead), if any.
pub fn last_finished(db: &mut Db) -> Result<Option<Run>> {
    with_conn!(db, |conn| Ok(r::httphooks_runs
        .select(Run::as_select())
        .filter(r::ended_at.is_not_null())
        .filter(r::stop_reason.ne("died"))
        .order(r::ended_at.desc())
        .first(conn)
        .optional()?))
}

/// Upper bounds of the request-duration buckets, in milliseconds (Prometheus' default
/// buckets); one more bucket counts the rest.
pub const LATENCY_BUCKETS_MS: [i64; 11] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// Request durations as a histogram: runs store it, `status` and the metrics file merge
/// and read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    /// Per bucket of [`LATENCY_BUCKETS_MS`], then the rest; not cumulative.
    pub counts: Vec<i64>,
    pub sum_ms: i64,
}

impl Default for Latency {
    fn default() -> Latency {
        Latency {
            counts: vec![0; LATENCY_BUCKETS_MS.len() + 1],
            sum_ms: 0,
        }
    }
}

impl Latency {
    pub fn observe(&mut self, ms: i64) {
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|&bound| ms <= bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.counts[bucket] += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms.max(0));
    }

    pub fn merge(&mut self, other: &Latency) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
    }

    pub fn total(&self) -> i64 {
        self.counts.iter().sum()
    }

    /// The bucket bound at or under which a fraction `q` of requests took; None without
    /// requests, and `i64::MAX` when it lies beyond the last bound.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let wanted = (q * total as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return Some(LATENCY_BUCKETS_MS.get(bucket).copied().unwrap_or(i64::MAX));
            }
        }
        Some(i64::MAX)
    }

    fn to_json(&self) -> String {
        serde_json::to_string(&self.counts).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Counts written by another version with other buckets are not mixed in.
    fn from_stored(counts: &str, sum_ms: i64) -> Latency {
        match serde_json::from_str::<Vec<i64>>(counts) {
            Ok(counts) if counts.len() == LATENCY_BUCKETS_MS.len() + 1 => {
                Latency { counts, sum_ms }
            }
            _ => Latency::default(),
        }
    }
}

/// What a run did for one hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookStats {
    pub sent: i32,
    pub retried: i32,
    pub failed: i32,
    pub last_success_at: Option<NaiveDateTime>,
}

/// What a run saw of one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub requests: i32,
    pub failures: i32,
    pub concurrency_limit: i32,
    pub latency: Latency,
}

#[derive(Insertable)]
#[diesel(table_name = super::schema::httphooks_run_hooks)]
struct RunHookRow<'a> {
    run_id: i64,
    hook_id: i64,
    sent: i32,
    retried: i32,
    failed: i32,
    last_success_at: Option<&'a NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = super::schema::httphooks_run_endpoints)]
struct RunEndpointRow<'a> {
    run_id: i64,
    endpoint: &'a str,
    requests: i32,
    failures: i32,
    concurrency_limit: i32,
    latency_counts: String,
    latency_sum_ms: i64,
}

/// Records what a run did per hook and per endpoint (when it ends; the caller holds
/// the transaction that also ends the run, so a retry never writes them twice).
pub fn record_stats(
    db: &mut Db,
    run_id: i64,
    hooks: &BTreeMap<i64, HookStats>,
    endpoints: &BTreeMap<String, EndpointStats>,
) -> Result<()> {
    let hook_rows: Vec<RunHookRow> = hooks
        .iter()
        .map(|(&hook_id, s)| RunHookRow {
            run_id,
            hook_id,
            sent: s.sent,
            retried: s.retried,
            failed: s.failed,
            last_success_at: s.last_success_at.as_ref(),
        })
        .collect();
    let endpoint_rows: Vec<RunEndpointRow> = endpoints
        .iter()
        .map(|(endpoint, s)| RunEndpointRow {
            run_id,
            endpoint,
            requests: s.requests,
            failures: s.failures,
            concurrency_limit: s.concurrency_limit,
            latency_counts: s.latency.to_json(),
            latency_sum_ms: s.latency.sum_ms,
        })
        .collect();
    with_conn!(db, |conn| {
        // A following run writes them again and again: the last write counts.
        diesel::delete(rh::httphooks_run_hooks.filter(rh::run_id.eq(run_id))).execute(conn)?;
        diesel::delete(re::httphooks_run_endpoints.filter(re::run_id.eq(run_id))).execute(conn)?;
        for rows in hook_rows.chunks(500) {
            diesel::insert_into(rh::httphooks_run_hooks)
                .values(rows)
                .execute(conn)?;
        }
        for rows in endpoint_rows.chunks(500) {
            diesel::insert_into(re::httphooks_run_endpoints)
                .values(rows)
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Each hook's last success recorded by any run.
pub fn last_successes(db: &mut Db) -> Result<BTreeMap<i64, NaiveDateTime>> {
    let rows: Vec<(i64, Option<NaiveDateTime>)> = with_conn!(db, |conn| rh::httphooks_run_hooks
        .group_by(rh::hook_id)
        .select((rh::hook_id, diesel::dsl::max(rh::last_success_at)))
        .load(conn))?;
    Ok(rows
        .into_iter()
        .filter_map(|(hook, at)| at.map(|at| (hook, at)))
        .collect())
}

/// An endpoint as the runs that ended since some time saw it: their requests merged,
/// and the limit it had at the end of the latest of them.
#[derive(Debug, Clone, Default)]
pub struct EndpointSeen {
    pub requests: i64,
    pub failures: i64,
    pub concurrency_limit: i32,
    pub latency: Latency,
}

pub fn endpoints_since(
    db: &mut Db,
    since: NaiveDateTime,
) -> Result<BTreeMap<String, EndpointSeen>> {
    type Row = (String, i32, i32, i32, String, i64);
    let rows: Vec<Row> = with_conn!(db, |conn| re::httphooks_run_endpoints
        .inner_join(r::httphooks_runs.on(r::id.eq(re::run_id)))
        .filter(r::ended_at.ge(since))
        .order(re::run_id)
        .select((
            re::endpoint,
            re::requests,
            re::failures,
            re::concurrency_limit,
            re::latency_counts,
            re::latency_sum_ms,
        ))
        .load(conn))?;
    let mut seen: BTreeMap<String, EndpointSeen> = BTreeMap::new();
    for (endpoint, requests, failures, limit, counts, sum_ms) in rows {
        let entry = seen.entry(endpoint).or_default();
        entry.requests += i64::from(requests);
        entry.failures += i64::from(failures);
        // Rows come oldest run first: the last one written is the current limit.
        entry.concurrency_limit = limit;
        entry.latency.merge(&Latency::from_stored(&counts, sum_ms));
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles_are_bucket_bounds() {
        let mut latency = Latency::default();
        assert_eq!(latency.quantile(0.5), None);
        for ms in [1, 2, 3, 40, 40, 40, 40, 40, 900, 20_000] {
            latency.observe(ms);
        }
        assert_eq!(latency.total(), 10);
        assert_eq!(latency.quantile(0.3), Some(5));
        assert_eq!(latency.quantile(0.5), Some(50));
        assert_eq!(latency.quantile(0.9), Some(1000));
        assert_eq!(latency.quantile(0.95), Some(i64::MAX));
        let stored = Latency::from_stored(&latency.to_json(), latency.sum_ms);
        assert_eq!(stored, latency);
        assert_eq!(Latency::from_stored("[1,2]", 5), Latency::default());
    }
}
