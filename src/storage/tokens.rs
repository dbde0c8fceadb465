//! The OAuth2 access-token cache (`httphooks_oauth_tokens`), shared by consecutive runs.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::httphooks_oauth_tokens::dsl as t;
use super::{with_conn, Db};
use crate::error::Result;

/// A cached token that is still good at `now`.
pub fn load(db: &mut Db, key: &str, now: NaiveDateTime) -> Result<Option<(String, NaiveDateTime)>> {
    with_conn!(db, |conn| {
        Ok(t::httphooks_oauth_tokens
            .select((t::access_token, t::expires_at))
            .filter(t::cache_key.eq(key))
            .filter(t::expires_at.gt(now))
            .first(conn)
            .optional()?)
    })
}

/// Stores a token under `key`, replacing any there (each backend's upsert is spelt
/// differently; a token is saved about once an hour).
pub fn save(db: &mut Db, key: &str, token: &str, expires_at: NaiveDateTime) -> Result<()> {
    with_conn!(db, |conn| conn.transaction(|conn| {
        diesel::delete(t::httphooks_oauth_tokens.filter(t::cache_key.eq(key))).execute(conn)?;
        diesel::insert_into(t::httphooks_oauth_tokens)
            .values((
                t::cache_key.eq(key),
                t::access_token.eq(token),
                t::expires_at.eq(expires_at),
            ))
            .execute(conn)
    }))?;
    Ok(())
}

/// Forgets a token the target refused, unless another run has already replaced it.
pub fn forget(db: &mut Db, key: &str, token: &str) -> Result<()> {
    with_conn!(db, |conn| {
        diesel::delete(
            t::httphooks_oauth_tokens
                .filter(t::cache_key.eq(key))
                .filter(t::access_token.eq(token)),
        )
        .execute(conn)
    })?;
    Ok(())
}
