//! `callbacks list --group-by hook,reason`: how many callbacks each hook has per
//! outcome, so that an operator sees what failed and why before retrying.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::cli::Format;
use crate::commands::output::{clip, outcome_reason, print_json, print_table};
use crate::error::Result;
use crate::storage::callbacks::{self, ListFilter};
use crate::storage::Db;

/// Callbacks read per query.
const PAGE: i64 = 10_000;

/// Counts what `filter` lists (all of it: --limit does not apply) by the columns in
/// `by` ("hook", "reason"), most first.
pub fn print(db: &mut Db, filter: &ListFilter, by: &[String], format: Format) -> Result<()> {
    let by_hook = by.iter().any(|b| b == "hook");
    let by_reason = by.iter().any(|b| b == "reason");
    let mut counts: HashMap<(String, String), i64> = HashMap::new();
    let mut before = None;
    loop {
        let page = callbacks::outcomes_page(db, filter, before, PAGE)?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        before = Some(*last);
        for (_, hook, details) in page {
            let key = (
                if by_hook { hook } else { String::new() },
                if by_reason {
                    outcome_reason(&details)
                } else {
                    String::new()
                },
            );
            *counts.entry(key).or_default() += 1;
        }
    }
    let mut groups: Vec<((String, String), i64)> = counts.into_iter().collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    match format {
        Format::Json => print_json(&Value::Array(
            groups
                .iter()
                .map(|((hook, reason), count)| {
                    let mut group = json!({ "count": count });
                    if by_hook {
                        group["hook"] = json!(hook);
                    }
                    if by_reason {
                        group["reason"] = json!(reason);
                    }
                    group
                })
                .collect(),
        )),
        Format::Table => {
            let mut header = Vec::new();
            by_hook.then(|| header.push("HOOK"));
            by_reason.then(|| header.push("REASON"));
            header.push("CALLBACKS");
            let rows: Vec<Vec<String>> = groups
                .iter()
                .map(|((hook, reason), count)| {
                    let mut row = Vec::new();
                    by_hook.then(|| row.push(hook.clone()));
                    by_reason.then(|| row.push(clip(reason, 100)));
                    row.push(count.to_string());
                    row
                })
                .collect();
            if rows.is_empty() {
                println!("no callback matches");
            } else {
                print_table(&header, &rows);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::commands::output::outcome_reason as reason;

    #[test]
    fn a_reason_leaves_out_the_attempt_numbers() {
        assert_eq!(
            reason("503 Service Unavailable (attempt 8/8, not retried)"),
            "503 Service Unavailable"
        );
        assert_eq!(reason("cancelled by operator"), "cancelled by operator");
        assert_eq!(reason(""), "-");
    }
}
