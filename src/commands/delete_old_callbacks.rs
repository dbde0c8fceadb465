//! `delete_old_callbacks DAYS`: keep the callbacks table small, in short batches so
//! that no lock is held for long while senders and triggers write.

use std::process::ExitCode;

use crate::cli::DeleteOldArgs;
use crate::error::Result;
use crate::storage::{before_now, callbacks, hooks, runs, Db};

pub fn run(url: Option<&str>, args: &DeleteOldArgs) -> Result<ExitCode> {
    // clap requires one of the two, and not both.
    let days = args.days.or(args.days_flag).unwrap_or_default();
    let mut db = Db::open_migrated(url)?;
    super::capture::warn(&mut db);
    // Old new callbacks (cron stopped for days) are old waiting callbacks too.
    super::output::admit_all(&mut db)?;
    // DAYS that reach back before the year 1 delete nothing, without overflowing.
    let before = before_now(chrono::Duration::try_days(days));
    let started = std::time::Instant::now();
    let mut deleted = 0;
    // Each batch is its own short transaction; report the longest, which bounds how
    // long senders and triggers may have waited on it.
    let mut longest = std::time::Duration::ZERO;
    let mut after = 0;
    let bar = super::output::progress("callbacks deleted");
    loop {
        let batch_started = std::time::Instant::now();
        // A sender recording outcomes meanwhile may deadlock with a batch (MySQL):
        // the batch was rolled back whole and is run again.
        let batch = db.retry_when_busy(|db| {
            callbacks::delete_old_batch(db, before, args.include_waiting, args.batch_size, after)
        })?;
        longest = longest.max(batch_started.elapsed());
        let Some((batch_deleted, last)) = batch else {
            break;
        };
        deleted += batch_deleted;
        after = last;
        bar.set_position(deleted as u64);
    }
    bar.finish_and_clear();
    hooks::prune_unused_versions(&mut db)?;
    // The record of runs ages with the callbacks they sent.
    let runs_deleted = runs::delete_ended_before(&mut db, before)?;
    let kept = if args.include_waiting {
        ""
    } else {
        " (waiting ones kept)"
    };
    println!(
        "deleted {deleted} callbacks created more than {} days ago{kept} and {runs_deleted} run records in {:.2}s (longest batch {} ms)",
        days,
        started.elapsed().as_secs_f64(),
        longest.as_millis()
    );
    Ok(ExitCode::SUCCESS)
}
