//! Printing for operators: aligned tables, or one JSON document with stable names.

use chrono::{NaiveDateTime, SecondsFormat};

/// A UTC timestamp as RFC 3339, the form every output uses.
pub fn timestamp(time: &NaiveDateTime) -> String {
    time.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn optional_timestamp(time: &Option<NaiveDateTime>) -> Option<String> {
    time.as_ref().map(timestamp)
}

pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialize")
    );
}

/// Text from outside (a receiver's answer, a row's value) made safe for a terminal:
/// control characters other than line breaks and tabs are shown escaped (`\u{1b}`), so
/// that a response cannot move the cursor, clear the screen or hide lines.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// `println!` for lines that hold text from outside (see [`printable`]).
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", $crate::commands::output::printable(&format!($($arg)*)))
    };
}
pub(crate) use say;

/// Prints rows under a header, each column as wide as its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", printable(padded.join("  ").trim_end()));
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Cuts a cell to `max` characters for tables.
pub fn clip(text: &str, max: usize) -> String {
    let single_line = text.replace('\n', " ");
    if single_line.chars().count() <= max {
        single_line
    } else {
        let cut: String = single_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// A spinner on stderr for long work (`label` names what it counts), shown only on a
/// terminal: cron mail and logs get the summary line alone.
pub fn progress(label: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{spinner}} {{pos}} {label} [{{elapsed}}]"
    )) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Admits every new callback, with a spinner once it has taken a second (progress is
/// for long work: a quick `callbacks list` shows none).
pub fn admit_all(db: &mut crate::storage::Db) -> crate::error::Result<usize> {
    let started = std::time::Instant::now();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let admitted = crate::storage::callbacks::admit_all_reporting(db, &mut |total| {
        if bar.is_none() && started.elapsed() >= std::time::Duration::from_secs(1) {
            bar = Some(progress("new callbacks admitted"));
        }
        if let Some(bar) = &bar {
            bar.set_position(total as u64);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    admitted
}

/// An outcome without what differs between callbacks that failed for the same reason:
/// "503 Service Unavailable (attempt 8/8, not retried)" is "503 Service Unavailable".
pub fn outcome_reason(details: &str) -> String {
    let reason = details
        .find(" (attempt ")
        .map_or(details, |at| &details[..at])
        .trim()
        .trim_end_matches('.');
    match reason {
        "" => "-".to_owned(),
        reason => reason.to_owned(),
    }
}
