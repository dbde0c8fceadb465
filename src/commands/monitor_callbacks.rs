//! `monitor_callbacks`: the callbacks table as an exit code for monitoring.

use std::process::ExitCode;

use crate::cli::MonitorArgs;
use crate::error::Result;
use crate::storage::{callbacks, Db};

pub fn run(url: Option<&str>, args: &MonitorArgs) -> Result<ExitCode> {
    let mut db = Db::open_migrated(url)?;
    // Broken capture turns the check red whatever the counts: changes are being lost.
    let broken = super::capture::broken_lines(&mut db)?;
    for line in &broken {
        println!("ALERT: {line}");
    }
    let status = args.status.as_str();
    let since = args
        .minutes_ago
        .map(|minutes| chrono::Utc::now().naive_utc() - chrono::Duration::minutes(minutes));
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
    Ok(if exceeded || !broken.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
