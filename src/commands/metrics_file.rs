//! `send_callbacks --metrics-file PATH`: the run and the queue in Prometheus' text
//! format, for node_exporter's textfile collector. Written at the end of each run to a
//! temporary file beside PATH and renamed over it, so the collector never reads half.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use chrono::NaiveDateTime;

use crate::engine::Summary;
use crate::error::{Error, Result};
use crate::storage::runs::{Latency, LATENCY_BUCKETS_MS};
use crate::storage::{health, hooks, now, runs, Db};

/// What it first writes: a file that does not start so was not written by httphooks.
const FIRST_LINE: &str = "# HELP httphooks_";

/// Before a run: PATH can be written and replacing it loses nothing (it is new, empty,
/// or a metrics file httphooks wrote), so a typo never overwrites, say, the database.
/// Returns why not, as a warning: metrics that cannot be written do not stop delivery.
pub fn check_path(path: &Path) -> std::result::Result<(), String> {
    let refuse = |why: String| {
        Err(format!(
            "the metrics file {} (--metrics-file, HTTPHOOKS_METRICS_FILE): {why}; delivering without writing metrics",
            path.display()
        ))
    };
    if path.is_dir() {
        return refuse(
            "that is a directory; give the path of a file in it, such as httphooks.prom".to_owned(),
        );
    }
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !directory.exists() {
        return refuse(format!(
            "the folder {} does not exist; create it, or give a file in an existing folder",
            directory.display()
        ));
    }
    if !directory.is_dir() {
        return refuse(format!(
            "{} is not a directory; give a file in an existing directory",
            directory.display()
        ));
    }
    // The file is written at the end by a rename from beside it: a directory that
    // does not take a new file is found out now, before anything is sent.
    let probe = directory.join(unguessable_name("httphooks-check"));
    if let Err(error) = create_new(&probe, b"") {
        return refuse(format!(
            "cannot create a file in {} ({error}); give a writable directory",
            directory.display()
        ));
    }
    let _ = std::fs::remove_file(&probe);
    // Only a regular file is read or replaced: a FIFO would block the run before it sent
    // anything, and a link may point anywhere.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            return refuse(
                "it exists and is not a regular file (a link, a pipe, a device); give another path, or remove it first"
                    .to_owned(),
            );
        }
        _ => {}
    }
    let opened = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
    };
    if let Ok(mut file) = opened {
        use std::io::Read;
        let mut start = vec![0; FIRST_LINE.len()];
        let read = file.read(&mut start).unwrap_or(0);
        if read > 0 && start[..read] != FIRST_LINE.as_bytes()[..read] {
            return refuse("the file exists and is not a metrics file httphooks wrote; give another path, or remove it first".to_owned());
        }
    }
    Ok(())
}

pub fn write(path: &Path, db: &mut Db, summary: &Summary) -> Result<()> {
    let text = render(db, summary)?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::invalid(format!("--metrics-file {} names no file; give a path such as /var/lib/prometheus/node-exporter/httphooks.prom", path.display())))?;
    let temporary = path.with_file_name(unguessable_name(file_name));
    let failed = |e: std::io::Error| {
        Error::environment(format!(
            "cannot write the metrics file {}: {e}; check that its folder exists, is writable and has room",
            path.display()
        ))
    };
    create_new(&temporary, text.as_bytes()).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        failed(e)
    })?;
    std::fs::rename(&temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        failed(e)
    })
}

/// A hidden name beside the metrics file that nobody can have put there beforehand.
fn unguessable_name(stem: &str) -> String {
    format!(
        ".{stem}.{}.{:016x}.tmp",
        std::process::id(),
        fastrand::u64(..)
    )
}

/// Writes a file that must not exist yet: never through a symlink or into a file that
/// someone else made (the folder may be shared with other users).
fn create_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn render(db: &mut Db, summary: &Summary) -> Result<String> {
    let now = now();
    let hooks = hooks::list(db)?;
    let names: BTreeMap<i64, String> = hooks.iter().map(|h| (h.id, h.name.clone())).collect();
    let paused: BTreeSet<i64> = hooks.iter().filter(|h| !h.enabled).map(|h| h.id).collect();
    let waiting = health::waiting_by_hook(db, now)?;
    let oldest_due = health::oldest_due_since(db, &[])?;
    let successes = runs::last_successes(db)?;
    let mut out = String::new();
    write_run(&mut out, summary, &names, now);
    write_queue(
        &mut out, summary, &names, &paused, &waiting, oldest_due, now,
    );
    write_successes(&mut out, &names, &successes);
    write_endpoints(&mut out, summary);
    Ok(out)
}

/// A hook's name; its id once it was removed.
fn hook_name(names: &BTreeMap<i64, String>, id: &i64) -> String {
    names.get(id).cloned().unwrap_or_else(|| id.to_string())
}

/// What the run did, how long it took and when it ended.
fn write_run(
    out: &mut String,
    summary: &Summary,
    names: &BTreeMap<i64, String>,
    now: NaiveDateTime,
) {
    family(
        out,
        "httphooks_run_callbacks",
        "gauge",
        "Callbacks the last run finished, per hook and outcome (sent, retried, failed; superseded: folded into a newer change of their row, --coalesce).",
    );
    for (hook, stats) in &summary.hook_stats {
        for (outcome, count) in [
            ("sent", stats.sent),
            ("retried", stats.retried),
            ("failed", stats.failed),
        ] {
            sample(
                out,
                "httphooks_run_callbacks",
                &[("hook", &hook_name(names, hook)), ("outcome", outcome)],
                f64::from(count),
            );
        }
    }
    for (hook, count) in &summary.superseded_by_hook {
        sample(
            out,
            "httphooks_run_callbacks",
            &[("hook", &hook_name(names, hook)), ("outcome", "superseded")],
            *count as f64,
        );
    }
    family(
        out,
        "httphooks_run_duration_seconds",
        "gauge",
        "How long the last run took.",
    );
    sample(
        out,
        "httphooks_run_duration_seconds",
        &[],
        summary.elapsed.as_secs_f64(),
    );
    family(
        out,
        "httphooks_run_end_timestamp_seconds",
        "gauge",
        "When the last run ended (Unix time).",
    );
    sample(
        out,
        "httphooks_run_end_timestamp_seconds",
        &[],
        unix_seconds(now),
    );
}

