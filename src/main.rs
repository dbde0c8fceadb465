use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // ureq's TRACE level logs requests as they go on the wire, secrets included: it is
    // capped at DEBUG, where ureq redacts, whatever RUST_LOG asks for.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .filter_module("ureq", log::LevelFilter::Debug)
        .filter_module("ureq_proto", log::LevelFilter::Debug)
        .init();
    let cli = httphooks::cli::Cli::parse();
    match httphooks::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("httphooks: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
