//! `httphooks migrate`: create or upgrade httphooks' tables.

use std::process::ExitCode;

use crate::error::Result;
use crate::storage::{self, Db};

pub fn run(url: Option<&str>) -> Result<ExitCode> {
    let mut db = Db::connect_creating(url)?;
    let ran = storage::migrate(&mut db)?;
    let backend = db.backend().profile().name;
    if ran == 0 {
        println!("the httphooks schema is up to date ({backend})");
    } else {
        println!("applied {ran} migration(s) ({backend})");
    }
    Ok(ExitCode::SUCCESS)
}
