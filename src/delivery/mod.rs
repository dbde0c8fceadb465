//! Delivery: turning a callback into HTTP requests (headers, authentication, signature),
//! and what came back into attempt records and the callback's next state.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::storage::callbacks::Outcome;
use crate::storage::models::{Attempt, Callback, HookSettings, Status};

pub mod auth;
pub mod headers;
pub mod http;
pub mod retry;
pub mod signing;
mod socket;
pub mod target;

use auth::{Auth, Credentials, OAuth2Client, TokenCache, TokenSource};
use headers::{Header, MissingVariable};
use http::{Client, Failure, FailureKind, Request, Response};
use retry::{AfterFailure, Classified, Next};

/// A callback that cannot be sent as the environment stands: a variable its hook
/// names is missing or malformed. Its callbacks wait; the run exits 3.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnvProblem {
    /// The variables to set (or fix), every one the hook lacks.
    pub variables: Vec<String>,
    pub problem: String,
}

impl EnvProblem {
    pub fn missing(variable: &str) -> EnvProblem {
        EnvProblem {
            variables: vec![variable.to_owned()],
            problem: format!("environment variable {variable} is not set"),
        }
    }

    /// Every variable of `names` that is not set, named in one problem; None when all
    /// are set.
    fn all_missing(names: &[String]) -> Option<EnvProblem> {
        let mut missing: Vec<String> = Vec::new();
        for name in names {
            if std::env::var_os(name).is_none() && !missing.contains(name) {
                missing.push(name.clone());
            }
        }
        match missing.as_slice() {
            [] => None,
            [one] => Some(EnvProblem::missing(one)),
            [first @ .., last] => Some(EnvProblem {
                problem: format!(
                    "environment variables {} and {last} are not set",
                    first.join(", ")
                ),
                variables: missing.clone(),
            }),
        }
    }
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)
    }
}

/// A request ready to go, but for what is added per send: the OAuth2 token and the
/// signature (its timestamp is the sending time).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub request: Request,
    pub webhook_id: String,
    pub oauth: Option<OAuth2Client>,
    pub signing_keys: Option<Vec<Vec<u8>>>,
    /// How it authenticates, for `--dry-run` and `hooks test`.
    pub auth_description: Option<String>,
}

/// What every request of one hook version shares: the stored headers with the
/// environment resolved, content type, fixed credentials, the OAuth2 client and the
/// signing keys. The environment does not change during a run, so a run builds this
/// once per hook version, not once per callback.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    method: String,
    url: String,
    headers: Vec<Header>,
    sends_body: bool,
    timeout: Duration,
    ca_file: Option<String>,
    oauth: Option<OAuth2Client>,
    signing_keys: Option<Vec<Vec<u8>>>,
    auth_description: Option<String>,
}

/// Reads what a hook version needs from the environment; a missing or malformed
/// variable is an [`EnvProblem`]. `content_type` is the callbacks' (their version's).
pub fn request_template(
    target: &HookSettings,
    content_type: &str,
) -> Result<RequestTemplate, EnvProblem> {
    // Every variable the hook lacks is named at once, not one per run.
    if let Some(problem) = EnvProblem::all_missing(&variables_of(target)) {
        return Err(problem);
    }
    let mut headers =
        headers::resolve(&target.headers).map_err(|MissingVariable(v)| EnvProblem::missing(&v))?;
    let sends_body = target.http_method != "GET";
    if sends_body {
        headers.push(Header::new("Content-Type", content_type));
    }
    let auth = Auth::parse(target.auth.as_deref());
    let mut oauth = None;
    match auth.as_ref().map(Auth::resolve).transpose()? {
        Some(Credentials::Header(header)) => headers.push(header),
        Some(Credentials::OAuth2(client)) => oauth = Some(client),
        None => {}
    }
    let signing_keys = match target.signing_secret_env.as_deref() {
        Some(variable) => {
            let value = std::env::var(variable).map_err(|_| EnvProblem::missing(variable))?;
            Some(signing::parse_secrets(&value).map_err(|reason| EnvProblem {
                variables: vec![variable.to_owned()],
                problem: format!("environment variable {variable} does not hold whsec_ signing secrets ({reason})"),
            })?)
        }
        None => None,
    };
    Ok(RequestTemplate {
        method: target.http_method.clone(),
        url: target.target_url.clone(),
        headers,
        sends_body,
        timeout: target.timeout(),
        ca_file: target.ca_file.clone(),
        oauth,
        signing_keys,
        auth_description: auth.map(|a| a.describe()),
    })
}

