//! The README's "Five-minute walkthrough", then its "After an outage" examples, run as
//! written: on SQLite, on PostgreSQL (where the README says to use DATABASE_URL and `psql`
//! for the SQL), and its MySQL walkthrough on MySQL/MariaDB. The commands are read from
//! the README itself, so the walkthroughs cannot drift from what works.

mod common;

use common::server::Server;
use common::{json, TestDb};

const SECTION: &str = "## Five-minute walkthrough (SQLite)";

/// One shell command of the walkthrough: its words and the comment after it.
#[derive(Debug)]
struct Line {
    words: Vec<String>,
    comment: String,
}

/// The ```sh blocks of the README section headed `heading`, up to the next section.
fn sh_blocks(heading: &str) -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut section = &readme[readme
        .find(heading)
        .unwrap_or_else(|| panic!("the README has {heading}"))
        + heading.len()..];
    if let Some(next) = section.find("\n## ") {
        section = &section[..next];
    }
    let mut blocks = Vec::new();
    while let Some(start) = section.find("```sh\n") {
        let start = start + "```sh\n".len();
        let end = start + section[start..].find("\n```").expect("the block ends");
        blocks.push(section[start..end].to_owned());
        section = &section[end..];
    }
    blocks
}

/// The walkthrough for this backend: the first sh block of its section.
fn walkthrough(db: &TestDb) -> String {
    if db.is_mysql() {
        sh_blocks("### On MySQL or MariaDB").remove(0)
    } else {
        sh_blocks(SECTION).remove(0)
    }
}

/// Splits shell text into commands as sh would: quotes ('…', "…" with \ escapes),
/// backslash-newline continuations, comments, and `&&` / `&` / newlines ending commands.
fn commands(script: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = script.chars().peekable();
    let end_word = |words: &mut Vec<String>, word: &mut Option<String>| {
        if let Some(w) = word.take() {
            words.push(w);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            w.push(chars.next().unwrap())
                        }
                        _ => w.push(q),
                    }
                }
            }
            '\\' if chars.peek() == Some(&'\n') => {
                chars.next();
            }
            '#' if word.is_none() => {
                let comment: String = chars.by_ref().take_while(|&c| c != '\n').collect();
                end_word(&mut words, &mut word);
                if !words.is_empty() {
                    lines.push(Line {
                        words: std::mem::take(&mut words),
                        comment: comment.trim().to_owned(),
                    });
                }
            }
            '\n' | '&' | ';' => {
                if c == '&' && chars.peek() == Some(&'&') {
                    chars.next();
                }
                end_word(&mut words, &mut word);
                if !words.is_empty() {
                    lines.push(Line {
                        words: std::mem::take(&mut words),
                        comment: String::new(),
                    });
                }
            }
            c if c.is_whitespace() => end_word(&mut words, &mut word),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut words, &mut word);
    if !words.is_empty() {
        lines.push(Line {
            words,
            comment: String::new(),
        });
    }
    lines
}

fn follow_the_walkthrough(db: TestDb) {
    // Step 2's receiver is this test's server; the README's port may be taken here.
    let server = Server::answering(200);
    let ran = run_as_written(&db, &server, &walkthrough(&db));
    assert!(
        ran.iter().any(|r| r.starts_with("send_callbacks")),
        "{ran:?}"
    );
    let bodies: Vec<serde_json::Value> = server.received().iter().map(|r| json(&r.body)).collect();
    let first_customer = if db.is_mysql() {
        "Ann"
    } else {
        "Ann \"the\" Buyer"
    };
    assert_eq!(
        bodies,
        [
            serde_json::json!({"id": 1, "customer": first_customer, "event": "insert"}),
            serde_json::json!({"id": 2, "customer": "Bob", "event": "insert"}),
        ]
    );
    // "After an outage" goes on from where the walkthrough ends.
    for block in sh_blocks("## After an outage") {
        run_as_written(&db, &server, &block);
    }
    // Admitted or not yet; on SQLite in the README's ./httphooks.sqlite3.
    let sql = "SELECT (SELECT COUNT(*) FROM httphooks_callbacks WHERE event_type = 'backfill') \
               + (SELECT COUNT(*) FROM httphooks_new_callbacks WHERE event_type = 'backfill') AS n";
    let backfilled = if db.is_sqlite() {
        use diesel::Connection;
        let path = db.path("httphooks.sqlite3");
        let conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        common::Client::Sqlite(conn).count(sql)
    } else {
        db.connect().count(sql)
    };
    assert_eq!(backfilled, 3, "every row, then the one with total > 10");
}

