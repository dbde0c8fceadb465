//! One module per command; `run` dispatches the parsed command line to them.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Command};
use crate::error::Result;

pub mod callbacks;
mod capture;
pub mod delete_old_callbacks;
pub mod enqueue;
mod explain;
pub mod hooks;
mod man;
mod metrics_file;
pub mod migrate;
pub mod monitor_callbacks;
mod output;
pub mod send_callbacks;
pub mod status;

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
        Command::Status(args) => status::run(url, &args),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "httphooks", &mut script);
            print_bytes(&script)
        }
        Command::Man {
            subcommand,
            out_dir: None,
        } => man::print(&subcommand),
        Command::Man {
            out_dir: Some(dir), ..
        } => man::write_all(&dir),
    }
}

/// Writes generated text to stdout; a reader that stops early (`| head`) is not an error.
fn print_bytes(bytes: &[u8]) -> Result<ExitCode> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(crate::error::Error::environment(format!(
                "cannot write to stdout: {e}; check where the output goes"
            )))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
