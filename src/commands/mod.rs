//! One module per command; `run` dispatches the parsed command line to them.

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::Result;

pub mod callbacks;
mod capture;
pub mod delete_old_callbacks;
pub mod enqueue;
pub mod hooks;
pub mod migrate;
pub mod monitor_callbacks;
mod output;
pub mod send_callbacks;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let url = cli.database_url.as_deref();
    match cli.command {
        Command::Migrate => migrate::run(url),
        Command::SendCallbacks(args) => send_callbacks::run(url, &args),
        Command::MonitorCallbacks(args) => monitor_callbacks::run(url, &args),
        Command::DeleteOldCallbacks(args) => delete_old_callbacks::run(url, &args),
        Command::Hooks(command) => hooks::run(url, *command),
        Command::Callbacks(command) => callbacks::run(url, command),
        Command::Enqueue(args) => enqueue::run(url, &args),
    }
}