/// Runs a README block's commands as a user would (see the walkthrough's notes);
/// returns what ran.
fn run_as_written(db: &TestDb, server: &Server, script: &str) -> Vec<String> {
    let sqlite_file = db.is_sqlite();
    let mut ran = Vec::new();
    for line in commands(script) {
        let words: Vec<String> = line
            .words
            .iter()
            .map(|w| w.replace("http://127.0.0.1:8000", &server.url("")))
            .collect();
        match words[0].as_str() {
            "httphooks" => {
                let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
                let mut cmd = db.cmd();
                if sqlite_file {
                    // As in the README: no DATABASE_URL, ./httphooks.sqlite3.
                    cmd.env_remove("DATABASE_URL");
                }
                let output = cmd.args(&args).output().unwrap();
                let out = String::from_utf8_lossy(&output.stdout);
                assert!(
                    output.status.success(),
                    "README step `{}` failed:\n{out}{}",
                    words.join(" "),
                    String::from_utf8_lossy(&output.stderr)
                );
                // A comment that starts like the output ("send_callbacks: claimed 2, …")
                // is what the command prints, up to the ellipsis.
                if line.comment.starts_with(&format!("{}:", args[0])) {
                    let expected = line.comment.split('…').next().unwrap().trim_end();
                    assert!(out.contains(expected), "expected {expected:?} in:\n{out}");
                }
                ran.push(args.join(" "));
            }
            "sqlite3" => {
                assert_eq!(words[1], "httphooks.sqlite3");
                // `psql "$DATABASE_URL" -c SQL` on PostgreSQL, as the README says.
                if sqlite_file {
                    use diesel::connection::SimpleConnection;
                    use diesel::Connection;
                    let path = db.path("httphooks.sqlite3");
                    let mut conn =
                        diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
                    conn.batch_execute(&words[2])
                        .unwrap_or_else(|e| panic!("{}: {e}", words[2]));
                } else {
                    db.connect().sql(&words[2]);
                }
                ran.push(words[2].clone());
            }
            // `mysql -h … -u … [DATABASE] -e SQL`: the SQL on this test's database, which
            // stands for the README's (made by the test, as its DATABASE_URL is).
            "mysql" => {
                assert!(db.is_mysql(), "the MySQL walkthrough runs on MySQL");
                let sql = &words[words.iter().position(|w| w == "-e").expect("mysql -e SQL") + 1];
                if !sql.starts_with("CREATE DATABASE") {
                    db.connect().sql(sql);
                }
                ran.push(sql.clone());
            }
            // Building, installing, the shell's own commands, and the receiver (replaced
            // above).
            "cargo" | "export" | "mkdir" | "cd" | "python3" | "sudo" | "sleep" => {}
            other => panic!("the README runs {other}, which this test does not know"),
        }
    }
    ran
}

on_every_backend!(the_readme_walkthrough_works_as_written, |db| {
    follow_the_walkthrough(db);
});

#[test]
fn the_shell_splitter_reads_quotes_continuations_and_comments() {
    let lines = commands("a 'b c' \"d \\\"e\\\"\" \\\n  f   # g: h …\nx && y &\n");
    let words: Vec<Vec<String>> = lines.iter().map(|l| l.words.clone()).collect();
    assert_eq!(
        words,
        [vec!["a", "b c", "d \"e\"", "f"], vec!["x"], vec!["y"]]
    );
    assert_eq!(lines[0].comment, "g: h …");
}
