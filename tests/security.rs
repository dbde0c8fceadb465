//! Authentication, signing, redaction and target safety, end to end on both backends,
//! with a real receiver and a real OAuth2 token endpoint on 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::server::{Reply, Server};
use common::{json, TestDb};
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn orders(db: &TestDb) {
    db.sql(&format!(
        "CREATE TABLE orders ({}, total INTEGER)",
        db.id_column()
    ));
}

/// Every byte httphooks wrote or printed, to look for secrets in.
fn everything_written(db: &TestDb, outputs: &[String]) -> String {
    let mut all = outputs.join("\n");
    let mut client = db.connect();
    let new_columns = format!(
        "{} || coalesce({}, '')",
        db.as_text("row_data"),
        db.as_text("old_row_data")
    );
    for (table, columns) in [
        // A hook's settings are in its versions.
        ("httphooks_hook_versions", "headers || coalesce(auth, '') || coalesce(signing_secret_env, '')"),
        (
            "httphooks_new_callbacks",
            new_columns.as_str(),
        ),
        ("httphooks_callbacks", "coalesce(payload, '') || event_data || status_details"),
        (
            "httphooks_attempts",
            "request_headers || request_body || coalesce(response_body, '') || coalesce(error_message, '')",
        ),
    ] {
        let rows = db.count(&format!("SELECT COUNT(*) AS n FROM {table}"));
        for offset in 0..rows {
            let row = client.text(&format!("SELECT {columns} AS v FROM {table} ORDER BY id LIMIT 1 OFFSET {offset}"));
            all.push_str(&row.unwrap_or_default());
        }
    }
    if db.is_sqlite() {
        for suffix in ["", "-wal"] {
            let path = format!("{}{suffix}", db.url.trim_start_matches("sqlite://"));
            all.push_str(&String::from_utf8_lossy(
                &std::fs::read(path).unwrap_or_default(),
            ));
        }
    }
    all
}

fn run_with(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = db.cmd();
    cmd.args(args);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let output = cmd.output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

on_every_backend!(
    basic_and_bearer_credentials_come_from_the_environment_and_never_show,
    |db| {
        let db = db.migrated();
        orders(&db);
        let server = Server::answering(200);
        db.add_hook(
            "basic",
            "orders",
            "insert",
            &server.url("/basic"),
            &[
                "--auth",
                "basic",
                "--username-env",
                "HH_USER",
                "--password-env",
                "HH_PASSWORD",
            ],
        );
        db.add_hook(
            "bearer",
            "orders",
            "insert",
            &server.url("/bearer"),
            &["--auth", "bearer", "--token-env", "HH_TOKEN"],
        );
        db.sql("INSERT INTO orders (total) VALUES (5)");
        // The most verbose logging, so that logs are scanned for secrets too.
        let env = [
            ("HH_USER", "alice"),
            ("HH_PASSWORD", "pa55-w0rd-secret"),
            ("HH_TOKEN", "bearer-secret-token"),
            ("RUST_LOG", "trace"),
        ];
        let (code, out, err) = run_with(&db, &["send_callbacks"], &env);
        assert_eq!(code, 0, "{out}{err}");
        let got = server.received();
        let header = |path: &str| {
            got.iter()
                .find(|r| r.path == path)
                .unwrap()
                .header("authorization")
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            header("/basic"),
            format!("Basic {}", STANDARD.encode("alice:pa55-w0rd-secret"))
        );
        assert_eq!(header("/bearer"), "Bearer bearer-secret-token");

        let shown = db.ok(&["callbacks", "show", "1", "--format", "json"]);
        assert!(shown.contains("[redacted]"), "{shown}");
        let listed = db.ok(&["hooks", "show", "basic", "--format", "json"]);
        assert_eq!(json(&listed)["auth"]["password_env"], "HH_PASSWORD");
        let (_, dry, _) = run_with(&db, &["hooks", "test", "bearer", "--dry-run"], &env);
        assert!(
            dry.contains("Authorization: [redacted]")
                && dry.contains("bearer token from $HH_TOKEN"),
            "{dry}"
        );
        let all = everything_written(&db, &[out, err, shown, listed, dry]);
        for secret in [
            "pa55-w0rd-secret",
            "bearer-secret-token",
            &STANDARD.encode("alice:pa55-w0rd-secret"),
        ] {
            assert!(!all.contains(secret), "{secret} was written or shown");
        }

        // Without the variables nothing is sent and the run names what is missing.
        db.sql("INSERT INTO orders (total) VALUES (6)");
        let (code, _, err) = run_with(&db, &["send_callbacks"], &[("HH_USER", "alice")]);
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains("HH_PASSWORD") && err.contains("HH_TOKEN"),
            "{err}"
        );
    }
);

