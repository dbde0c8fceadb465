//! Where a database URL points, and how messages show it: the one place that reads a
//! URL's scheme (docs/behaviour.md §1).

use std::path::Path;

use crate::error::{one_line, Error, Result};

/// The file used when no database URL is given (docs/behaviour.md §1).
pub const DEFAULT_SQLITE_FILE: &str = "httphooks.sqlite3";

/// Where a database URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    Sqlite(String),
    Postgres(String),
    Mysql(String),
}

impl DatabaseLocation {
    /// The database, the same text for every connection to it from this host: the
    /// file's absolute path (SQLite) or the URL without its password.
    pub fn identity(&self) -> String {
        match self {
            DatabaseLocation::Sqlite(path) => shown_path(path),
            DatabaseLocation::Postgres(url) | DatabaseLocation::Mysql(url) => redact_url(url),
        }
    }

    /// Chooses the backend from the URL's scheme (docs/behaviour.md §1); no URL means the default
    /// SQLite file in the current directory.
    pub fn parse(url: Option<&str>) -> Result<DatabaseLocation> {
        let url = match url.map(str::trim) {
            None | Some("") => return Ok(DatabaseLocation::Sqlite(DEFAULT_SQLITE_FILE.to_owned())),
            Some(url) => url,
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseLocation::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(DatabaseLocation::Sqlite(path.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            return Ok(DatabaseLocation::Sqlite(path.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("mysql://") {
            // MySQL connects without a database and then fails on every statement.
            let database = rest
                .split_once('/')
                .map_or("", |(_, path)| path.split('?').next().unwrap_or(""));
            if database.is_empty() || database.contains('/') {
                return Err(Error::invalid(format!(
                    "the MySQL URL {} names no database; end it with one, as in mysql://USER@HOST:3306/DATABASE",
                    redact_url(url)
                )));
            }
            return Ok(DatabaseLocation::Mysql(url.to_owned()));
        }
        if is_keyword_string(url) {
            return Err(Error::invalid(
                "the database URL is a PostgreSQL keyword string (not shown: it may hold a password); give it as a URL: postgres://USER:PASSWORD@HOST:PORT/DATABASE, or sqlite://PATH for a file whose name looks like one",
            ));
        }
        if url.contains("://") {
            return Err(Error::invalid(format!(
                "unsupported database URL scheme in {}; use sqlite://PATH, a file path, postgres://… or mysql://…",
                redact_url(url)
            )));
        }
        Ok(DatabaseLocation::Sqlite(url.to_owned()))
    }
}

/// Whether `text` is a libpq keyword string (`host=h password=p`, `password = 'p q'`,
/// `service=app`): a word that names a connection parameter, then `=`.
fn is_keyword_string(text: &str) -> bool {
    const KEYWORDS: [&str; 12] = [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "service",
        "sslmode",
        "options",
        "application_name",
        "connect_timeout",
    ];
    let lower = text.to_ascii_lowercase();
    KEYWORDS.iter().any(|key| {
        lower.match_indices(key).any(|(at, _)| {
            let starts_word = lower[..at]
                .chars()
                .next_back()
                .is_none_or(char::is_whitespace);
            let rest = lower[at + key.len()..].trim_start();
            starts_word && rest.starts_with('=')
        })
    })
}

/// The SQLite file `url` names when it does not exist yet (connecting creates it).
pub(super) fn sqlite_file_to_create(url: Option<&str>) -> Option<String> {
    match DatabaseLocation::parse(url) {
        Ok(DatabaseLocation::Sqlite(path)) if path != ":memory:" && !Path::new(&path).exists() => {
            Some(path)
        }
        _ => None,
    }
}

/// Tells the operator on stderr that a new SQLite database file was made, with its full
/// path: a command run in an unexpected directory is noticed at once.
pub fn say_created(path: &str, url_given: bool) {
    // The hint is for a file made because no URL was given (the default).
    let hint = if url_given {
        ""
    } else {
        " (set DATABASE_URL to use another)"
    };
    eprintln!("httphooks: created new database {}{hint}", shown_path(path));
}

/// A SQLite path as messages show it: absolute, so the operator sees where it was.
pub(super) fn shown_path(path: &str) -> String {
    let shown = std::path::absolute(path)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_owned());
    redact_parameters(&shown)
}

/// `password=…` words replaced: a libpq keyword string (`host=h password=p`) given where
/// a URL belongs is taken for a file path, and must not be shown with its password.
fn redact_parameters(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.split_once('=') {
            Some((key, _))
                if key.eq_ignore_ascii_case("password")
                    || key.eq_ignore_ascii_case("sslpassword") =>
            {
                format!("{key}=***")
            }
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact_parameters(url);
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    // libpq also takes the password as a parameter (`?password=…`).
    let secret =
        |key: &str| key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword");
    if parsed.query_pairs().any(|(key, _)| secret(&key)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if secret(&key) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// What a connection error says of the problem, without the fix that sends the user to
/// DATABASE_URL: for a database that was reachable before and went away.
pub(crate) fn connection_problem(message: &str) -> &str {
    message
        .split("; check DATABASE_URL")
        .next()
        .unwrap_or(message)
}

/// `fix` completes "check DATABASE_URL and …" for the backend (see
/// [`connection_problem`]).
pub(crate) fn connection_error(
    backend: &str,
    target: &str,
    fix: &str,
    error: impl std::fmt::Display,
) -> Error {
    Error::Database {
        failure: crate::error::DbFailure::Connection,
        message: format!(
            "cannot open the {backend} database at {}: {}; check DATABASE_URL and {fix}",
            redact_url(target),
            one_line(&error.to_string())
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            super::shown_path("/x/host=h port=1 password=secret"),
            "/x/host=h port=1 password=***"
        );
        let shown = super::redact_url("postgres://h/db?user=u&password=secret&sslmode=require");
        assert!(
            !shown.contains("secret") && shown.contains("sslmode=require"),
            "{shown}"
        );
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
        for keywords in [
            "host=h port=5 password=secret",
            "password = secret host = h",
            "host=h password='s3 secret'",
            "service=app",
        ] {
            let refused = super::DatabaseLocation::parse(Some(keywords))
                .unwrap_err()
                .to_string();
            assert!(
                refused.contains("keyword string") && !refused.contains("secret"),
                "{refused}"
            );
        }
        for path in ["/data/host=1.db", "app.sqlite3", "./user data.db"] {
            assert!(super::DatabaseLocation::parse(Some(path)).is_ok(), "{path}");
        }
    }
}