/// The environment variables a hook's delivery reads: its headers' `${VAR}`, its
/// authentication's and its signing secret's.
fn variables_of(target: &HookSettings) -> Vec<String> {
    let mut names: Vec<String> = headers::stored_pairs(&target.headers)
        .iter()
        .flat_map(|(_, value)| headers::env_references(value).unwrap_or_default())
        .collect();
    if let Some(auth) = Auth::parse(target.auth.as_deref()) {
        names.extend(auth.variables());
    }
    names.extend(target.signing_secret_env.clone());
    names
}

impl RequestTemplate {
    /// The request for one callback: its `webhook-id` and body.
    pub fn prepare(&self, webhook_id: &str, body: Arc<str>) -> Prepared {
        let mut headers = self.headers.clone();
        headers.push(Header::new("webhook-id", webhook_id));
        Prepared {
            request: Request {
                method: self.method.clone(),
                url: self.url.clone(),
                headers,
                body: self.sends_body.then_some(body),
                timeout: self.timeout,
                ca_file: self.ca_file.clone(),
            },
            webhook_id: webhook_id.to_owned(),
            oauth: self.oauth.clone(),
            signing_keys: self.signing_keys.clone(),
            auth_description: self.auth_description.clone(),
        }
    }
}

/// Template and request in one step, for a single request (`--dry-run`, `hooks test`).
pub fn prepare(
    target: &HookSettings,
    content_type: &str,
    webhook_id: &str,
    body: &str,
) -> Result<Prepared, EnvProblem> {
    Ok(request_template(target, content_type)?.prepare(webhook_id, Arc::from(body)))
}

impl Prepared {
    /// The request as `--dry-run` and `hooks test --dry-run` print it: secrets redacted,
    /// with what is added when it is sent.
    pub fn as_text(&self) -> String {
        let mut text = format!("{} {}\n", self.request.method, self.request.url);
        for (name, value) in shown_headers(&self.request) {
            text.push_str(&format!("{name}: {value}\n"));
        }
        if self.oauth.is_some() {
            text.push_str(&format!(
                "Authorization: {} (a token fetched when sending)\n",
                headers::REDACTED
            ));
        }
        if self.signing_keys.is_some() {
            text.push_str("webhook-timestamp: (the sending time)\n");
            text.push_str(&format!(
                "webhook-signature: {} (Standard Webhooks, v1)\n",
                headers::REDACTED
            ));
        }
        if let Some(auth) = &self.auth_description {
            text.push_str(&format!("# authentication: {auth}\n"));
        }
        text.push_str(&format!(
            "\n{}\n",
            self.request.body.as_deref().unwrap_or("")
        ));
        text
    }
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

/// One request on the wire and what came back.
#[derive(Debug)]
pub struct Exchange {
    pub request: Request,
    pub started_at: DateTime<Utc>,
    pub elapsed: Duration,
    pub result: Result<Response, Failure>,
}

/// Sends prepared requests: one HTTP client and one OAuth2 token source per run.
pub struct Deliverer {
    pub client: Client,
    pub tokens: TokenSource,
}

/// What one delivery says about its receiver, for the endpoint's concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pressure {
    /// A 2xx answer, after this long.
    Answered(Duration),
    /// Signs of an overloaded or unreachable receiver: a timeout, a refused or reset
    /// connection, 408, 429, 503 or 504.
    Overloaded,
    /// Anything else (a 4xx, a 500, a TLS problem): says nothing about load.
    Neutral,
}

/// A delivered request: what becomes of each of its callbacks, and what it says about
/// its receiver.
#[derive(Debug)]
pub struct Delivered {
    pub outcomes: Vec<Outcome>,
    pub pressure: Pressure,
}

impl Deliverer {
    /// The HTTP client (`connections` requests at once, the target policy from the
    /// environment) and the OAuth2 token source that keeps tokens in `cache`.
    pub fn new(connections: usize, cache: Box<dyn TokenCache>) -> crate::Result<Deliverer> {
        let policy = target::Policy::from_env().map_err(crate::Error::environment)?;
        Ok(Deliverer {
            client: Client::new(connections, policy),
            tokens: TokenSource::new(cache),
        })
    }

    /// Sends once; with OAuth2, a 401 invalidates the token that was used and the
    /// request goes once more with a new one, if `may_start` allows another request
    /// (the run's deadline and the claim's lease). Returns every exchange, in order.
    pub fn send(&self, prepared: &Prepared, may_start: &dyn Fn() -> bool) -> Vec<Exchange> {
        let (first, token) = self.exchange(prepared);
        let refused = matches!(&first.result, Ok(response) if response.status == 401);
        match (refused, &prepared.oauth, token) {
            (true, Some(oauth), Some(token)) if may_start() => {
                self.tokens.invalidate(oauth, &token);
                let (second, _) = self.exchange(prepared);
                vec![first, second]
            }
            _ => vec![first],
        }
    }