/// A token endpoint on loopback: checks the client credentials, hands out tok-1, tok-2…
struct TokenEndpoint {
    server: Server,
    issued: Arc<AtomicUsize>,
}

fn token_endpoint(failing: bool) -> TokenEndpoint {
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&issued);
    let server = Server::start(move |request| {
        let expected = format!("Basic {}", STANDARD.encode("client-1:client-secret-value"));
        if failing {
            return Reply::WithHeaders(500, vec![], "token service down".into());
        }
        if request.header("authorization") != Some(expected.as_str())
            || !request.body.contains("grant_type=client_credentials")
            || !request.body.contains("scope=orders.write")
        {
            return Reply::WithHeaders(401, vec![], "{\"error\": \"invalid_client\"}".into());
        }
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::WithHeaders(200, vec![("Content-Type".into(), "application/json".into())],
            format!("{{\"access_token\": \"tok-{n}\", \"token_type\": \"Bearer\", \"expires_in\": 3600}}"))
    });
    TokenEndpoint { server, issued }
}

const OAUTH_ENV: [(&str, &str); 2] = [
    ("HH_CLIENT_ID", "client-1"),
    ("HH_CLIENT_SECRET", "client-secret-value"),
];

fn add_oauth_hook(db: &TestDb, target: &Server, tokens: &Server) {
    db.add_hook(
        "oauth",
        "orders",
        "insert",
        &target.url("/oauth"),
        &[
            "--auth",
            "oauth2-client-credentials",
            "--token-url",
            &tokens.url("/token"),
            "--client-id-env",
            "HH_CLIENT_ID",
            "--client-secret-env",
            "HH_CLIENT_SECRET",
            "--scope",
            "orders.write",
        ],
    );
}

