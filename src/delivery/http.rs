//! The HTTP client: ureq, chosen over reqwest for delivery because its global timeout
//! also bounds a slowly trickled body, it caps body reads, it builds in a third of the
//! time and it is faster here (see NOTES-crates.md). One agent per run (and one more
//! per extra CA file that hooks name) keeps connections alive across callbacks, on
//! httphooks' own TCP transport (socket.rs).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{Connector, NextTimeout, RustlsConnector};
use ureq::Agent;

use super::headers::Header;
use super::socket::SocketConnector;
use super::target::Policy;

/// Response bodies are kept up to this size; the rest is not read.
pub const MAX_RESPONSE_BODY: u64 = 64 * 1024;

/// A request as it goes on the wire.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<Header>,
    /// None for GET. Shared: the attempt record and the stored payload refer to the
    /// same bytes, which may be megabytes.
    pub body: Option<std::sync::Arc<str>>,
    pub timeout: Duration,
    /// An extra CA certificate file (PEM) to trust, besides the usual roots.
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request that got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

/// Why a request got no response. The stored form (attempt records' `error_kind`) is
/// [`FailureKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Timeout,
    Dns,
    Connect,
    ConnectionRefused,
    ConnectionReset,
    ConnectionClosed,
    /// The target policy refused the address: no retry can change that.
    Blocked,
    Tls,
    Protocol,
    Io,
    /// The OAuth2 token endpoint failed.
    Token,
    Http,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Dns => "dns",
            FailureKind::Connect => "connect",
            FailureKind::ConnectionRefused => "connection_refused",
            FailureKind::ConnectionReset => "connection_reset",
            FailureKind::ConnectionClosed => "connection_closed",
            FailureKind::Blocked => "blocked",
            FailureKind::Tls => "tls",
            FailureKind::Protocol => "protocol",
            FailureKind::Io => "io",
            FailureKind::Token => "token",
            FailureKind::Http => "http",
        }
    }
}

pub struct Client {
    agent: Agent,
    connections: usize,
    policy: Policy,
    /// An agent per extra CA file, made at its first request with the file read once.
    /// Its TLS settings are the agent's, so its connections are kept alive like the
    /// others (ureq keeps a request with TLS settings of its own out of the pool: a new
    /// connection and handshake for every request).
    agents_by_ca_file: Mutex<HashMap<String, Result<Agent, String>>>,
}

/// Resolves names on the calling thread (ureq's default resolver starts a thread per
/// request whenever a timeout is set, which costs most of the throughput at high
/// concurrency; the connect and global timeouts still bound the whole request), then
/// applies the target policy to the addresses: ureq calls it for IP literals too, so
/// every connection goes through this check.
#[derive(Debug)]
struct CheckingResolver {
    policy: Policy,
}

impl Resolver for CheckingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let inline = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::NotHappening,
            ..timeout
        };
        let resolved = DefaultResolver::default().resolve(uri, config, inline)?;
        let mut allowed = self.empty();
        let mut refusal = None;
        for address in resolved.iter() {
            match self.policy.refusal(address.ip()) {
                None => allowed.push(*address),
                Some(reason) => refusal = Some(reason),
            }
        }
        match refusal {
            // Any refused address refuses the name: a name that also resolves to a
            // forbidden address is not trusted with the others.
            Some(reason) => Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                reason,
            ))),
            None => Ok(allowed),
        }
    }
}

impl Client {
    /// `connections` is how many requests may be in flight at once.
    pub fn new(connections: usize, policy: Policy) -> Client {
        Client {
            agent: agent(connections, policy.clone(), None),
            connections,
            policy,
            agents_by_ca_file: Mutex::new(HashMap::new()),
        }
    }

    /// The agent for hooks trusting the usual roots plus the certificates of `path`.
    fn agent_with_ca_file(&self, path: &str) -> Result<Agent, Failure> {
        let mut agents = self.agents_by_ca_file.lock().expect("agents by CA file");
        let entry = agents.entry(path.to_owned()).or_insert_with(|| {
            let tls = tls_with_ca_file(path)?;
            Ok(agent(self.connections, self.policy.clone(), Some(tls)))
        });
        entry.clone().map_err(|message| Failure {
            kind: FailureKind::Tls,
            message,
        })
    }

    pub fn send(&self, request: &Request) -> Result<Response, Failure> {
        let url = request.url.as_str();
        let with_ca_file;
        let agent = match &request.ca_file {
            Some(path) => {
                with_ca_file = self.agent_with_ca_file(path)?;
                &with_ca_file
            }
            None => &self.agent,
        };
        let builder = match request.method.as_str() {
            "GET" => agent.get(url).force_send_body(),
            "DELETE" => agent.delete(url).force_send_body(),
            "PUT" => agent.put(url),
            "PATCH" => agent.patch(url),
            _ => agent.post(url),
        };
        let mut builder = builder
            .config()
            .timeout_global(Some(request.timeout))
            .timeout_connect(Some(request.timeout.min(Duration::from_secs(10))))
            .build();
        for header in &request.headers {
            builder = builder.header(header.name.as_str(), header.value.as_str());
        }
        let result = match &request.body {
            Some(body) => builder.send(body.as_bytes()),
            None => builder.send_empty(),
        };
        let mut response = result.map_err(|error| failure(error, request.timeout))?;
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        let read = response
            .body_mut()
            .as_reader()
            .take(MAX_RESPONSE_BODY)
            .read_to_end(&mut body);
        let mut body = recordable_text(&body);
        if let Err(error) = read {
            // The status arrived; a body cut short is noted, not a failed delivery.
            body.push_str(&format!("[body not read: {error}]"));
        }
        Ok(Response {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_owned(),
            headers,
            body,
        })
    }
}

