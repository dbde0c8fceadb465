//! `delete_old_callbacks DAYS`: keep the callbacks table small, in short batches so
//! that no lock is held for long while senders and triggers write.

use std::process::ExitCode;

use crate::cli::DeleteOldArgs;
use crate::error::Result;
use crate::storage::{callbacks, Db};

pub fn run(url: Option<&str>, args: &DeleteOldArgs) -> Result<ExitCode> {
    let mut db = Db::open_migrated(url)?;
    let before = chrono::Utc::now().naive_utc() - chrono::Duration::days(args.days);
    let mut deleted = 0;
    loop {
        let batch =
            callbacks::delete_old_batch(&mut db, before, args.include_waiting, args.batch_size)?;
        deleted += batch;
        if batch == 0 {
            break;
        }
    }
    println!(
        "deleted {deleted} callbacks created more than {} days ago{}",
        args.days,
        if args.include_waiting {
            ""
        } else {
            " (waiting ones kept)"
        }
    );
    Ok(ExitCode::SUCCESS)
}
