//! API keys: issued once in clear, stored as a SHA-256 hash, presented as
//! `Authorization: Bearer <key>`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gridroll_domain::ApiKeyId;
use gridroll_domain::PartnerId;
use gridroll_store::{AccountStore, ApiKeyHash, KeyGrant, Permission};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Every key starts with this, so that a leaked key is easy to recognise and scan for.
const KEY_PREFIX: &str = "grk_";

/// Creates a new key for a partner at `now` and returns its id and the key in clear;
/// only its hash is stored.
pub async fn issue_api_key(
    accounts: &dyn AccountStore,
    partner: PartnerId,
    name: &str,
    permission: Permission,
    now: i64,
) -> Result<(ApiKeyId, String), gridroll_store::StoreError> {
    let key = format!("{KEY_PREFIX}{}", random_token());
    let id = accounts
        .add_api_key(partner, name, permission, &hash_key(&key), now)
        .await?;
    Ok((id, key))
}

/// 32 random bytes, URL-safe base64: for keys, session tokens and invitation links.
pub fn random_token() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    URL_SAFE_NO_PAD.encode(secret)
}

pub fn hash_key(key: &str) -> ApiKeyHash {
    ApiKeyHash(sha256(key))
}

/// SHA-256 of a secret handed out once (an API key, a session or invitation token, the
/// operator token): they are random and long, so a fast hash is safe.
pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Keys seen recently and what they grant, so that a busy client's requests do not each
/// query (and note the key's use). An entry lives a minute: a key revoked through another
/// process stops working within that; this process forgets its cache on a revocation.
#[derive(Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<[u8; 32], (KeyGrant, Instant)>>,
}

const KEY_CACHE_TTL: Duration = Duration::from_secs(60);
const KEY_CACHE_SIZE: usize = 10_000;

impl KeyCache {
    fn get(&self, hash: &ApiKeyHash) -> Option<KeyGrant> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&hash.0)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(grant, _)| *grant)
    }

    fn put(&self, hash: &ApiKeyHash, grant: KeyGrant) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= KEY_CACHE_SIZE {
            entries.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
            if entries.len() >= KEY_CACHE_SIZE {
                entries.clear();
            }
        }
        entries.insert(hash.0, (grant, Instant::now()));
    }

    /// Forgets every key, e.g. after one was revoked.
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// The partner on whose behalf a request is made, and what its key may do.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub partner: PartnerId,
    pub permission: Permission,
}

impl Caller {
    /// Refuses a key that may only read.
    pub fn require_write(&self) -> Result<(), ApiError> {
        match self.permission {
            Permission::ReadWrite => Ok(()),
            Permission::ReadOnly => Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "Forbidden",
                serde_json::json!({"error": "this API key may only read; use a read-write key"}),
            )),
        }
    }
}

impl From<KeyGrant> for Caller {
    fn from(grant: KeyGrant) -> Self {
        Self {
            partner: grant.partner,
            permission: grant.permission,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, key) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
            })
            .filter(|key| !key.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let hash = hash_key(key);
        if let Some(grant) = state.keys.get(&hash) {
            return Ok(grant.into());
        }
        let grant = state
            .accounts
            .use_api_key(&hash, state.now_millis())
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        state.keys.put(&hash, grant);
        Ok(grant.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_is_stable_and_distinguishes_keys() {
        assert_eq!(hash_key("grk_a"), hash_key("grk_a"));
        assert_ne!(hash_key("grk_a"), hash_key("grk_b"));
    }
}
