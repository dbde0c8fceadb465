//! The error type every command returns, and the exit code each kind maps to
//! (docs/behaviour.md, "Exit codes").

use std::fmt;

/// What went wrong, sorted by who must act: the caller (bad input) or the operator
/// (the environment, the database). Each message is one sentence that names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Invalid usage or input; nothing was written. Exit code 2.
    Invalid(String),
    /// The database is unreachable or not migrated, or an environment variable is
    /// missing. Exit code 3.
    Environment(String),
    /// A database operation failed. `failure` says what kind of problem it is, so the
    /// delivery engine can tell a lost connection (reconnect and go on) from a schema
    /// that is not what it expects (stop). Exit code 3.
    Database { failure: DbFailure, message: String },
}

/// What kind of problem a database error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbFailure {
    /// The connection was closed or could not be used.
    Connection,
    /// Another connection holds a lock (SQLite's "database is locked", a deadlock).
    Busy,
    /// The disk or the database is full, or the disk failed.
    Storage,
    /// httphooks' tables are missing or not the ones this binary expects.
    Schema,
    /// A value could not be stored or read (encoding, constraint).
    Data,
    Other,
}

impl DbFailure {
    /// Whether waiting (and reconnecting) may make the same operation succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            DbFailure::Connection | DbFailure::Busy | DbFailure::Storage
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    pub fn environment(message: impl Into<String>) -> Self {
        Error::Environment(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid(_) => 2,
            Error::Environment(_) | Error::Database { .. } => 3,
        }
    }

    /// The kind of database problem, for errors that are one.
    pub fn db_failure(&self) -> Option<DbFailure> {
        match self {
            Error::Database { failure, .. } => Some(*failure),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(message)
            | Error::Environment(message)
            | Error::Database { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

/// A database error past connecting, described by what it is: a lost connection, a
/// lock, a full disk, a schema this binary does not expect, a bad value.
impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        // A value read back that httphooks refuses says why itself (see `Status`), under
        // diesel's "Error deserializing field …".
        if let diesel::result::Error::DeserializationError(inner) = &error {
            let mut cause: &dyn std::error::Error = inner.as_ref();
            while let Some(next) = cause.source() {
                cause = next;
            }
            let message = cause.to_string();
            if message.contains("httphooks does not write") {
                return Error::Database {
                    failure: DbFailure::Data,
                    message,
                };
            }
        }
        let detail = one_line(&error.to_string());
        let failure = classify(&error, &detail);
        let message = match failure {
            DbFailure::Connection => format!(
                "the database connection was lost ({detail}); check that the database server is running and reachable"
            ),
            // A deadlock is over when it is reported (one side was rolled back and is
            // retried); a lock wait that timed out has a holder to end.
            DbFailure::Busy if detail.to_ascii_lowercase().contains("deadlock") => format!(
                "two connections waited for each other's row locks and this statement was rolled back ({detail}); it is safe to retry, and frequent deadlocks are worth reporting"
            ),
            DbFailure::Busy => format!(
                "the database is locked by another connection ({detail}); if it stays locked, end the transaction that holds it (an application's, or another httphooks command's)"
            ),
            DbFailure::Storage => format!(
                "the database could not write to its storage ({detail}); free disk space or check the disk"
            ),
            DbFailure::Schema => format!(
                "httphooks' tables are not what this binary expects ({detail}); run `httphooks migrate`"
            ),
            DbFailure::Data => format!(
                "the database refused a value ({detail}); check the database's character encoding and constraints"
            ),
            // SQLite's file (or its folder, for the journal) belongs to another user.
            DbFailure::Other
                if detail.contains("readonly database") || detail.contains("unable to open database file") =>
            {
                format!(
                    "the database file, or its folder, cannot be written by this user ({detail}; SQLite writes its -wal and -shm files beside it); give the user running httphooks write access to both, or run it as their owner"
                )
            }
            DbFailure::Other => format!("database error: {detail}; check the database server's log"),
        };
        Error::Database { failure, message }
    }
}

fn classify(error: &diesel::result::Error, detail: &str) -> DbFailure {
    use diesel::result::{DatabaseErrorKind as Kind, Error as E};
    let text = detail.to_ascii_lowercase();
    let mentions = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    match error {
        E::DatabaseError(Kind::ClosedConnection | Kind::UnableToSendCommand, _)
        | E::BrokenTransactionManager => DbFailure::Connection,
        E::DatabaseError(Kind::SerializationFailure, _) => DbFailure::Busy,
        E::DatabaseError(
            Kind::UniqueViolation
            | Kind::ForeignKeyViolation
            | Kind::NotNullViolation
            | Kind::CheckViolation
            | Kind::RestrictViolation
            | Kind::ExclusionViolation,
            _,
        )
        | E::DeserializationError(_)
        | E::SerializationError(_) => DbFailure::Data,
        _ if mentions(&[
            "terminating connection",
            "server closed the connection",
            "no connection to the server",
            "could not receive data",
            "could not send data",
            "connection to server",
            "connection reset",
            "lost connection",
            "server has gone away",
            "broken pipe",
        ]) =>
        {
            DbFailure::Connection
        }
        _ if mentions(&[
            "database is locked",
            "database table is locked",
            "deadlock",
            "lock timeout",
            "lock wait timeout",
        ]) =>
        {
            DbFailure::Busy
        }
        _ if mentions(&[
            "disk is full",
            "no space left",
            "could not extend file",
            "disk i/o error",
            "database or disk",
        ]) =>
        {
            DbFailure::Storage
        }
        _ if mentions(&[
            "no such table",
            "no such column",
            "has no column",
            "does not exist",
            "doesn't exist",
            "unknown column",
        ]) =>
        {
            DbFailure::Schema
        }
        _ if mentions(&[
            "invalid byte sequence",
            "character with byte sequence",
            "encoding",
        ]) =>
        {
            DbFailure::Data
        }
        _ => DbFailure::Other,
    }
}

/// Folds a multi-line message (PostgreSQL adds DETAIL/HINT lines) into one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::{DatabaseErrorKind, Error as E};

    fn unknown(message: &str) -> E {
        E::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_owned()))
    }

    #[test]
    fn database_errors_name_the_real_problem() {
        let cases = [
            (
                "database is locked",
                DbFailure::Busy,
                "locked by another connection",
            ),
            (
                "database or disk is full",
                DbFailure::Storage,
                "free disk space",
            ),
            (
                "terminating connection due to administrator command",
                DbFailure::Connection,
                "server is running",
            ),
            (
                "no such table: httphooks_runs",
                DbFailure::Schema,
                "httphooks migrate",
            ),
            (
                "invalid byte sequence for encoding \"UTF8\": 0xff",
                DbFailure::Data,
                "character encoding",
            ),
        ];
        for (message, failure, fix) in cases {
            let error = Error::from(unknown(message));
            assert_eq!(error.db_failure(), Some(failure), "{message}");
            let text = error.to_string();
            assert!(text.contains(message) && text.contains(fix), "{text}");
            assert!(
                failure == DbFailure::Schema || !text.contains("migrate"),
                "only schema problems send the operator to migrate: {text}"
            );
        }
        assert!(DbFailure::Connection.is_transient());
        assert!(!DbFailure::Schema.is_transient());
    }
}
