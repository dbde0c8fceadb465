//! `monitor_callbacks`: the callbacks table as an exit code for monitoring.

use std::process::ExitCode;

use chrono::Datelike;

use crate::cli::MonitorArgs;
use crate::error::Result;
use crate::storage::{callbacks, Db};

pub fn run(url: Option<&str>, args: &MonitorArgs) -> Result<ExitCode> {
    let mut db = Db::open_migrated(url)?;
    let status = args.status.as_str();
    // A window reaching back before the calendar's range holds every callback: count
    // them all, as without --minutes_ago, instead of overflowing.
    let since = args.minutes_ago.and_then(|minutes| {
        chrono::Duration::try_minutes(minutes)
            .and_then(|window| chrono::Utc::now().naive_utc().checked_sub_signed(window))
            .filter(|since| since.year() >= 1)
    });
    let count = callbacks::count_by_status(&mut db, status, since)?;
    let window = match args.minutes_ago {
        Some(minutes) => format!(" in the last {minutes} minutes"),
        None => String::new(),
    };
    // Exit 1 only when the count is *greater* than the limit, as infi's README says.
    let exceeded = count > args.callbacks_limit;
    println!(
        "{}: {count} callbacks with status {status}{window} (limit {})",
        if exceeded { "ALERT" } else { "OK" },
        args.callbacks_limit
    );
    Ok(if exceeded {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
