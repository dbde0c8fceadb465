//! Hook authentication (docs/behaviour.md §8). Secrets come from environment variables named in the
//! hook, read when sending; only OAuth2 access tokens are stored (they expire).
//!
//! OAuth2 client credentials: a form POST to the token URL with
//! `grant_type=client_credentials` (plus scope/audience), the client credentials as
//! HTTP Basic. The answer's `access_token` is cached in memory and in
//! `httphooks_oauth_tokens` until shortly before `expires_in` runs out, so concurrent
//! requests and consecutive runs share one token. A 401 from the target invalidates it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::headers::Header;
use super::http::{Client, Request};
use super::EnvProblem;

/// How a hook authenticates, as stored (JSON) with the hook: names of variables only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Auth {
    #[serde(rename = "basic")]
    Basic {
        username_env: String,
        password_env: String,
    },
    #[serde(rename = "bearer")]
    Bearer { token_env: String },
    #[serde(rename = "oauth2-client-credentials")]
    OAuth2(OAuth2Settings),
}

/// OAuth2 client credentials as a hook stores them: the token endpoint, the names of
/// the variables holding the client's id and secret, and what to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuth2Settings {
    pub token_url: String,
    pub client_id_env: String,
    pub client_secret_env: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// Credentials read from the environment, ready to use.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A fixed Authorization header (basic, bearer).
    Header(Header),
    OAuth2(OAuth2Client),
}

#[derive(Debug, Clone)]
pub struct OAuth2Client {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    pub audience: Option<String>,
}

fn read(variable: &str) -> Result<String, EnvProblem> {
    std::env::var(variable).map_err(|_| EnvProblem::missing(variable))
}

impl Auth {
    pub fn parse(stored: Option<&str>) -> Option<Auth> {
        stored.and_then(|text| serde_json::from_str(text).ok())
    }

    /// Its kind as `--auth` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::Basic { .. } => "basic",
            Auth::Bearer { .. } => "bearer",
            Auth::OAuth2(_) => "oauth2-client-credentials",
        }
    }

    /// The environment variables it reads.
    pub fn variables(&self) -> Vec<String> {
        match self {
            Auth::Basic {
                username_env,
                password_env,
            } => vec![username_env.clone(), password_env.clone()],
            Auth::Bearer { token_env } => vec![token_env.clone()],
            Auth::OAuth2(oauth) => {
                vec![oauth.client_id_env.clone(), oauth.client_secret_env.clone()]
            }
        }
    }

    /// One line for `--dry-run` and `hooks show`: how it authenticates, no secrets.
    pub fn describe(&self) -> String {
        match self {
            Auth::Basic {
                username_env,
                password_env,
            } => format!("basic, user ${username_env}, password ${password_env}"),
            Auth::Bearer { token_env } => format!("bearer token from ${token_env}"),
            Auth::OAuth2(oauth) => {
                let mut text = format!(
                    "OAuth2 client credentials from {} (client ${}, secret ${}",
                    oauth.token_url, oauth.client_id_env, oauth.client_secret_env
                );
                if let Some(scope) = &oauth.scope {
                    text.push_str(&format!(", scope {scope}"));
                }
                if let Some(audience) = &oauth.audience {
                    text.push_str(&format!(", audience {audience}"));
                }
                text + ")"
            }
        }
    }

    pub fn resolve(&self) -> Result<Credentials, EnvProblem> {
        Ok(match self {
            Auth::Basic {
                username_env,
                password_env,
            } => {
                let pair = format!("{}:{}", read(username_env)?, read(password_env)?);
                Credentials::Header(Header::secret(
                    "Authorization",
                    format!("Basic {}", STANDARD.encode(pair)),
                ))
            }
            Auth::Bearer { token_env } => Credentials::Header(Header::secret(
                "Authorization",
                format!("Bearer {}", read(token_env)?),
            )),
            Auth::OAuth2(oauth) => Credentials::OAuth2(OAuth2Client {
                token_url: oauth.token_url.clone(),
                client_id: read(&oauth.client_id_env)?,
                client_secret: read(&oauth.client_secret_env)?,
                scope: oauth.scope.clone(),
                audience: oauth.audience.clone(),
            }),
        })
    }
}

impl OAuth2Client {
    /// Tokens are shared by everything that asks the same endpoint for the same client,
    /// scope and audience; the key does not contain the secret.
    fn cache_key(&self) -> String {
        let mut hash = Sha256::new();
        for part in [
            &self.token_url,
            &self.client_id,
            self.scope.as_deref().unwrap_or(""),
            self.audience.as_deref().unwrap_or(""),
        ] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        format!("{:x}", hash.finalize())
    }
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires_at: NaiveDateTime,
}