on_every_backend!(
    oauth2_tokens_are_shared_across_requests_and_runs_and_renewed_after_a_401,
    |db| {
        let db = db.migrated();
        orders(&db);
        let tokens = token_endpoint(false);
        // The target refuses tok-1 once it has seen 5 requests: the token was revoked.
        let seen = Arc::new(AtomicUsize::new(0));
        let seen_by_target = Arc::clone(&seen);
        let target = Server::start(move |request| {
            let n = seen_by_target.fetch_add(1, Ordering::SeqCst);
            if n >= 5 && request.header("authorization") == Some("Bearer tok-1") {
                return Reply::Status(401);
            }
            Reply::Status(200)
        });
        add_oauth_hook(&db, &target, &tokens.server);
        db.sql("INSERT INTO orders (total) VALUES (1), (2), (3)");
        let (code, out, err) = run_with(&db, &["send_callbacks", "--concurrency", "3"], &OAUTH_ENV);
        assert_eq!(code, 0, "{out}{err}");
        db.sql("INSERT INTO orders (total) VALUES (4), (5)");
        let (code, out2, _) = run_with(&db, &["send_callbacks"], &OAUTH_ENV);
        assert_eq!(code, 0);
        assert_eq!(
            tokens.issued.load(Ordering::SeqCst),
            1,
            "one token for concurrent requests and for the next run"
        );
        assert!(target
            .received()
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer tok-1")));

        // tok-1 is refused: invalidated, a new one fetched, the request sent once more.
        db.sql("INSERT INTO orders (total) VALUES (6)");
        let (code, out3, err) = run_with(&db, &["send_callbacks"], &OAUTH_ENV);
        assert_eq!(code, 0, "{out3}{err}");
        assert_eq!(tokens.issued.load(Ordering::SeqCst), 2);
        let last = target.received().last().unwrap().clone();
        assert_eq!(last.header("authorization"), Some("Bearer tok-2"));
        // The newest callback (MySQL may skip ids between admissions).
        let newest = db
            .count("SELECT MAX(id) AS n FROM httphooks_callbacks")
            .to_string();
        let shown = json(&db.ok(&["callbacks", "show", &newest, "--format", "json"]));
        assert_eq!(shown["status"], "sent");
        let log = shown["attempts_log"].as_array().unwrap();
        assert_eq!(log.len(), 2, "both requests are on record");
        assert_eq!(log[0]["response"]["status_code"], 401);
        assert_eq!(log[1]["response"]["status_code"], 200);

        let all = everything_written(&db, &[out, out2, out3, shown.to_string()]);
        assert!(
            !all.contains("client-secret-value"),
            "the client secret was written or shown"
        );
        let cached = db
            .count("SELECT COUNT(*) AS n FROM httphooks_oauth_tokens WHERE access_token = 'tok-2'");
        assert_eq!(cached, 1, "the current token is cached for the next run");
    }
);

on_every_backend!(
    a_failing_token_endpoint_is_recorded_on_the_callbacks_it_blocked,
    |db| {
        let db = db.migrated();
        orders(&db);
        let tokens = token_endpoint(true);
        let target = Server::answering(200);
        add_oauth_hook(&db, &target, &tokens.server);
        db.sql("INSERT INTO orders (total) VALUES (1)");
        let (code, out, err) = run_with(&db, &["send_callbacks"], &OAUTH_ENV);
        assert_eq!(code, 0, "{out}{err}");
        assert!(target.received().is_empty());
        let shown = json(&db.ok(&["callbacks", "show", "1", "--format", "json"]));
        assert_eq!(shown["status"], "waiting", "retryable");
        let details = shown["status_details"].as_str().unwrap();
        assert!(
            details.contains(&tokens.server.url("/token"))
                && details.contains("500")
                && details.contains("token service down"),
            "{details}"
        );
        assert_eq!(shown["attempts_log"][0]["error"]["kind"], "token");
    }
);

on_every_backend!(signatures_follow_standard_webhooks_and_rotate, |db| {
    let db = db.migrated();
    orders(&db);
    let server = Server::answering(200);
    db.add_hook(
        "signed",
        "orders",
        "insert",
        &server.url("/s"),
        &["--signing-secret-env", "HH_SIGNING"],
    );
    db.sql("INSERT INTO orders (total) VALUES (7)");
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let new = format!(
        "whsec_{}",
        STANDARD.encode("a brand new signing key, 32 bytes!")
    );
    let (code, out, err) = run_with(
        &db,
        &["send_callbacks"],
        &[("HH_SIGNING", &format!("{old} {new}"))],
    );
    assert_eq!(code, 0, "{out}{err}");
    let request = &server.received()[0];
    let id = request.header("webhook-id").unwrap();
    let timestamp = request.header("webhook-timestamp").unwrap();
    let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
    assert!((0..30).contains(&age), "the timestamp is the sending time");
    // Verify as a receiver would, with each secret on its own.
    let signatures: Vec<&str> = request
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(
        signatures.len(),
        2,
        "one signature per secret during the rotation"
    );
    for (secret, signature) in [old, new.as_str()].iter().zip(&signatures) {
        let key = STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.{}", request.body).as_bytes());
        assert_eq!(
            *signature,
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        );
    }
    let shown = db.ok(&["callbacks", "show", "1", "--format", "json"]);
    assert!(
        !shown.contains(signatures[0].trim_start_matches("v1,")),
        "signatures are redacted"
    );
    // A malformed secret holds the callbacks and says why.
    db.sql("INSERT INTO orders (total) VALUES (8)");
    let (code, _, err) = run_with(&db, &["send_callbacks"], &[("HH_SIGNING", "not-a-secret")]);
    assert_eq!(code, 3);
    assert!(
        err.contains("HH_SIGNING") && err.contains("whsec_"),
        "{err}"
    );
});

on_every_backend!(targets_are_checked_on_the_resolved_address, |db| {
    let db = db.migrated();
    orders(&db);
    let server = Server::answering(200);
    // Cloud metadata: always refused, before any connection is made.
    db.add_hook(
        "metadata",
        "orders",
        "insert",
        "http://169.254.169.254/latest/meta-data",
        &[],
    );
    db.add_hook("local", "orders", "insert", &server.url("/local"), &[]);
    db.sql("INSERT INTO orders (total) VALUES (1)");
    let (code, _, _) = run_with(
        &db,
        &["send_callbacks"],
        &[("HTTPHOOKS_TARGET_POLICY", "strict")],
    );
    assert_eq!(code, 0);
    let metadata = json(&db.ok(&["callbacks", "show", "1", "--format", "json"]));
    assert_eq!(metadata["status"], "error", "not retried");
    let details = metadata["status_details"].as_str().unwrap();
    assert!(
        details.contains("169.254.169.254") && details.contains("link-local"),
        "{details}"
    );
    assert_eq!(metadata["attempts_log"][0]["error"]["kind"], "blocked");
    let local = json(&db.ok(&["callbacks", "show", "2", "--format", "json"]));
    assert_eq!(local["status"], "error");
    assert!(local["status_details"]
        .as_str()
        .unwrap()
        .contains("not a public address"));
    assert!(
        server.received().is_empty(),
        "nothing reached the private target"
    );

    // An allow-list opens a network under the strict policy; the default policy allows loopback.
    db.sql("INSERT INTO orders (total) VALUES (2)");
    let (code, _, err) = run_with(
        &db,
        &["send_callbacks", "--hook_id", "2"],
        &[
            ("HTTPHOOKS_TARGET_POLICY", "strict"),
            ("HTTPHOOKS_ALLOW_NETWORKS", "127.0.0.0/8"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.received().len(), 1);
    let (code, _, err) = run_with(
        &db,
        &["send_callbacks"],
        &[("HTTPHOOKS_TARGET_POLICY", "paranoid")],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("HTTPHOOKS_TARGET_POLICY"), "{err}");
    // A name is judged by the address it resolves to, at send time.
    let by_name = format!("http://localhost:{}/by-name", server.port);
    db.add_hook("by-name", "orders", "insert", &by_name, &[]);
    db.sql("INSERT INTO orders (total) VALUES (3)");
    let (code, _, _) = run_with(
        &db,
        &["send_callbacks", "--hook_id", "3"],
        &[("HTTPHOOKS_TARGET_POLICY", "strict")],
    );
    assert_eq!(code, 0);
    let named = json(&db.ok(&["callbacks", "list", "--hook", "by-name", "--format", "json"]));
    let details = named[0]["status_details"].as_str().unwrap();
    assert!(
        details.contains("127.0.0.1") || details.contains("::1"),
        "{details}"
    );
    assert_eq!(
        server.received().len(),
        1,
        "only the allowed request got through"
    );
});

on_every_backend!(
    hooks_test_shows_or_sends_one_request_and_writes_no_callback,
    |db| {
        let db = db.migrated();
        orders(&db);
        let hook_target = Server::answering(200);
        let other = Server::start(|_| {
            Reply::WithHeaders(
                202,
                vec![("X-Seen".into(), "yes".into())],
                "accepted".into(),
            )
        });
        db.ok(&["hooks", "add", "try", "--table", "orders", "--events", "insert,update", "--url", &hook_target.url("/try"),
            "--template", "{\"total\": {{ instance.total }}, \"was\": {% if old %}{{ old.total }}{% else %}null{% endif %}}",
            "--signing-secret-env", "HH_SIGNING"]);
        db.ok(&[
            "hooks",
            "add",
            "custom",
            "--events",
            "grade.posted",
            "--url",
            &hook_target.url("/custom"),
            "--template",
            "{\"score\": {{ data.score }}}",
        ]);
        let env = [("HH_SIGNING", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
        let (code, out, err) = run_with(
            &db,
            &[
                "hooks",
                "test",
                "try",
                "--event",
                "update",
                "--data",
                "{\"total\": 42}",
                "--dry-run",
            ],
            &env,
        );
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(&format!("POST {}", hook_target.url("/try"))),
            "{out}"
        );
        assert!(
            out.contains("\"total\": 42") && out.contains("webhook-signature: [redacted]"),
            "{out}"
        );
        let (code, out, err) = run_with(
            &db,
            &["hooks", "test", "try", "--to", &other.url("/elsewhere")],
            &env,
        );
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("< 202") && out.contains("accepted") && out.contains("x-seen: yes"),
            "{out}"
        );
        assert_eq!(other.received().len(), 1);
        assert!(other.received()[0]
            .header("webhook-signature")
            .unwrap()
            .starts_with("v1,"));
        let (code, out, _) = run_with(
            &db,
            &[
                "hooks",
                "test",
                "custom",
                "--data",
                "{\"score\": 9}",
                "--dry-run",
            ],
            &[],
        );
        assert_eq!(code, 0);
        assert!(out.contains("{\"score\": 9}"), "{out}");
        assert!(hook_target.received().is_empty());
        assert_eq!(
            db.count("SELECT COUNT(*) AS n FROM httphooks_callbacks"),
            0,
            "nothing was written"
        );
        let (code, _, err) = run_with(&db, &["hooks", "test", "try", "--event", "delete"], &env);
        assert_eq!(code, 2, "{err}");
    }
);

on_every_backend!(authentication_flags_are_validated, |db| {
    let db = db.migrated();
    orders(&db);
    let base = [
        "hooks",
        "add",
        "bad",
        "--table",
        "orders",
        "--events",
        "insert",
        "--url",
        "http://127.0.0.1:9/",
    ];
    for (extra, expected) in [
        (
            vec!["--auth", "basic", "--username-env", "U"],
            "--password-env",
        ),
        (vec!["--token-env", "T"], "goes with --auth"),
        (
            vec!["--auth", "bearer", "--token-env", "not a name"],
            "environment variable",
        ),
        (
            vec![
                "--auth",
                "oauth2-client-credentials",
                "--token-url",
                "nope",
                "--client-id-env",
                "I",
                "--client-secret-env",
                "S",
            ],
            "--token-url",
        ),
        (vec!["--signing-secret-env", "$X"], "environment variable"),
        (vec!["--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
    ] {
        let mut args = base.to_vec();
        args.extend(extra.iter());
        let (code, _, err) = db.run(&args);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(expected), "{extra:?}: {err}");
    }
    assert_eq!(db.count("SELECT COUNT(*) AS n FROM httphooks_hooks"), 0);
});

on_every_backend!(
    tls_certificates_are_verified_and_a_hook_may_trust_an_extra_ca,
    |db| {
        let db = db.migrated();
        orders(&db);
        let server = Server::start_tls(|_| Reply::Status(200));
        db.add_hook("tls", "orders", "insert", &server.https_url("/tls"), &[]);
        db.sql("INSERT INTO orders (total) VALUES (1)");
        db.ok(&["send_callbacks"]);
        let refused = json(&db.ok(&["callbacks", "show", "1", "--format", "json"]));
        assert_eq!(refused["status"], "waiting");
        assert_eq!(
            refused["attempts_log"][0]["error"]["kind"], "tls",
            "an unknown CA is refused: {refused}"
        );
        assert!(server.received().is_empty());

        db.ok(&["hooks", "edit", "tls", "--ca-file", &Server::ca_file()]);
        db.sql("INSERT INTO orders (total) VALUES (2)");
        db.ok(&["send_callbacks"]);
        assert_eq!(
            json(&db.ok(&["callbacks", "show", "2", "--format", "json"]))["status"],
            "sent"
        );
        assert_eq!(server.received().len(), 1);
        assert_eq!(server.received()[0].path, "/tls");
    }
);

on_every_backend!(
    a_hook_trusting_an_extra_ca_keeps_its_connections_alive,
    |db| {
        // Its TLS settings used to be the request's own, which ureq keeps out of its pool:
        // a new connection and handshake for every callback.
        let db = db.migrated();
        orders(&db);
        let server = Server::start_tls(|_| Reply::Status(200));
        db.add_hook(
            "tls",
            "orders",
            "insert",
            &server.https_url("/tls"),
            &["--ca-file", &Server::ca_file()],
        );
        for total in 0..20 {
            db.sql(&format!("INSERT INTO orders (total) VALUES ({total})"));
        }
        let out = db.ok(&["send_callbacks", "--concurrency", "1"]);
        assert!(out.contains("sent 20"), "{out}");
        assert_eq!(server.received().len(), 20);
        assert_eq!(server.connections(), 1, "one kept-alive connection");
    }
);

/// `hooks test --dry-run` shows the request even where a variable it needs is unset,
/// and says which (exit 0); a real send refuses (exit 3).
#[test]
fn a_dry_run_of_hooks_test_names_unset_variables_and_a_send_refuses() {
    let db = TestDb::sqlite().migrated();
    db.ok(&[
        "hooks",
        "add",
        "v",
        "--events",
        "order.paid",
        "--url",
        "http://127.0.0.1:9/v",
        "--header",
        "X-Key: ${HH_TEST_UNSET_KEY}",
    ]);
    let (code, out, err) = db.run(&["hooks", "test", "v", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("# HH_TEST_UNSET_KEY is unset here"), "{out}");
    assert!(out.contains("X-Key: [redacted]"), "{out}");
    let (code, _, err) = db.run(&["hooks", "test", "v"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("HH_TEST_UNSET_KEY"), "{err}");
}
