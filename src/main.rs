use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = httphooks::cli::Cli::parse();
    match httphooks::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("httphooks: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