/// Where tokens are kept between runs (the database's `httphooks_oauth_tokens`, see
/// `engine::tokens`), so consecutive runs share one until shortly before it expires.
/// A cache that fails is only logged: the token endpoint is asked instead.
pub trait TokenCache: Send {
    /// A cached token for `key` still good at `now`, with when it expires.
    fn load(
        &mut self,
        key: &str,
        now: NaiveDateTime,
    ) -> crate::Result<Option<(String, NaiveDateTime)>>;
    fn save(&mut self, key: &str, token: &str, expires_at: NaiveDateTime) -> crate::Result<()>;
    /// Forgets a token the target refused, unless another run replaced it already.
    fn forget(&mut self, key: &str, token: &str) -> crate::Result<()>;
}

/// Hands out OAuth2 tokens: from memory, then the cache, then the token endpoint. One
/// fetch per key at a time; concurrent requests wait for it and share the result.
pub struct TokenSource {
    cache: Mutex<Box<dyn TokenCache>>,
    slots: Mutex<HashMap<String, Arc<Mutex<Option<Token>>>>>,
}

impl TokenSource {
    pub fn new(cache: Box<dyn TokenCache>) -> TokenSource {
        TokenSource {
            cache: Mutex::new(cache),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn with_cache<T>(&self, f: impl FnOnce(&mut dyn TokenCache) -> crate::Result<T>) -> Option<T> {
        let mut cache = self.cache.lock().ok()?;
        let result = f(cache.as_mut());
        if let Err(error) = &result {
            log::warn!("the OAuth2 token cache is unavailable: {error}");
        }
        result.ok()
    }

    fn slot(&self, key: &str) -> Arc<Mutex<Option<Token>>> {
        let mut slots = self.slots.lock().expect("token slots");
        Arc::clone(slots.entry(key.to_owned()).or_default())
    }

    /// A token for `oauth`; a fetch waits at most `timeout` for the token endpoint.
    pub fn token(
        &self,
        client: &Client,
        oauth: &OAuth2Client,
        timeout: Duration,
    ) -> Result<String, String> {
        let key = oauth.cache_key();
        let slot = self.slot(&key);
        let mut cached = slot
            .lock()
            .map_err(|_| "the token cache failed".to_owned())?;
        let now = Utc::now().naive_utc();
        if let Some(token) = cached.as_ref().filter(|t| t.expires_at > now) {
            return Ok(token.value.clone());
        }
        if let Some(Some((value, expires_at))) = self.with_cache(|cache| cache.load(&key, now)) {
            *cached = Some(Token {
                value: value.clone(),
                expires_at,
            });
            return Ok(value);
        }
        let token = fetch(client, oauth, timeout.min(TOKEN_TIMEOUT))?;
        self.with_cache(|cache| cache.save(&key, &token.value, token.expires_at));
        *cached = Some(token.clone());
        Ok(token.value)
    }

    /// The target refused `value`: forget it so the next request fetches a new one.
    pub fn invalidate(&self, oauth: &OAuth2Client, value: &str) {
        let key = oauth.cache_key();
        let slot = self.slot(&key);
        if let Ok(mut cached) = slot.lock() {
            if cached.as_ref().is_some_and(|t| t.value == value) {
                *cached = None;
            }
        }
        self.with_cache(|cache| cache.forget(&key, value));
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The longest wait for a token endpoint.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

fn fetch(client: &Client, oauth: &OAuth2Client, timeout: Duration) -> Result<Token, String> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if let Some(scope) = &oauth.scope {
        form.append_pair("scope", scope);
    }
    if let Some(audience) = &oauth.audience {
        form.append_pair("audience", audience);
    }
    let basic = STANDARD.encode(format!("{}:{}", oauth.client_id, oauth.client_secret));
    let request = Request {
        method: "POST".to_owned(),
        url: oauth.token_url.clone(),
        headers: vec![
            Header::secret("Authorization", format!("Basic {basic}")),
            Header::new("Content-Type", "application/x-www-form-urlencoded"),
            Header::new("Accept", "application/json"),
        ],
        body: Some(form.finish().into()),
        timeout,
        ca_file: None,
    };
    let url = &oauth.token_url;
    let response = client.send(&request).map_err(|failure| {
        format!(
            "token endpoint {url} could not be reached: {}",
            failure.message
        )
    })?;
    let snippet: String = response.body.chars().take(200).collect();
    if !(200..300).contains(&response.status) {
        return Err(format!(
            "token endpoint {url} answered {} {}: {}",
            response.status,
            response.reason,
            snippet.trim()
        ));
    }
    let answer: TokenAnswer = serde_json::from_str(&response.body).map_err(|_| {
        format!(
            "token endpoint {url} answered without an access_token: {}",
            snippet.trim()
        )
    })?;
    // Renew a little before the end: a tenth of the lifetime, at most a minute.
    let lifetime = answer.expires_in.unwrap_or(3600);
    let usable = lifetime - (lifetime / 10).min(60);
    let expires_at = Utc::now().naive_utc() + chrono::Duration::seconds(usable as i64);
    Ok(Token {
        value: answer.access_token,
        expires_at,
    })
}
