//! nginx as the fast receiver of the throughput benchmarks (benches/delivery.rs and
//! benches/http-clients): Debian's nginx-light, one worker, `return 200`, no access log,
//! on a free loopback port.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx answering 200 to everything, stopped when dropped.
pub struct Nginx {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start() -> Nginx {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        std::fs::create_dir(dir.path().join("logs")).expect("nginx's log directory");
        let conf = dir.path().join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "worker_processes 1;\npid {pid};\nerror_log stderr error;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{ access_log off; keepalive_requests 1000000; client_body_temp_path {tmp};\n\
                 server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\\n\"; }} }} }}\n",
                pid = dir.path().join("nginx.pid").display(),
                tmp = dir.path().display(),
            ),
        )
        .expect("nginx's configuration");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            // Its worker must not hold the caller's output open.
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx on PATH (Debian: apt-get install nginx-light)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, so that the master stops its worker too (SIGKILL would orphan it).
        // SAFETY: kill sends a signal to our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}
