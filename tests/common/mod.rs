//! Shared test support: a database per test on each backend, the binary as a user runs
//! it, and a real HTTP server.
#![allow(dead_code)]

pub mod server;

use std::path::PathBuf;

use assert_cmd::Command;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
#[cfg(feature = "mysql")]
use diesel::MysqlConnection;

/// The variable that names the PostgreSQL database the tests may use.
pub const POSTGRES_URL_VAR: &str = "HTTPHOOKS_TEST_POSTGRES_URL";

/// The variable that names the MySQL/MariaDB server the tests may use (a URL whose
/// user may create databases, e.g. `mysql://root@127.0.0.1:3306/`); each test makes
/// a database of its own there. Read only in builds with `--features mysql`.
pub const MYSQL_URL_VAR: &str = "HTTPHOOKS_TEST_MYSQL_URL";

pub enum Kind {
    Sqlite,
    Postgres {
        base_url: String,
        schema: String,
    },
    /// A whole PostgreSQL database that the test made (and drops) itself.
    PostgresDatabase {
        base_url: String,
        name: String,
    },
    /// A MySQL database of its own (dropped afterwards).
    Mysql {
        server_url: String,
        database: String,
    },
}

/// A fresh database for one test: a SQLite file in a temporary directory, or a
/// PostgreSQL schema of its own (dropped afterwards).
pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub kind: Kind,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("app.sqlite3").display());
        TestDb {
            dir,
            url,
            kind: Kind::Sqlite,
        }
    }

    /// None when PostgreSQL is not configured (build.rs then marks the PostgreSQL tests
    /// ignored, so this is reached only with `--ignored`); under CI=true a missing
    /// PostgreSQL fails the test instead.
    pub fn postgres() -> Option<TestDb> {
        let Ok(base_url) = std::env::var(POSTGRES_URL_VAR) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{POSTGRES_URL_VAR} is not set, and CI=true: the PostgreSQL tests must run in CI");
            }
            eprintln!("SKIPPED: PostgreSQL test, because {POSTGRES_URL_VAR} is not set (see README: Tests)");
            return None;
        };
        let schema = format!("t_{:016x}", rand_u64());
        let mut conn = PgConnection::establish(&base_url).unwrap_or_else(|e| {
            panic!("{POSTGRES_URL_VAR} is set but PostgreSQL cannot be reached: {e}")
        });
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let separator = if base_url.contains('?') { '&' } else { '?' };
        let url = format!("{base_url}{separator}options=-csearch_path%3D{schema}");
        Some(TestDb {
            dir: tempfile::tempdir().unwrap(),
            url,
            kind: Kind::Postgres { base_url, schema },
        })
    }

    /// A PostgreSQL database of the test's own, made with `options` (`ENCODING …`), for
    /// tests that change the whole database (its encoding, whether it takes
    /// connections); dropped afterwards. None as for [`Self::postgres`].
    pub fn postgres_database(prefix: &str, options: &str) -> Option<TestDb> {
        // TestDb::postgres says why it skips, or fails under CI.
        let base_url = std::env::var(POSTGRES_URL_VAR)
            .ok()
            .filter(|_| TestDb::postgres().is_some())?;
        let name = format!("{prefix}_{:016x}", rand_u64());
        PgConnection::establish(&base_url)
            .unwrap()
            .batch_execute(&format!("CREATE DATABASE {name} {options}"))
            .unwrap();
        let mut url = url::Url::parse(&base_url).unwrap();
        url.set_path(&name);
        url.set_query(None);
        Some(TestDb {
            dir: tempfile::tempdir().unwrap(),
            url: url.to_string(),
            kind: Kind::PostgresDatabase { base_url, name },
        })
    }

    /// A database of the test's own (see [`Self::postgres_database`]) stops taking
    /// connections and loses the ones it has, as if its server went down; or, with
    /// `false`, comes back.
    pub fn postgres_down(&self, down: bool) {
        let Kind::PostgresDatabase { base_url, name } = &self.kind else {
            panic!("only a database of the test's own can go down")
        };
        let sql = if down {
            format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
        } else {
            format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        };
        PgConnection::establish(base_url)
            .unwrap()
            .batch_execute(&sql)
            .unwrap();
    }

    /// None when MySQL is not configured (build.rs then marks the MySQL tests ignored);
    /// under CI=true a missing MySQL fails the test instead.
    #[cfg(feature = "mysql")]
    pub fn mysql() -> Option<TestDb> {
        let Ok(base_url) = std::env::var(MYSQL_URL_VAR) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{MYSQL_URL_VAR} is not set, and CI=true: the MySQL tests must run in CI");
            }
            eprintln!(
                "SKIPPED: MySQL test, because {MYSQL_URL_VAR} is not set (see README: Tests)"
            );
            return None;
        };
        let server_url = mysql_url_with_database(&base_url, "");
        let database = format!("t_{:016x}", rand_u64());
        let mut conn = MysqlConnection::establish(&server_url)
            .unwrap_or_else(|e| panic!("{MYSQL_URL_VAR} is set but MySQL cannot be reached: {e}"));
        conn.batch_execute(&format!("CREATE DATABASE {database} CHARACTER SET utf8mb4"))
            .unwrap();
        Some(TestDb {
            dir: tempfile::tempdir().unwrap(),
            url: mysql_url_with_database(&base_url, &database),
            kind: Kind::Mysql {
                server_url,
                database,
            },
        })
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self.kind, Kind::Sqlite)
    }

    /// SQL for `expr` (a timestamp) moved by `minutes`, in this backend's spelling.
    pub fn shifted(&self, expr: &str, minutes: i64) -> String {
        match self.kind {
            Kind::Sqlite => format!("strftime('%Y-%m-%d %H:%M:%f', {expr}, '{minutes} minutes')"),
            Kind::Mysql { .. } => format!("DATE_ADD({expr}, INTERVAL {minutes} MINUTE)"),
            _ => format!("({expr} + INTERVAL '{minutes} minutes')"),
        }
    }

    /// SQL for the current time in UTC, as httphooks' timestamps hold it.
    pub fn now_sql(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite => "strftime('%Y-%m-%d %H:%M:%f', 'now')",
            Kind::Mysql { .. } => "UTC_TIMESTAMP(6)",
            _ => "(now() AT TIME ZONE 'UTC')",
        }
    }

    /// SQL that casts `expr` to text.
    pub fn as_text(&self, expr: &str) -> String {
        match self.kind {
            Kind::Mysql { .. } => format!("CAST({expr} AS CHAR)"),
            _ => format!("CAST({expr} AS TEXT)"),
        }
    }

    pub fn is_mysql(&self) -> bool {
        matches!(self.kind, Kind::Mysql { .. })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(
            self.kind,
            Kind::Postgres { .. } | Kind::PostgresDatabase { .. }
        )
    }

    /// The binary, run in this test's directory against this database.
    pub fn cmd(&self) -> Command {
        let mut cmd = httphooks();
        cmd.current_dir(self.dir.path())
            .env("DATABASE_URL", &self.url)
            .env("STATE_DIRECTORY", self.dir.path())
            .env_remove("RUST_LOG");
        cmd
    }

    /// The binary as a child process, for tests that signal or overlap runs.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        std::process::Command::new(binary())
            .current_dir(self.dir.path())
            .env("DATABASE_URL", &self.url)
            .env("STATE_DIRECTORY", self.dir.path())
            .env_remove("RUST_LOG")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs the binary with these arguments and expects success.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.cmd().args(args).output().unwrap();
        assert!(
            output.status.success(),
            "httphooks {args:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs the binary and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = self.cmd().args(args).output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// `hooks add NAME --table TABLE --events EVENTS --url URL EXTRA…`, expecting success.
    pub fn add_hook(&self, name: &str, table: &str, events: &str, url: &str, extra: &[&str]) {
        let mut args = vec![
            "hooks", "add", name, "--table", table, "--events", events, "--url", url,
        ];
        args.extend(extra);
        self.ok(&args);
    }

    pub fn migrated(self) -> TestDb {
        self.ok(&["migrate"]);
        self
    }

    /// A separate connection, as any other client of the application's database.
    pub fn connect(&self) -> Client {
        match &self.kind {
            Kind::Sqlite => {
                let mut conn =
                    SqliteConnection::establish(self.url.trim_start_matches("sqlite://")).unwrap();
                // As applications do (Django's default): wait for a writer rather than
                // fail at once.
                conn.batch_execute("PRAGMA busy_timeout = 5000").unwrap();
                Client::Sqlite(conn)
            }
            Kind::Postgres { .. } | Kind::PostgresDatabase { .. } => {
                Client::Postgres(PgConnection::establish(&self.url).unwrap())
            }
            #[cfg(feature = "mysql")]
            Kind::Mysql { .. } => {
                let mut conn = MysqlConnection::establish(&self.url).unwrap();
                // As an application in UTC would (the tests compare times with now),
                // speaking standard SQL: "quoted" names and || (the tests' SQL is shared
                // by every backend; httphooks' own SQL needs neither).
                conn.batch_execute(
                    "SET time_zone = '+00:00'; \
                     SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES,PIPES_AS_CONCAT')",
                )
                .unwrap();
                Client::Mysql(conn)
            }
            #[cfg(not(feature = "mysql"))]
            Kind::Mysql { .. } => unreachable!("MySQL tests need --features mysql"),
        }
    }

    /// Moves the callbacks that triggers keep apart (httphooks_new_callbacks)
    /// into httphooks_callbacks, as every operator command does first.
    pub fn admit(&self) {
        self.ok(&["callbacks", "list", "--limit", "1"]);
    }

    /// Runs SQL on a separate connection; SQL on httphooks_callbacks sees every callback
    /// made so far (see [`Self::admit`]).
    pub fn sql(&self, sql: &str) {
        self.admit_for(sql);
        self.connect().sql(sql);
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.admit_for(sql);
        self.connect().count(sql)
    }

    pub fn text(&self, sql: &str) -> Option<String> {
        self.admit_for(sql);
        self.connect().text(sql)
    }

    fn admit_for(&self, sql: &str) {
        if sql.contains("httphooks_callback") {
            self.admit();
        }
    }

    /// A column type for JSON documents on this backend.
    pub fn json_type(&self) -> &'static str {
        if self.is_postgres() {
            "JSONB"
        } else {
            "JSON"
        }
    }

    pub fn id_column(&self) -> &'static str {
        if self.is_postgres() {
            "id SERIAL PRIMARY KEY"
        } else if self.is_mysql() {
            "id INTEGER AUTO_INCREMENT PRIMARY KEY"
        } else {
            "id INTEGER PRIMARY KEY"
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Kind::Postgres { base_url, schema } = &self.kind {
            if let Ok(mut conn) = PgConnection::establish(base_url) {
                // Event triggers fire for every session's DDL in the database: take this
                // schema's away first, let DDL that already picked it up finish, and only
                // then drop its function with the schema (the README says the same).
                let _ = conn.batch_execute(&format!(
                    "DROP EVENT TRIGGER IF EXISTS httphooks_reattach_{schema}"
                ));
                std::thread::sleep(std::time::Duration::from_millis(50));
                let _ = conn.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
        if let Kind::PostgresDatabase { base_url, name } = &self.kind {
            if let Ok(mut conn) = PgConnection::establish(base_url) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
        #[cfg(feature = "mysql")]
        if let Kind::Mysql {
            server_url,
            database,
        } = &self.kind
        {
            if let Ok(mut conn) = MysqlConnection::establish(server_url) {
                let _ = conn.batch_execute(&format!("DROP DATABASE {database}"));
            }
        }
    }
}

pub enum Client {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
    #[cfg(feature = "mysql")]
    Mysql(MysqlConnection),
}

/// `url` (a MySQL server URL, with or without a database) naming `database`.
pub fn mysql_url_with_database(url: &str, database: &str) -> String {
    let (url, query) = url
        .split_once('?')
        .map_or((url, None), |(u, q)| (u, Some(q)));
    let start = url.find("://").map_or(0, |i| i + 3);
    let server = match url[start..].find('/') {
        Some(slash) => &url[..start + slash],
        None => url,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

impl Client {
    /// Runs SQL that may fail, returning the error.
    pub fn try_sql(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Client::Sqlite(c) => c.batch_execute(sql),
            Client::Postgres(c) => c.batch_execute(sql),
            #[cfg(feature = "mysql")]
            Client::Mysql(c) => c.batch_execute(sql),
        }
        .map_err(|e| e.to_string())
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct TextValue {
    #[diesel(sql_type = Nullable<Text>)]
    v: Option<String>,
}

impl Client {
    pub fn sql(&mut self, sql: &str) {
        self.try_sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `sql` must select one integer as `n`.
    pub fn count(&mut self, sql: &str) -> i64 {
        let query = diesel::sql_query(sql);
        let row: Count = match self {
            Client::Sqlite(c) => query.get_result(c),
            Client::Postgres(c) => query.get_result(c),
            #[cfg(feature = "mysql")]
            Client::Mysql(c) => query.get_result(c),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.n
    }

    /// `sql` must select one text as `v`.
    pub fn text(&mut self, sql: &str) -> Option<String> {
        let query = diesel::sql_query(sql);
        let row: TextValue = match self {
            Client::Sqlite(c) => query.get_result(c),
            Client::Postgres(c) => query.get_result(c),
            #[cfg(feature = "mysql")]
            Client::Mysql(c) => query.get_result(c),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.v
    }
}

fn rand_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    hasher.finish()
}

/// Runs a test body once on each backend: SQLite, PostgreSQL, and MySQL in builds
/// with `--features mysql`: `on_every_backend!(name, |db: TestDb| { … });`
#[macro_export]
macro_rules! on_every_backend {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[cfg(feature = "mysql")]
            #[test]
            #[cfg_attr(no_mysql, ignore = "set HTTPHOOKS_TEST_MYSQL_URL to run MySQL tests")]
            fn mysql() {
                let body: fn(TestDb) = $body;
                if let Some(db) = TestDb::mysql() {
                    body(db);
                }
            }
            #[test]
            fn sqlite() {
                let body: fn(TestDb) = $body;
                body(TestDb::sqlite());
            }
            #[test]
            #[cfg_attr(
                no_postgres,
                ignore = "set HTTPHOOKS_TEST_POSTGRES_URL to run PostgreSQL tests"
            )]
            fn postgres() {
                let body: fn(TestDb) = $body;
                if let Some(db) = TestDb::postgres() {
                    body(db);
                }
            }
        }
    };
}

/// The binary under test: this build's, or the copy HTTPHOOKS_TEST_BIN names (where
/// several worktrees share one target directory, whose `debug/httphooks` is whichever
/// was built last).
pub fn binary() -> PathBuf {
    std::env::var_os("HTTPHOOKS_TEST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_httphooks")),
        PathBuf::from,
    )
}

/// The binary as a command, without a database chosen.
pub fn httphooks() -> Command {
    Command::new(binary())
}

/// Parses the JSON a command printed.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}
