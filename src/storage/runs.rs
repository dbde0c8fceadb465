//! `httphooks_runs`: one row per `send_callbacks` run, written when it starts and
//! completed when it ends. A run that never ended is a run in progress, or one that
//! died (the next run on its host finds out and takes its claims back).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::httphooks_runs::dsl as r;
use super::{now, with_conn, Db};
use crate::error::Result;

/// Who is running: written when a run starts.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = super::schema::httphooks_runs)]
pub struct NewRun {
    pub token: String,
    pub host: String,
    pub pid: i32,
    pub process: String,
    pub started_at: NaiveDateTime,
}

/// How a run ended.
#[derive(Debug, Clone, Default, AsChangeset)]
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
    pub token: String,
    pub host: String,
    pub pid: i32,
    pub process: String,
    pub started_at: NaiveDateTime,
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

/// Records that a run started; returns its id.
pub fn start(db: &mut Db, run: &NewRun) -> Result<i64> {
    with_conn!(db, |conn| Ok(diesel::insert_into(r::httphooks_runs)
        .values(run)
        .returning(r::id)
        .get_result(conn)?))
}

pub fn end(db: &mut Db, id: i64, end: &RunEnd) -> Result<()> {
    with_conn!(db, |conn| diesel::update(
        r::httphooks_runs.filter(r::id.eq(id))
    )
    .set(end)
    .execute(conn))?;
    Ok(())
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

/// Ends a run that was found dead.
pub fn mark_died(db: &mut Db, id: i64) -> Result<()> {
    end(
        db,
        id,
        &RunEnd {
            ended_at: Some(now()),
            stop_reason: Some("died".to_owned()),
            ..RunEnd::default()
        },
    )
}

/// The most recent runs, newest first.
pub fn recent(db: &mut Db, limit: i64) -> Result<Vec<Run>> {
    with_conn!(db, |conn| Ok(r::httphooks_runs
        .select(Run::as_select())
        .order(r::id.desc())
        .limit(limit)
        .load(conn)?))
}

/// Deletes runs that ended before `before`.
pub fn delete_ended_before(db: &mut Db, before: NaiveDateTime) -> Result<usize> {
    with_conn!(db, |conn| Ok(diesel::delete(
        r::httphooks_runs
            .filter(r::ended_at.is_not_null())
            .filter(r::ended_at.lt(before))
    )
    .execute(conn)?))
}