/// The waiting callbacks per hook and state, and the oldest due one's wait.
fn write_queue(
    out: &mut String,
    summary: &Summary,
    names: &BTreeMap<i64, String>,
    paused: &BTreeSet<i64>,
    waiting: &BTreeMap<i64, health::Waiting>,
    oldest_due: Option<NaiveDateTime>,
    now: NaiveDateTime,
) {
    family(out, "httphooks_queue_callbacks", "gauge", "Waiting callbacks per hook at the end of the run: due, backing_off (retry time to come), claimed (by another run), held (hook paused, environment missing, ordered behind another).");
    for (id, name) in names {
        let queue = waiting.get(id).copied().unwrap_or_default();
        // Held: the hook is paused, this run lacked its environment, or ordered
        // callbacks wait behind earlier ones of their row.
        let (due, backing_off, claimed, held) =
            if paused.contains(id) || summary.held_hooks.contains(id) {
                (0, queue.backing_off, 0, queue.total - queue.backing_off)
            } else {
                (
                    queue.due(),
                    queue.backing_off,
                    queue.claimed,
                    queue.ordered_behind,
                )
            };
        let states = [
            ("due", due),
            ("backing_off", backing_off),
            ("claimed", claimed),
            ("held", held),
        ];
        for (state, count) in states {
            sample(
                out,
                "httphooks_queue_callbacks",
                &[("hook", name), ("state", state)],
                count as f64,
            );
        }
    }
    family(
        out,
        "httphooks_oldest_due_seconds",
        "gauge",
        "How long the longest-waiting due callback has waited (0 when none is due).",
    );
    let lag = oldest_due.map_or(0.0, |since| {
        (now - since).num_milliseconds().max(0) as f64 / 1000.0
    });
    sample(out, "httphooks_oldest_due_seconds", &[], lag);
}

/// When each hook last got a 2xx.
fn write_successes(
    out: &mut String,
    names: &BTreeMap<i64, String>,
    successes: &BTreeMap<i64, NaiveDateTime>,
) {
    family(
        out,
        "httphooks_last_success_timestamp_seconds",
        "gauge",
        "When each hook last got a 2xx (Unix time), over the runs on record.",
    );
    for (hook, at) in successes {
        sample(
            out,
            "httphooks_last_success_timestamp_seconds",
            &[("hook", &hook_name(names, hook))],
            unix_seconds(*at),
        );
    }
}

/// Each endpoint's concurrency limit and request durations.
fn write_endpoints(out: &mut String, summary: &Summary) {
    family(
        out,
        "httphooks_endpoint_concurrency_limit",
        "gauge",
        "Each endpoint's adaptive concurrency limit at the end of the last run.",
    );
    for (endpoint, stats) in &summary.endpoint_stats {
        sample(
            out,
            "httphooks_endpoint_concurrency_limit",
            &[("endpoint", endpoint)],
            f64::from(stats.concurrency_limit),
        );
    }
    family(
        out,
        "httphooks_request_duration_seconds",
        "histogram",
        "Request durations in the last run, per endpoint.",
    );
    for (endpoint, stats) in &summary.endpoint_stats {
        histogram(
            out,
            "httphooks_request_duration_seconds",
            endpoint,
            &stats.latency,
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    let _ = writeln!(out, "{name}{} {}", label_set(labels), number(value));
}

fn histogram(out: &mut String, name: &str, endpoint: &str, latency: &Latency) {
    let mut cumulative = 0;
    for (bound, count) in LATENCY_BUCKETS_MS.iter().zip(&latency.counts) {
        cumulative += count;
        let le = number(*bound as f64 / 1000.0);
        let _ = writeln!(
            out,
            "{name}_bucket{} {cumulative}",
            label_set(&[("endpoint", endpoint), ("le", &le)])
        );
    }
    let total = latency.total();
    let _ = writeln!(
        out,
        "{name}_bucket{} {total}",
        label_set(&[("endpoint", endpoint), ("le", "+Inf")])
    );
    let _ = writeln!(
        out,
        "{name}_sum{} {}",
        label_set(&[("endpoint", endpoint)]),
        number(latency.sum_ms as f64 / 1000.0)
    );
    let _ = writeln!(
        out,
        "{name}_count{} {total}",
        label_set(&[("endpoint", endpoint)])
    );
}

/// `{a="x",b="y"}` with the format's escapes (backslash, double quote, newline).
fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(key, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{key}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

fn unix_seconds(time: chrono::NaiveDateTime) -> f64 {
    time.and_utc().timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_never_written_through_a_link_or_into_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(create_new(&link, b"metrics").is_err());
        assert!(create_new(&victim, b"metrics").is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_ne!(unguessable_name("m"), unguessable_name("m"));
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(
            label_set(&[("hook", "a\"b\\c\nd")]),
            r#"{hook="a\"b\\c\nd"}"#
        );
        assert_eq!(label_set(&[]), "");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.005), "0.005");
    }
}
