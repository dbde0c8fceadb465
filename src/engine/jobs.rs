//! Turning claimed callbacks into requests: each one's body (rendered once, then
//! stored), its hook's request template (built once per hook version per run), and
//! the batches of hooks that send several callbacks per request (`--batch-size`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::scheduler::{route_of, Job};
use crate::delivery::{
    render_failure, request_template, size_failure, EnvProblem, Member, RequestTemplate,
};
use crate::payload::{render_body, size, ContentType, EventContext, PayloadError, Renderer};
use crate::storage::callbacks::{lease_for, Outcome};
use crate::storage::models::Callback;

/// The body a callback sends: stored after its first rendering, rendered now otherwise.
/// Returns (body, whether it was rendered now).
pub fn body_of(
    renderer: &mut Renderer,
    callback: &Callback,
) -> std::result::Result<(String, bool), PayloadError> {
    if let Some(payload) = &callback.payload {
        return Ok((payload.clone(), false));
    }
    if callback.uncaptured() {
        return Err(PayloadError::StoredData(
            "nothing was captured of this change (its first status said why), so there is nothing to send"
                .to_owned(),
        ));
    }
    let content_type = ContentType::parse(&callback.content_type).ok_or_else(|| {
        PayloadError::Document(format!(
            "unsupported content type {}",
            callback.content_type
        ))
    })?;
    let context = EventContext::from_stored(
        &callback.event_data,
        &callback.event_type,
        callback.table_name.as_deref(),
        &callback.hook_name,
        callback.id,
        callback.object_id.as_deref(),
        callback.created_at,
    )?;
    render_body(
        renderer,
        callback.payload_template.as_deref(),
        content_type,
        &context,
    )
    .map(|body| (body, true))
}

/// What becomes of a claimed callback before any request.
#[allow(clippy::large_enum_variant)] // one per callback, moved once
pub enum Preparation {
    /// To be sent, alone or in a batch (see [`into_jobs`]).
    Send(Member),
    /// Decided without sending (the body cannot be rendered).
    Done(Outcome),
    /// Not sent: the environment lacks what the hook needs (the callback, and what).
    Held(i64, EnvProblem),
}

/// Request templates by the hook version whose delivery settings they hold and the
/// content type of the callbacks they send (a callback keeps the one it was made with).
pub type Templates = HashMap<(i64, String), Result<RequestTemplate, EnvProblem>>;

fn template_key(callback: &Callback) -> (i64, String) {
    (callback.settings_version_id, callback.content_type.clone())
}

/// What stops a callback from being sent because of its size: its change's data or its
/// body is larger than its hook allows, or (MySQL) than a row of the queue can be read
/// back in with its change's data (`max_callback_bytes`). None when it fits.
pub fn size_problem(
    callback: &Callback,
    body: Option<&str>,
    max_callback_bytes: Option<i64>,
) -> Option<String> {
    let limit = callback.settings.max_payload_size;
    let data = callback.event_data.len() as i64;
    let too_large = |what: &str, bytes: i64| {
        format!(
            "{what} is {}, more than the hook's --max-payload-size of {}; raise it with \
             `httphooks hooks edit {} --max-payload-size SIZE` to send it",
            size::format_exact(bytes),
            size::format_exact(limit),
            callback.hook_name
        )
    };
    if data > limit {
        return Some(too_large("the change's data", data));
    }
    let body = body?.len() as i64;
    // A batch hook's callback goes in a JSON array even when alone: its brackets count.
    let (what, sent) = if batched(callback) {
        ("the body in its batch's brackets", body + 2)
    } else {
        ("the body", body)
    };
    if sent > limit {
        return Some(too_large(what, sent));
    }
    match max_callback_bytes {
        Some(most) if body + data > most => Some(format!(
            "the body ({}) and the change's data ({}) together are more than a row of the \
             queue may hold with this server's max_allowed_packet of {}; raise \
             max_allowed_packet on the server to send it",
            size::format_exact(body),
            size::format_exact(data),
            size::format_exact(most)
        )),
        _ => None,
    }
}

pub fn prepare(
    renderer: &mut Renderer,
    templates: &mut Templates,
    mut callback: Callback,
    max_callback_bytes: Option<i64>,
) -> Preparation {
    // Checked before the change's data is parsed: a row larger than its hook allows
    // costs no more than reading it.
    if callback.payload.is_none() {
        if let Some(problem) = size_problem(&callback, None, None) {
            return Preparation::Done(size_failure(&callback, &problem));
        }
    }
    let (body, rendered_now) = match body_of(renderer, &callback) {
        Ok(rendered) => rendered,
        Err(problem) => return Preparation::Done(render_failure(&callback, &problem)),
    };
    if rendered_now {
        if let Some(problem) = size_problem(&callback, Some(&body), max_callback_bytes) {
            return Preparation::Done(size_failure(&callback, &problem));
        }
    }
    // The body is all that is sent from here on: the change's data, as large as the
    // body or larger, is not kept while the callback waits for its turn.
    callback.event_data = String::new();
    let template = templates
        .entry(template_key(&callback))
        .or_insert_with(|| request_template(&callback.settings, &callback.content_type));
    match template {
        Ok(_) => Preparation::Send(Member {
            callback,
            body: body.into(),
            rendered_now,
        }),
        Err(problem) => Preparation::Held(callback.id, problem.clone()),
    }
}

