use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`| head`) would panic;
    // a command-line tool should end quietly instead.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    httphooks::init_logging();
    let cli = match httphooks::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return httphooks::usage_error(error),
    };
    match httphooks::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("httphooks: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
