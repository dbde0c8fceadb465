//! A real HTTP/1.1 server on 127.0.0.1 (random port) for tests: it records every
//! request and answers as the test says, including slow answers and resets.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: String,
    /// When the request had arrived.
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    WithHeaders(u16, Vec<(String, String)>, String),
    /// Wait, then answer 200.
    Slow(Duration),
    /// Close the connection without answering.
    Reset,
    /// Never answer (until the server is dropped).
    Hang,
}

type Responder = dyn Fn(&Received) -> Reply + Send + Sync;

pub struct Server {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    /// Connections accepted so far.
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(responder: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Server {
        Server::listen(None, false, responder)
    }

    /// Like `start`, but keeps of each request only its method, path and `webhook-id`,
    /// so that counting a large run costs the receiver little.
    pub fn start_lean(responder: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Server {
        Server::listen(None, true, responder)
    }

    /// An HTTPS server with the certificate in tests/fixtures (for 127.0.0.1, signed by
    /// the test CA `tests/fixtures/ca.pem`).
    pub fn start_tls(responder: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Server {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let certs = CertificateDer::pem_file_iter(fixtures.join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(fixtures.join("server.key")).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        Server::listen(Some(Arc::new(config)), false, responder)
    }

    pub fn ca_file() -> String {
        format!("{}/tests/fixtures/ca.pem", env!("CARGO_MANIFEST_DIR"))
    }

    fn listen(
        tls: Option<Arc<rustls::ServerConfig>>,
        lean: bool,
        responder: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let responder: Arc<Responder> = Arc::new(responder);
        {
            let received = Arc::clone(&received);
            let stop = Arc::clone(&stop);
            let accepted = Arc::clone(&accepted);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
                    let received = Arc::clone(&received);
                    let responder = Arc::clone(&responder);
                    let tls = tls.clone();
                    let stop = Arc::clone(&stop);
                    thread::spawn(move || match tls {
                        None => serve(stream, lean, &received, &*responder, &stop),
                        Some(config) => {
                            let Ok(connection) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            serve(
                                rustls::StreamOwned::new(connection, stream),
                                lean,
                                &received,
                                &*responder,
                                &stop,
                            )
                        }
                    });
                }
            });
        }
        Server {
            port,
            received,
            accepted,
            stop,
        }
    }

    /// Answers every request with this status.
    pub fn answering(status: u16) -> Server {
        Server::start(move |_| Reply::Status(status))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// How many connections the server accepted.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    stream: impl Read + Write,
    lean: bool,
    received: &Mutex<Vec<Received>>,
    responder: &Responder,
    stop: &AtomicBool,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Received {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
        };
        let reply = responder(&request);
        let kept = if lean {
            let id = request
                .headers
                .get("webhook-id")
                .cloned()
                .unwrap_or_default();
            Received {
                method: request.method,
                path: request.path,
                headers: HashMap::from([("webhook-id".to_owned(), id)]),
                body: String::new(),
                at: request.at,
            }
        } else {
            request
        };
        received.lock().unwrap().push(kept);
        let (status, extra, body) = match reply {
            Reply::Status(status) => (status, Vec::new(), "ok".to_owned()),
            Reply::WithHeaders(status, extra, body) => (status, extra, body),
            Reply::Slow(delay) => {
                thread::sleep(delay);
                (200, Vec::new(), "late".to_owned())
            }
            // Dropping the stream closes the connection without an answer.
            Reply::Reset => return,
            Reply::Hang => {
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(100));
                }
                return;
            }
        };
        let mut response = format!(
            "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in extra {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&body);
        let writer = reader.get_mut();
        if writer
            .write_all(response.as_bytes())
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
    }
}
