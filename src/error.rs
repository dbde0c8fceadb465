//! The error type every command returns, and the exit code each kind maps to (SPEC §5).

use std::fmt;

/// What went wrong, sorted by who must act: the caller (bad input) or the operator
/// (the environment). Each message is one sentence that names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Invalid usage or input; nothing was written. Exit code 2.
    Invalid(String),
    /// The database is unreachable or not migrated, or an environment variable is
    /// missing. Exit code 3.
    Environment(String),
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
            Error::Environment(_) => 3,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid(message) | Error::Environment(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

/// A database error past connecting: the database went away, or its httphooks tables
/// are not what this binary expects.
impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Error::Environment(format!(
            "database error: {}; check that the database is reachable and migrated with `httphooks migrate`",
            one_line(&error.to_string())
        ))
    }
}

/// Folds a multi-line message (PostgreSQL adds DETAIL/HINT lines) into one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
