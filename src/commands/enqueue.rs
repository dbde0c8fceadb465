//! `enqueue --hook NAME --event TYPE --data JSON`: the insert helper for scripts.

use std::process::ExitCode;

use crate::cli::EnqueueArgs;
use crate::error::{Error, Result};
use crate::storage::Db;

pub fn run(url: Option<&str>, args: &EnqueueArgs) -> Result<ExitCode> {
    let data: serde_json::Value = serde_json::from_str(&args.data).map_err(|e| {
        Error::invalid(format!(
            "--data is not valid JSON ({e}); pass a JSON document"
        ))
    })?;
    let mut db = Db::open_migrated(url)?;
    super::capture::warn(&mut db);
    let made = crate::enqueue(&mut db, &args.hook, &args.event, &data)?;
    if made == 0 {
        println!("hook {} is disabled: no callback was made", args.hook);
    } else {
        println!("enqueued {made} callback(s) for hook {}", args.hook);
    }
    Ok(ExitCode::SUCCESS)
}
