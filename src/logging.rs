//! Logging (env_logger, `RUST_LOG`; default `warn`).

use log::{Level, LevelFilter, Metadata};

/// The HTTP client logs requests as they go on the wire at TRACE, secrets included
/// (ureq redacts at DEBUG and above), so those modules are capped at DEBUG whatever
/// `RUST_LOG` asks for. Other levels are left as asked.
pub fn init() {
    let asked = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned());
    let filter = env_filter::Builder::new().parse(&asked).build();
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&asked);
    for module in ["ureq", "ureq_proto"] {
        let wire_level = Metadata::builder()
            .level(Level::Trace)
            .target(module)
            .build();
        if filter.enabled(&wire_level) {
            builder.filter_module(module, LevelFilter::Debug);
        }
    }
    builder.init();
}
