//! Marks tests `ignored` when what they need is missing, so a plain `cargo test`
//! reports them as ignored instead of passing them silently: the PostgreSQL and MySQL
//! tests without a test database, the metrics-file test without Prometheus' Python parser.
//! Under CI=true they are never ignored: a missing database or parser fails them.

use std::process::{Command, Stdio};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_postgres)");
    println!("cargo::rustc-check-cfg=cfg(no_mysql)");
    println!("cargo::rerun-if-env-changed=HTTPHOOKS_TEST_MYSQL_URL");
    println!("cargo::rustc-check-cfg=cfg(no_prometheus_parser)");
    println!("cargo::rerun-if-env-changed=HTTPHOOKS_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PYTHONPATH");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=build.rs");
    // The migrations are embedded: a new one must rebuild the binary.
    println!("cargo::rerun-if-changed=migrations");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let configured = std::env::var_os("HTTPHOOKS_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty());
    if !configured && !ci {
        println!("cargo::rustc-cfg=no_postgres");
    }
    let mysql = std::env::var_os("HTTPHOOKS_TEST_MYSQL_URL").is_some_and(|v| !v.is_empty());
    if !mysql && !ci {
        println!("cargo::rustc-cfg=no_mysql");
    }
    let parser = Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !parser && !ci {
        println!("cargo::rustc-cfg=no_prometheus_parser");
    }
}