    /// One request. Fetching an OAuth2 token counts against the request's timeout, so
    /// an exchange never takes much longer than the hook's timeout.
    fn exchange(&self, prepared: &Prepared) -> (Exchange, Option<String>) {
        let mut request = prepared.request.clone();
        let started_at = Utc::now();
        let clock = Instant::now();
        let mut issued = None;
        if let Some(oauth) = &prepared.oauth {
            let token = self
                .tokens
                .token(&self.client, oauth, request.timeout)
                .and_then(|token| match request.timeout.checked_sub(clock.elapsed()) {
                    Some(left) if left >= MIN_REQUEST_TIME => Ok((token, left)),
                    _ => Err(format!(
                        "getting a token from {} took the whole timeout",
                        oauth.token_url
                    )),
                });
            match token {
                Ok((token, left)) => {
                    request
                        .headers
                        .push(Header::secret("Authorization", format!("Bearer {token}")));
                    request.timeout = left;
                    issued = Some(token);
                }
                Err(message) => {
                    let failure = Failure {
                        kind: FailureKind::Token,
                        message,
                    };
                    return (
                        Exchange {
                            request,
                            started_at,
                            elapsed: clock.elapsed(),
                            result: Err(failure),
                        },
                        None,
                    );
                }
            }
        }
        if let Some(keys) = &prepared.signing_keys {
            let timestamp = Utc::now().timestamp();
            let body = request.body.as_deref().unwrap_or("").as_bytes();
            let signature = signing::signature(keys, &prepared.webhook_id, timestamp, body);
            request
                .headers
                .push(Header::new("webhook-timestamp", timestamp.to_string()));
            request
                .headers
                .push(Header::secret("webhook-signature", signature));
        }
        let result = self.client.send(&request);
        (
            Exchange {
                request,
                started_at,
                elapsed: clock.elapsed(),
                result,
            },
            issued,
        )
    }

    /// Sends one request carrying `members` (one callback, or a batch of them: one
    /// request, `batch` true) and decides what becomes of each: every callback gets the
    /// request's attempt, and a failure retries or fails them all. `may_start` says
    /// whether a second request (after a 401 with OAuth2) may still begin.
    pub fn deliver(
        &self,
        members: &[Member],
        prepared: &Prepared,
        batch: bool,
        may_start: &dyn Fn() -> bool,
    ) -> Delivered {
        let exchanges = self.send(prepared, may_start);
        let last = exchanges.last().expect("at least one exchange");
        let Classified {
            what,
            next,
            pressure,
        } = retry::classify(&last.result, last.elapsed);
        let (retryable, retry_after) = match next {
            Next::Success => (false, None),
            Next::Retry(asked) => (true, asked),
            Next::Final => (false, None),
        };
        // One draw and one clock for the whole request: a batch that fails is retried
        // together.
        let jitter = retry::jitter();
        let now = Utc::now().naive_utc();
        let records: Vec<AttemptRecord> = exchanges.iter().map(AttemptRecord::of).collect();
        let outcomes = members
            .iter()
            .enumerate()
            .map(|(place, member)| {
                let callback = &member.callback;
                let batch = batch.then(|| {
                    format!(
                        "{} (callback {} of {})",
                        prepared.webhook_id,
                        place + 1,
                        members.len()
                    )
                });
                // A batch's answer is kept once, with its first callback (recorded
                // first: outcomes are written in id order): a batch of 1,000 answered
                // with 64 KiB held and stored 64 MB otherwise.
                let answer_with = members
                    .first()
                    .map(|first| first.callback.id)
                    .filter(|&first| first != callback.id);
                let attempts: Vec<Attempt> = records
                    .iter()
                    .enumerate()
                    .map(|(n, record)| {
                        record.attempt(
                            callback.id,
                            callback.next_attempt_number() + n as i32,
                            &member.body,
                            batch.clone(),
                            answer_with,
                        )
                    })
                    .collect();
                let attempt_number = callback.attempts + attempts.len() as i32;
                let (status, status_details, next_attempt_at) = if next == Next::Success {
                    (Status::Sent, what.clone(), None)
                } else {
                    let (after, line) = retry::after_failure(
                        &what,
                        retryable,
                        attempt_number,
                        callback.settings.max_attempts,
                        retry_after,
                        jitter,
                    );
                    match after {
                        AfterFailure::RetryIn(wait) => {
                            let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
                            (Status::Waiting, line, Some(next))
                        }
                        AfterFailure::GiveUp => (Status::Error, line, None),
                    }
                };
                Outcome {
                    callback_id: callback.id,
                    hook_id: callback.hook_id,
                    rendered_payload: member.rendered_now.then(|| member.body.clone()),
                    status,
                    status_details,
                    next_attempt_at,
                    attempts,
                    shared_request: place > 0,
                }
            })
            .collect();
        Delivered { outcomes, pressure }
    }
}

