use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`| head`) would panic;
    // a command-line tool should end quietly instead.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // The MySQL client library ignores SIGPIPE again when it starts, and then the same
    // write panics: end as the signal would have.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |panic| {
        let message = panic
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            #[cfg(unix)]
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
            std::process::exit(141);
        }
        report(panic)
    }));
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
