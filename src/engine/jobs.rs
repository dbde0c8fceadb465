//! Turning a claimed callback into a request: its body (rendered once, then stored)
//! and its hook's request template (built once per hook version per run).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::scheduler::{endpoint_of, Job};
use crate::delivery::{
    render_failure, request_template, DeliverySettings, EnvProblem, RequestTemplate,
};
use crate::payload::{render_body, ContentType, EventContext, PayloadError, Renderer};
use crate::storage::callbacks::Outcome;
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
    Job(Job),
    /// Decided without sending (the body cannot be rendered).
    Done(Outcome),
    /// Not sent: the environment lacks what the hook needs (the callback, and the
    /// problem in words).
    Held(i64, String),
}

/// Request templates by the hook version whose delivery settings they hold.
pub type Templates = HashMap<i64, Result<RequestTemplate, EnvProblem>>;

pub fn prepare(
    renderer: &mut Renderer,
    templates: &mut Templates,
    callback: Callback,
    lease_until: Instant,
) -> Preparation {
    let (body, rendered_now) = match body_of(renderer, &callback) {
        Ok(rendered) => rendered,
        Err(problem) => return Preparation::Done(render_failure(&callback, &problem)),
    };
    let template = templates
        .entry(callback.settings_version_id)
        .or_insert_with(|| request_template(&DeliverySettings::from(&callback)));
    match template
        .as_ref()
        .map(|t| t.prepare(&callback.webhook_id(), &body))
    {
        Ok(prepared) => Preparation::Job(Job {
            endpoint: endpoint_of(&callback.url),
            timeout: Duration::from_millis(u64::try_from(callback.timeout_ms).unwrap_or(10_000)),
            rendered_payload: rendered_now.then_some(body),
            callback,
            prepared,
            lease_until,
            marked: false,
        }),
        Err(problem) => Preparation::Held(callback.id, problem.problem.clone()),
    }
}
