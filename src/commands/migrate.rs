//! `httphooks migrate`: create or upgrade httphooks' tables.

use std::process::ExitCode;

use crate::error::Result;
use crate::storage::{self, Db};

pub fn run(url: Option<&str>) -> Result<ExitCode> {
    let creates = storage::would_create_sqlite_file(url);
    let mut db = Db::connect(url, true)?;
    let ran = storage::migrate(&mut db)?;
    if creates {
        if let Ok(storage::DatabaseLocation::Sqlite(path)) = storage::DatabaseLocation::parse(url) {
            storage::say_created(&path);
        }
    }
    if ran == 0 {
        println!("the httphooks schema is up to date ({})", db.backend_name());
    } else {
        println!("applied {ran} migration(s) ({})", db.backend_name());
    }
    Ok(ExitCode::SUCCESS)
}
