//! Delivery: turning a claimed callback into an HTTP request, and its result into an
//! attempt record and the callback's next state.

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::storage::callbacks::Outcome;
use crate::storage::models::{status, Attempt, Callback};

pub mod headers;
pub mod http;
pub mod retry;

use headers::{Header, MissingVariable};
use http::{Client, Failure, Request, Response};
use retry::AfterFailure;

/// Builds the request for a callback: its stored headers (environment resolved), the
/// content type, and the Standard Webhooks `webhook-id`.
pub fn build_request(callback: &Callback, body: &str) -> Result<Request, MissingVariable> {
    let mut headers = headers::resolve(&callback.headers)?;
    let sends_body = callback.http_method != "GET";
    if sends_body {
        headers.push(Header::new("Content-Type", callback.content_type.clone()));
    }
    headers.push(Header::new("webhook-id", callback.webhook_id()));
    Ok(Request {
        method: callback.http_method.clone(),
        url: callback.url.clone(),
        headers,
        body: sends_body.then(|| body.to_owned()),
        timeout: Duration::from_millis(u64::try_from(callback.timeout_ms).unwrap_or(10_000)),
    })
}

/// The headers as records and output show them: secrets replaced, plus those the
/// client adds on the wire.
pub fn shown_headers(request: &Request) -> Vec<(String, String)> {
    let mut shown: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|h| (h.name.clone(), h.shown_value().to_owned()))
        .collect();
    shown.push((
        "User-Agent".to_owned(),
        format!("httphooks/{}", crate::VERSION),
    ));
    if let Some(body) = &request.body {
        shown.push(("Content-Length".to_owned(), body.len().to_string()));
    }
    shown
}

/// Sends one attempt and decides what becomes of the callback.
pub fn deliver(
    client: &Client,
    callback: &Callback,
    request: &Request,
    rendered_payload: Option<String>,
) -> Outcome {
    let started_at = Utc::now();
    let clock = Instant::now();
    let result = client.send(request);
    let elapsed_ms = i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX);
    let attempt_number = callback.attempts + 1;
    let mut attempt = Attempt {
        id: 0,
        callback_id: callback.id,
        attempt: attempt_number,
        started_at: started_at.naive_utc(),
        elapsed_ms,
        request_method: request.method.clone(),
        request_url: request.url.clone(),
        request_headers: serde_json::to_string(&shown_headers(request)).expect("strings serialize"),
        request_body: request.body.clone().unwrap_or_default(),
        response_status_code: None,
        response_reason: None,
        response_headers: None,
        response_body: None,
        error_kind: None,
        error_message: None,
    };
    let (what, retryable, retry_after, success) = match &result {
        Ok(response) => {
            attempt.response_status_code = Some(i32::from(response.status));
            attempt.response_reason = Some(response.reason.clone());
            attempt.response_headers =
                Some(serde_json::to_string(&response.headers).expect("strings serialize"));
            attempt.response_body = Some(response.body.clone());
            describe_response(response)
        }
        Err(Failure { kind, message }) => {
            attempt.error_kind = Some((*kind).to_owned());
            attempt.error_message = Some(message.clone());
            (message.clone(), true, None, false)
        }
    };
    let (status, status_details, next_attempt_at) = if success {
        (status::SENT, what, None)
    } else {
        let (after, line) = retry::after_failure(
            &what,
            retryable,
            attempt_number,
            callback.max_attempts,
            retry_after,
        );
        match after {
            AfterFailure::RetryIn(wait) => {
                let next =
                    Utc::now().naive_utc() + chrono::Duration::from_std(wait).unwrap_or_default();
                (status::WAITING, line, Some(next))
            }
            AfterFailure::GiveUp => (status::ERROR, line, None),
        }
    };
    Outcome {
        callback_id: callback.id,
        rendered_payload,
        status,
        status_details,
        attempted: true,
        next_attempt_at,
        attempt: Some(attempt),
    }
}

/// (status line, retryable, Retry-After, success) for a response.
fn describe_response(response: &Response) -> (String, bool, Option<Duration>, bool) {
    let line = format!("{} {}", response.status, response.reason)
        .trim_end()
        .to_owned();
    if (200..300).contains(&response.status) {
        return (line, false, None, true);
    }
    if (300..400).contains(&response.status) {
        let location = response.header("location").unwrap_or("nowhere");
        return (
            format!("{line}, redirect to {location} not followed"),
            true,
            None,
            false,
        );
    }
    let retry_after = match response.status {
        429 | 503 => response
            .header("retry-after")
            .and_then(|v| retry::parse_retry_after(v, Utc::now())),
        _ => None,
    };
    (
        line,
        retry::status_is_retryable(response.status),
        retry_after,
        false,
    )
}

/// The outcome for a callback whose body cannot be rendered: a permanent error that
/// names the hook and the problem.
pub fn render_failure(callback: &Callback, problem: &str) -> Outcome {
    Outcome {
        callback_id: callback.id,
        rendered_payload: None,
        status: status::ERROR,
        status_details: format!(
            "hook {}: {problem}; fix the template with `httphooks hooks edit`",
            callback.hook_name
        ),
        attempted: false,
        next_attempt_at: None,
        attempt: None,
    }
}