/// Whether a callback goes out in a batch: its hook sends batches (`--batch-size`
/// above 1) and its body is JSON (one made under an earlier content type goes alone).
pub fn batched(callback: &Callback) -> bool {
    callback.settings.batch_size > 1
        && ContentType::parse(&callback.content_type) == Some(ContentType::Json)
}

/// The requests that send `members` (in claim order, their templates in `templates`):
/// one per callback, or per batch of up to `--batch-size` callbacks of the same hook
/// version, taken in claim order and sent in the order they were made (an ordered
/// hook's claim holds one callback per row, so a batch never reorders a row's changes).
/// A batch also closes before its body would pass the hook's `--max-payload-size`, so
/// that one large row cannot make a request the receiver refuses for all of them (a
/// member alone fits with its brackets: `size_problem`).
pub fn into_jobs(members: Vec<Member>, templates: &Templates, claimed_at: Instant) -> Vec<Job> {
    struct Group {
        members: Vec<Member>,
        /// The batch's body length so far (its brackets and commas too).
        bytes: usize,
        /// Nothing more may join: it holds `--batch-size` callbacks, or the next one
        /// would not fit in `--max-payload-size`.
        full: bool,
    }
    let mut groups: Vec<Group> = Vec::new();
    // The batch still filling, per hook version (an index into `groups`).
    let mut filling: HashMap<i64, usize> = HashMap::new();
    for member in members {
        if !batched(&member.callback) {
            groups.push(Group {
                members: vec![member],
                bytes: 0,
                full: true,
            });
            continue;
        }
        let settings = &member.callback.settings;
        let most = settings.batch_size as usize;
        let most_bytes = usize::try_from(settings.max_payload_size).unwrap_or(usize::MAX);
        let version = member.callback.settings_version_id;
        let length = member.body.len();
        if let Some(&index) = filling.get(&version) {
            let group = &mut groups[index];
            if group.bytes + 1 + length > most_bytes {
                group.full = true;
            } else {
                group.bytes += 1 + length;
                group.members.push(member);
                group.full = group.members.len() >= most;
                if group.full {
                    filling.remove(&version);
                }
                continue;
            }
        }
        filling.insert(version, groups.len());
        groups.push(Group {
            members: vec![member],
            bytes: 2 + length,
            full: false,
        });
    }
    groups
        .into_iter()
        .map(|group| {
            let Group {
                mut members, full, ..
            } = group;
            // Claims come in due order; a batch holds its callbacks in the order they
            // were made (an ordered hook's batch holds one per row, so this reorders no
            // row's changes).
            members.sort_by_key(|m| m.callback.id);
            let first = &members[0].callback;
            let template = match &templates[&template_key(first)] {
                Ok(template) => template,
                Err(_) => unreachable!("callbacks held by their environment are not sent"),
            };
            let batch = batched(first);
            let (webhook_id, body) = if batch {
                (batch_webhook_id(&members), batch_body(&members))
            } else {
                (first.webhook_id(), members[0].body.clone())
            };
            let timeout = first.settings.timeout();
            Job {
                route: route_of(&first.settings.target_url),
                size: body.len(),
                timeout,
                prepared: template.prepare(&webhook_id, body),
                lease_until: claimed_at + lease_for(timeout),
                members,
                batch,
                full,
                marked: false,
            }
        })
        .collect()
}

/// A batch's `webhook-id`: its first and last callbacks' (without their `msg_`
/// prefix), and a digest of all of theirs, so that it names the batch, is the same when
/// the same callbacks go together again, and differs when they do not (a receiver that
/// drops a `webhook-id` it has seen must never drop a callback it did not get).
fn batch_webhook_id(members: &[Member]) -> String {
    let ids: Vec<String> = members.iter().map(|m| m.callback.webhook_id()).collect();
    let bare = |id: &str| id.strip_prefix("msg_").unwrap_or(id).to_owned();
    // FNV-1a over the ids: stable across runs and versions, unlike `DefaultHasher`.
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in ids.iter().flat_map(|id| id.bytes().chain([b','])) {
        digest = (digest ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let last = ids.last().expect("a batch has callbacks");
    format!("batch_{}_{}_{digest:016x}", bare(&ids[0]), bare(last))
}

/// A batch's body: the JSON array of its callbacks' payloads, in order.
fn batch_body(members: &[Member]) -> Arc<str> {
    let length = members.iter().map(|m| m.body.len() + 1).sum::<usize>() + 1;
    let mut body = String::with_capacity(length);
    body.push('[');
    for (n, member) in members.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&member.body);
    }
    body.push(']');
    body.into()
}
