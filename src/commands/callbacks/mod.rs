//! `callbacks list|show|retry|cancel`: what happened, and putting it right.

use std::process::ExitCode;

mod change;
mod grouped;

use serde_json::{json, Value};

use super::output::{clip, optional_timestamp, print_json, print_table, say, timestamp};
use crate::cli::{CallbacksCommand, Format};
use crate::delivery::headers::stored_pairs;
use crate::error::{Error, Result};
use crate::storage::callbacks::{self, ListFilter};
use crate::storage::models::{Attempt, Callback, Status};
use crate::storage::Db;

pub fn run(url: Option<&str>, command: CallbacksCommand) -> Result<ExitCode> {
    let mut db = Db::open_migrated(url)?;
    super::capture::warn(&mut db);
    // Operators see and change every callback made so far, including new ones.
    super::output::admit_all(&mut db)?;
    match command {
        CallbacksCommand::List {
            status,
            hook,
            made,
            limit,
            group_by,
            format,
        } => {
            made.check()?;
            let filter = ListFilter {
                status,
                hook_name: hook,
                made_since: made.since,
                made_until: made.until,
                limit,
            };
            match group_by.is_empty() {
                true => list(&mut db, &filter, format.format),
                false => grouped::print(&mut db, &filter, &group_by, format.format),
            }
        }
        CallbacksCommand::Show { id, format } => show(&mut db, id, format.format),
        CallbacksCommand::Explain { id, format } => {
            return super::explain::run(&mut db, id, format.format)
        }
        CallbacksCommand::Retry {
            ids,
            filter,
            status,
            force,
            with_current_hook,
        } => change::retry(
            &mut db,
            &ids,
            &filter,
            change::Retry {
                status,
                force,
                with_current_hook,
            },
        ),
        CallbacksCommand::Cancel { ids, filter } => change::cancel(&mut db, &ids, &filter),
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Why a waiting callback is not being sent, when its hook holds it.
fn held(c: &Callback) -> Option<String> {
    (c.status == Status::Waiting && c.hook_enabled == Some(false)).then(|| {
        format!(
            "hook {} is disabled; `httphooks hooks enable {}` sends it",
            c.hook_name, c.hook_name
        )
    })
}

fn list(db: &mut Db, filter: &ListFilter, format: Format) -> Result<()> {
    let found = callbacks::list(db, filter)?;
    // A removed hook's callbacks keep its name; a name no hook ever had is a typo.
    if let Some(name) = &filter.hook_name {
        if found.is_empty() && crate::storage::hooks::find(db, name)?.is_none() {
            return Err(Error::invalid(format!(
                "there is no hook named {name:?}, and no callback was made under that name; `httphooks hooks list` shows the hooks"
            )));
        }
    }
    match format {
        Format::Json => print_json(&Value::Array(found.iter().map(callback_json).collect())),
        Format::Table => {
            let rows: Vec<Vec<String>> = found
                .iter()
                .map(|c| {
                    vec![
                        c.id.to_string(),
                        c.hook_name.clone(),
                        c.event_type.clone(),
                        c.object_id.clone().unwrap_or_else(|| "-".into()),
                        // One word, so that columns stay where scripts expect them.
                        match held(c) {
                            Some(_) => "held".to_owned(),
                            None => c.status.to_string(),
                        },
                        c.attempts.to_string(),
                        timestamp(&c.created_at),
                        match held(c) {
                            Some(_) if c.status_details.is_empty() => "hook disabled".to_owned(),
                            Some(_) => clip(&format!("hook disabled; {}", c.status_details), 60),
                            None => clip(&c.status_details, 60),
                        },
                    ]
                })
                .collect();
            print_table(
                &[
                    "ID", "HOOK", "EVENT", "OBJECT", "STATUS", "ATTEMPTS", "CREATED", "DETAILS",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

fn show(db: &mut Db, id: i64, format: Format) -> Result<()> {
    let callback = callbacks::get(db, id)?.ok_or_else(|| {
        Error::invalid(format!(
            "no callback has id {id}; `httphooks callbacks list` shows them"
        ))
    })?;
    let attempts = callbacks::attempts_of(db, id)?;
    let mut document = callback_json(&callback);
    let fields = document.as_object_mut().expect("built as an object");
    let headers: serde_json::Map<String, Value> = stored_pairs(&callback.settings.headers)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    fields.insert("headers".into(), Value::Object(headers));
    fields.insert(
        "attempts_log".into(),
        // `callbacks retry` restarts the count of attempts (a fresh budget); the
        // history's numbers keep counting (docs/behaviour.md §4).
        Value::Array(
            attempts
                .iter()
                .map(|a| attempt_json(a.attempt, a))
                .collect(),
        ),
    );
    match format {
        Format::Json => print_json(&document),
        Format::Table => print_callback(&document),
    }
    Ok(())
}

fn print_callback(document: &Value) {
    let fields = document.as_object().expect("built as an object");
    for (key, value) in fields {
        if key == "attempts_log" || key == "payload" {
            continue;
        }
        if key == "held" {
            continue;
        }
        let shown = match value {
            Value::String(text) => text.clone(),
            Value::Null => "-".to_owned(),
            other => other.to_string(),
        };
        let in_all = fields["attempts_log"].as_array().map_or(0, Vec::len);
        match (key.as_str(), fields["held"].as_str()) {
            ("status", Some(why)) => say!("{key}: {shown} (held: {why})"),
            // `callbacks retry` restarts the count; the history keeps all of them.
            ("attempts", _) if value.as_u64().is_some_and(|n| (n as usize) < in_all) => {
                say!("{key}: {shown} since the last retry ({in_all} in all)")
            }
            _ => say!("{key}: {shown}"),
        }
    }
    say!(
        "payload:\n  {}",
        fields["payload"].as_str().unwrap_or("(not rendered yet)")
    );
    for attempt in fields["attempts_log"].as_array().into_iter().flatten() {
        say!(
            "\nattempt {} at {} ({} ms)",
            attempt["attempt"],
            attempt["started_at"].as_str().unwrap_or(""),
            attempt["elapsed_ms"]
        );
        if let Some(batch) = attempt["batch"].as_str() {
            say!("  in {batch}: one request sent the batch's payloads as a JSON array");
        }
        let request = &attempt["request"];
        let text = |value: &Value| value.as_str().unwrap_or("").to_owned();
        let start = format!("{} {}", text(&request["method"]), text(&request["url"]));
        print_message(">", &start, &request["headers"]);
        if let Some(response) = attempt.get("response") {
            let start = format!("{} {}", response["status_code"], text(&response["reason"]));
            print_message("<", &start, &response["headers"]);
            match (
                response["body"].as_str(),
                response["body_recorded_with_callback"].as_i64(),
            ) {
                (Some(body), _) => say!("  < {}", clip(body, 500)),
                (None, Some(holder)) => say!(
                    "  < (the batch's answer was stored with callback {holder}, which no longer has it)"
                ),
                (None, None) => say!("  < "),
            }
        }
        if let Some(error) = attempt.get("error") {
            say!(
                "  ! {}: {}",
                error["kind"].as_str().unwrap_or(""),
                error["message"].as_str().unwrap_or("")
            );
        }
    }
}

/// A request's or response's first line and headers, each line after `marker`.
fn print_message(marker: &str, start: &str, headers: &Value) {
    say!("  {marker} {start}");
    for pair in headers.as_array().into_iter().flatten() {
        say!(
            "  {marker} {}: {}",
            pair[0].as_str().unwrap_or(""),
            pair[1].as_str().unwrap_or("")
        );
    }
}

/// A callback with docs/behaviour.md §4 field names.
fn callback_json(c: &Callback) -> Value {
    json!({
        "id": c.id,
        "webhook_id": c.webhook_id(),
        "hook_id": c.hook_id,
        "hook_name": c.hook_name,
        "event_type": c.event_type,
        "table_name": c.table_name,
        "object_id": c.object_id,
        "url": c.settings.target_url,
        "http_method": c.settings.http_method,
        "content_type": c.content_type,
        "payload": c.payload,
        "status": c.status,
        "status_details": c.status_details,
        "attempts": c.attempts,
        "next_attempt_at": optional_timestamp(&c.due_at()),
        "created_at": timestamp(&c.created_at),
        "updated_at": timestamp(&c.changed_at()),
        "held": held(c),
        "superseded_by": c.superseded_by,
    })
}

fn attempt_json(number: i32, a: &Attempt) -> Value {
    let parse = |text: &Option<String>| -> Value {
        text.as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or(Value::Null)
    };
    let mut document = json!({
        "attempt": number,
        "started_at": timestamp(&a.started_at),
        "elapsed_ms": a.elapsed_ms,
        "request": {
            "method": a.request_method,
            "url": a.request_url,
            "headers": serde_json::from_str::<Value>(&a.request_headers).unwrap_or(Value::Null),
            "body": a.request_body,
        },
    });
    let fields = document.as_object_mut().expect("built as an object");
    if let Some(code) = a.response_status_code {
        fields.insert(
            "response".into(),
            json!({
                "status_code": code,
                "reason": a.response_reason,
                "headers": parse(&a.response_headers),
                "body": a.response_body,
            }),
        );
        if let Some(holder) = a.response_body_callback_id {
            // A batch's answer is recorded once (docs/behaviour.md, the attempt record).
            fields["response"]["body_recorded_with_callback"] = holder.into();
        }
    }
    if let Some(batch) = &a.batch {
        fields.insert("batch".into(), Value::String(batch.clone()));
    }
    if a.error_kind.is_some() {
        fields.insert(
            "error".into(),
            json!({"kind": a.error_kind, "message": a.error_message}),
        );
    }
    document
}
