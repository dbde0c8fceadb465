//! `callbacks list|show|retry|cancel`: what happened, and putting it right.

use std::process::ExitCode;

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
            limit,
            format,
        } => {
            let filter = ListFilter {
                status,
                hook_name: hook,
                limit,
            };
            list(&mut db, &filter, format.format)
        }
        CallbacksCommand::Show { id, format } => show(&mut db, id, format.format),
        CallbacksCommand::Explain { id, format } => {
            return super::explain::run(&mut db, id, format.format)
        }
        CallbacksCommand::Retry {
            ids,
            force,
            with_current_hook,
        } => {
            require_existing(&mut db, &ids)?;
            refuse_in_flight(&mut db, &ids)?;
            refuse_uncaptured(&mut db, &ids)?;
            refuse_without_hook(&mut db, &ids)?;
            if !force {
                refuse_sent(&mut db, &ids)?;
            }
            if with_current_hook {
                refuse_unrenderable(&mut db, &ids)?;
            }
            let retried = callbacks::retry(&mut db, &ids, with_current_hook)?;
            let rendered = match retried.rerendered {
                0 => String::new(),
                n => format!(
                    "; {n} will be rendered with their hook's current template and content type"
                ),
            };
            println!(
                "{} callback(s) waiting again, due now{rendered}",
                retried.waiting
            );
            Ok(())
        }
        CallbacksCommand::Cancel { ids } => {
            require_existing(&mut db, &ids)?;
            refuse_in_flight(&mut db, &ids)?;
            let changed = callbacks::cancel(
                &mut db,
                callbacks::Which::Ids(&ids),
                "cancelled by operator",
            )?;
            let skipped = ids.len() - changed;
            println!(
                "cancelled {changed} callback(s){}",
                if skipped > 0 {
                    format!("; {skipped} were not waiting and stay as they are")
                } else {
                    String::new()
                }
            );
            Ok(())
        }
    }?;
    Ok(ExitCode::SUCCESS)
}

/// Refuses the whole command when any id does not exist, so nothing half-happens.
fn require_existing(db: &mut Db, ids: &[i64]) -> Result<()> {
    let existing = callbacks::existing_ids(db, ids)?;
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !existing.contains(id))
        .map(i64::to_string)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "no callback has id {}; `httphooks callbacks list` shows them (nothing was changed)",
            missing.join(", ")
        )))
    }
}

/// A callback that was delivered is sent again only when asked for with --force: a
/// retry by mistake would deliver it twice.
/// A callback a run holds right now may be on the wire: putting it back (or cancelling
/// it) would have it sent twice, or sent unrecorded. Refuses the whole command then.
fn refuse_in_flight(db: &mut Db, ids: &[i64]) -> Result<()> {
    let now = crate::storage::now();
    let mut held = Vec::new();
    for id in ids {
        let claimed = callbacks::get(db, *id)?.is_some_and(|c| {
            c.status == Status::Waiting
                && c.claim_token.is_some()
                && c.claimed_until.is_some_and(|until| until > now)
        });
        if claimed {
            held.push(id.to_string());
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "callback {} is being sent by a send_callbacks run right now; try again when that run has recorded it (`httphooks callbacks explain {}` says which run) (nothing was changed)",
        held.join(", "),
        held[0]
    )))
}

/// A callback of a removed hook would wait for ever: no run sends it.
fn refuse_without_hook(db: &mut Db, ids: &[i64]) -> Result<()> {
    for id in ids {
        if let Some(callback) = callbacks::get(db, *id)?.filter(|c| c.hook_enabled.is_none()) {
            return Err(Error::invalid(format!(
                "callback {id} belongs to hook {}, which was removed, so no run would send it; add the hook again and send the change anew (nothing was changed)",
                callback.hook_name
            )));
        }
    }
    Ok(())
}

/// `--with-current-hook` renders with the hook's current template: tried first, so
/// that a template that still does not fit the callback's row refuses the retry and
/// keeps the body stored before.
fn refuse_unrenderable(db: &mut Db, ids: &[i64]) -> Result<()> {
    let mut renderer = crate::payload::Renderer::new();
    for id in ids {
        let Some(callback) = callbacks::get(db, *id)? else {
            continue;
        };
        let Some(hook) = crate::storage::hooks::find_by_id(db, callback.hook_id)? else {
            continue;
        };
        let rendered = Callback {
            payload: None,
            content_type: hook.content.content_type.clone(),
            payload_template: hook.content.payload_template.clone(),
            ..callback
        };
        if let Err(problem) = crate::engine::body_of(&mut renderer, &rendered) {
            return Err(Error::invalid(format!(
                "callback {id} cannot be rendered with hook {}'s current template ({problem}); fix it with `httphooks hooks edit {} --template …` first (nothing was changed)",
                hook.name, hook.name
            )));
        }
    }
    Ok(())
}

/// A callback made for a change that could not be captured has nothing to send.
fn refuse_uncaptured(db: &mut Db, ids: &[i64]) -> Result<()> {
    for id in ids {
        if let Some(callback) = callbacks::get(db, *id)?.filter(Callback::uncaptured) {
            return Err(Error::invalid(format!(
                "callback {id} holds no change to send: {} (nothing was changed)",
                callback.status_details
            )));
        }
    }
    Ok(())
}

fn refuse_sent(db: &mut Db, ids: &[i64]) -> Result<()> {
    let mut sent = Vec::new();
    for id in ids {
        if callbacks::get(db, *id)?.is_some_and(|c| c.status == Status::Sent) {
            sent.push(id.to_string());
        }
    }
    if sent.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "callback {} was already sent; pass --force to send it again (nothing was changed)",
            sent.join(", ")
        )))
    }
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
        let request = &attempt["request"];
        let text = |value: &Value| value.as_str().unwrap_or("").to_owned();
        let start = format!("{} {}", text(&request["method"]), text(&request["url"]));
        print_message(">", &start, &request["headers"]);
        if let Some(response) = attempt.get("response") {
            let start = format!("{} {}", response["status_code"], text(&response["reason"]));
            print_message("<", &start, &response["headers"]);
            say!("  < {}", clip(response["body"].as_str().unwrap_or(""), 500));
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
    }
    if a.error_kind.is_some() {
        fields.insert(
            "error".into(),
            json!({"kind": a.error_kind, "message": a.error_message}),
        );
    }
    document
}
