//! The OAuth2 token cache a run's deliverer uses: `httphooks_oauth_tokens`, on a
//! connection of its own opened when first needed.

use chrono::NaiveDateTime;

use crate::delivery::auth::TokenCache;
use crate::error::Result;
use crate::storage::{tokens, Connector, Db, LOCK_WAIT};

pub struct DatabaseTokens {
    connector: Connector,
    db: Option<Db>,
}

impl DatabaseTokens {
    pub fn boxed(connector: &Connector) -> Box<dyn TokenCache> {
        Box::new(DatabaseTokens {
            connector: connector.clone(),
            db: None,
        })
    }

    /// The connection, opened again after a failure.
    fn run<T>(&mut self, op: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        let db = match &mut self.db {
            Some(db) => db,
            slot => slot.insert(self.connector.open_migrated(LOCK_WAIT)?),
        };
        let result = op(db);
        if result.is_err() {
            self.db = None;
        }
        result
    }
}

impl TokenCache for DatabaseTokens {
    fn load(&mut self, key: &str, now: NaiveDateTime) -> Result<Option<(String, NaiveDateTime)>> {
        self.run(|db| tokens::load(db, key, now))
    }

    fn save(&mut self, key: &str, token: &str, expires_at: NaiveDateTime) -> Result<()> {
        self.run(|db| tokens::save(db, key, token, expires_at))
    }

    fn forget(&mut self, key: &str, token: &str) -> Result<()> {
        self.run(|db| tokens::forget(db, key, token))
    }
}
