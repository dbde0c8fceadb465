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
        } => print_bytes(&render_man_page(man_page_of(&subcommand)?)?),
        Command::Man {
            out_dir: Some(dir), ..
        } => write_man_pages(&dir),
    }
}

/// A man page in roff.
fn render_man_page(command: clap::Command) -> Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|e| {
            crate::error::Error::environment(format!(
                "cannot render the man page: {e}; report this"
            ))
        })?;
    Ok(page)
}

/// Writes httphooks.1 and a page per subcommand (`httphooks-hooks-add.1`, …) into `dir`,
/// as packages install them.
fn write_man_pages(dir: &std::path::Path) -> Result<ExitCode> {
    std::fs::create_dir_all(dir).map_err(|e| {
        crate::error::Error::environment(format!(
            "cannot create {}: {e}; name a folder you may write to",
            dir.display()
        ))
    })?;
    let mut paths = vec![Vec::new()];
    let mut written = 0;
    while let Some(path) = paths.pop() {
        let command = man_page_of(&path)?;
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut deeper = path.clone();
            deeper.push(sub.get_name().to_owned());
            paths.push(deeper);
        }
        let file = dir.join(format!("{}.1", command.get_name()));
        std::fs::write(&file, render_man_page(command)?).map_err(|e| {
            crate::error::Error::environment(format!(
                "cannot write {}: {e}; name a folder you may write to",
                file.display()
            ))
        })?;
        written += 1;
    }
    println!("wrote {written} man pages to {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The command a man page describes: httphooks, or the subcommand at `path`, named as
/// its page is (`httphooks-send_callbacks`, `httphooks-hooks-add`).
pub fn man_page_of(path: &[String]) -> Result<clap::Command> {
    let mut command = Cli::command();
    for (depth, name) in path.iter().enumerate() {
        let Some(sub) = command.find_subcommand(name).cloned() else {
            let known: Vec<String> = command
                .get_subcommands()
                .filter(|s| s.get_name() != "help")
                .map(|s| s.get_name().to_owned())
                .collect();
            return Err(crate::error::Error::invalid(
                format!(
                    "httphooks {} has no subcommand {name:?}; the pages are those of {}",
                    path[..depth].join(" "),
                    known.join(", ")
                )
                .replace("httphooks  has", "httphooks has"),
            ));
        };
        command = sub;
    }
    if path.is_empty() {
        // The version without the backends, so that every build renders the same page.
        return Ok(command.version(env!("CARGO_PKG_VERSION")));
    }
    Ok(command
        .name(format!("httphooks-{}", path.join("-")))
        .bin_name(format!("httphooks {}", path.join(" ")))
        .version(env!("CARGO_PKG_VERSION")))
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