/// A response body as text the attempt record can hold on every backend: bytes that
/// are not UTF-8 and NUL (which PostgreSQL's text refuses, so one binary answer made
/// every record of its run fail, and the run send its callbacks again) become U+FFFD,
/// and the text is cut back to [`MAX_RESPONSE_BODY`] bytes (U+FFFD takes three bytes
/// for one, and a batch records the body once per callback).
fn recordable_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut text = if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.into_owned()
    };
    let most = MAX_RESPONSE_BODY as usize;
    if text.len() > most {
        let mut end = most;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// An agent sending through [`SocketConnector`] with `tls` (ureq's roots when None).
fn agent(connections: usize, policy: Policy, tls: Option<TlsConfig>) -> Agent {
    let mut config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(format!("httphooks/{}", crate::VERSION))
        .max_idle_connections(connections.max(1) * 4)
        .max_idle_connections_per_host(connections.max(1))
        .timeout_connect(Some(Duration::from_secs(10)));
    if let Some(tls) = tls {
        config = config.tls_config(tls);
    }
    // ureq's chain without its proxies (none are configured), on a socket that makes
    // fewer system calls (see socket.rs).
    Agent::with_parts(
        config.build(),
        ().chain(SocketConnector).chain(RustlsConnector::default()),
        CheckingResolver { policy },
    )
}

/// The usual roots plus the certificates of `path`.
fn tls_with_ca_file(path: &str) -> Result<TlsConfig, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read CA file {path}: {e}"))?;
    let extra: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert.to_owned()),
            _ => None,
        })
        .collect();
    if extra.is_empty() {
        return Err(format!("CA file {path} holds no PEM certificate"));
    }
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .chain(extra);
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::from(roots))
        .build())
}

/// A failed exchange in words; `timeout` is the hook's (its connect part is at most
/// 10 s).
fn failure(error: ureq::Error, timeout: Duration) -> Failure {
    use std::io::ErrorKind;
    use FailureKind as K;
    let within = |limit: Duration| humantime::format_duration(limit).to_string();
    let (kind, message) = match &error {
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => (
            K::Timeout,
            format!(
                "could not connect within {}",
                within(timeout.min(Duration::from_secs(10)))
            ),
        ),
        ureq::Error::Timeout(_) => (
            K::Timeout,
            format!("no answer within the hook's timeout of {}", within(timeout)),
        ),
        ureq::Error::HostNotFound => (K::Dns, "host not found".to_owned()),
        ureq::Error::ConnectionFailed => (K::Connect, "connection failed".to_owned()),
        ureq::Error::Io(io) if io.kind() == ErrorKind::PermissionDenied => {
            (K::Blocked, format!("target refused: {io}"))
        }
        ureq::Error::Io(io) if caused_by_tls(io) => (K::Tls, format!("TLS failed: {io}")),
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused => (K::ConnectionRefused, "connection refused".to_owned()),
            ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => (
                K::ConnectionReset,
                "connection reset by the target".to_owned(),
            ),
            ErrorKind::TimedOut | ErrorKind::WouldBlock => (K::Timeout, "timed out".to_owned()),
            ErrorKind::UnexpectedEof => (
                K::ConnectionClosed,
                "the target closed the connection".to_owned(),
            ),
            _ => (K::Io, io.to_string()),
        },
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => (K::Tls, format!("TLS failed: {error}")),
        ureq::Error::Protocol(_) => (K::Protocol, format!("bad HTTP response: {error}")),
        _ => (K::Http, error.to_string()),
    };
    Failure {
        kind,
        message: crate::error::one_line(&message),
    }
}

/// Whether an I/O error comes from the TLS layer (rustls reports through io::Error).
fn caused_by_tls(error: &std::io::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = error.get_ref().map(|e| e as _);
    while let Some(inner) = cause {
        if inner.is::<rustls::Error>() {
            return true;
        }
        cause = inner.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_bodies_hold_no_nul_and_stay_within_the_limit() {
        assert_eq!(recordable_text(b"a\0b\xffc"), "a\u{FFFD}b\u{FFFD}c");
        assert_eq!(recordable_text("plain ✓".as_bytes()), "plain ✓");
        let binary = recordable_text(&[0u8; MAX_RESPONSE_BODY as usize]);
        assert!(
            binary.len() <= MAX_RESPONSE_BODY as usize,
            "{}",
            binary.len()
        );
        assert!(binary.len() > MAX_RESPONSE_BODY as usize - 3);
        assert!(binary.chars().all(|c| c == '\u{FFFD}'));
    }
}
