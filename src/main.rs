use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    httphooks::logging::init();
    let cli = httphooks::cli::Cli::parse();
    match httphooks::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("httphooks: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