/// One callback of a request, with the body it contributes (the whole body, unless it
/// goes in a batch).
#[derive(Debug)]
pub struct Member {
    pub callback: Callback,
    pub body: Arc<str>,
    /// Rendered by this run: stored with the outcome, so that retries send these bytes.
    pub rendered_now: bool,
}

/// What the attempt records of one exchange share, whatever callback they are of.
struct AttemptRecord<'a> {
    exchange: &'a Exchange,
    request_headers: String,
    response_headers: Option<String>,
}

impl<'a> AttemptRecord<'a> {
    fn of(exchange: &'a Exchange) -> AttemptRecord<'a> {
        AttemptRecord {
            exchange,
            request_headers: serde_json::to_string(&shown_headers(&exchange.request))
                .expect("strings serialize"),
            response_headers: exchange.result.as_ref().ok().map(|response| {
                serde_json::to_string(&headers::shown_response_headers(&response.headers))
                    .expect("strings serialize")
            }),
        }
    }

    /// The immutable record of the exchange as attempt `number` of `callback_id`,
    /// secrets redacted; its request body is the callback's own (its part of a batch).
    /// With `answer_with`, the response body is left to that callback's attempt.
    fn attempt(
        &self,
        callback_id: i64,
        number: i32,
        body: &str,
        batch: Option<String>,
        answer_with: Option<i64>,
    ) -> Attempt {
        let exchange = self.exchange;
        let request = &exchange.request;
        let mut attempt = Attempt {
            id: 0,
            callback_id,
            attempt: number,
            started_at: exchange.started_at.naive_utc(),
            elapsed_ms: i64::try_from(exchange.elapsed.as_millis()).unwrap_or(i64::MAX),
            request_method: request.method.clone(),
            request_url: request.url.clone(),
            request_headers: self.request_headers.clone(),
            request_body: if request.body.is_some() {
                body.to_owned()
            } else {
                String::new()
            },
            response_status_code: None,
            response_reason: None,
            response_headers: self.response_headers.clone(),
            response_body: None,
            error_kind: None,
            error_message: None,
            batch,
            response_body_callback_id: None,
        };
        match &exchange.result {
            Ok(response) => {
                attempt.response_status_code = Some(i32::from(response.status));
                attempt.response_reason = Some(response.reason.clone());
                match answer_with {
                    Some(other) => attempt.response_body_callback_id = Some(other),
                    None => attempt.response_body = Some(response.body.clone()),
                }
            }
            Err(Failure { kind, message }) => {
                attempt.error_kind = Some(kind.as_str().to_owned());
                attempt.error_message = Some(message.clone());
            }
        }
        attempt
    }
}

/// A request is not started with less time than this left of its timeout.
const MIN_REQUEST_TIME: Duration = Duration::from_millis(50);

/// The outcome for a callback whose body cannot be rendered: a permanent error that
/// names the hook, the problem and its fix.
pub fn render_failure(callback: &Callback, problem: &crate::payload::PayloadError) -> Outcome {
    let fix = match problem {
        crate::payload::PayloadError::StoredData(_) => {
            "the callback's event data was changed outside httphooks, so it cannot be sent"
        }
        _ => "fix the template with `httphooks hooks edit`, then `httphooks callbacks retry` renders it again",
    };
    failure(callback, format!("{problem}; {fix}"))
}

/// The outcome for a callback too large to send (see `engine::jobs::size_problem`):
/// no retry can make it smaller.
pub fn size_failure(callback: &Callback, problem: &str) -> Outcome {
    failure(callback, format!("{problem}; nothing was sent"))
}

/// A permanent failure before any request, named by hook, table and row (a custom
/// event's by hook and event), as admission names those it refuses.
fn failure(callback: &Callback, problem: String) -> Outcome {
    let place = match (&callback.table_name, &callback.object_id) {
        (None, _) => format!(" (event {})", callback.event_type),
        (Some(table), None) => format!(" (table {table})"),
        (Some(table), Some(row)) => format!(" (table {table}, row {row})"),
    };
    Outcome {
        callback_id: callback.id,
        hook_id: callback.hook_id,
        rendered_payload: None,
        status: Status::Error,
        status_details: format!("hook {}{place}: {problem}", callback.hook_name),
        next_attempt_at: None,
        attempts: Vec::new(),
        shared_request: false,
    }
}
