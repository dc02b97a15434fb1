//! API keys: issued once in clear, stored as a SHA-256 hash, presented as
//! `Authorization: Bearer <key>`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gridroll_domain::PartnerId;
use gridroll_store::{ApiKeyHash, Store};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Every key starts with this, so that a leaked key is easy to recognise and scan for.
const KEY_PREFIX: &str = "grk_";

/// Creates a new key for a partner and returns it in clear; only its hash is stored.
pub async fn issue_api_key(
    store: &dyn Store,
    partner: PartnerId,
    name: &str,
) -> Result<String, gridroll_store::StoreError> {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    store.add_api_key(partner, name, &hash_key(&key)).await?;
    Ok(key)
}

pub fn hash_key(key: &str) -> ApiKeyHash {
    ApiKeyHash(Sha256::digest(key.as_bytes()).into())
}

/// The partner on whose behalf a request is made.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub partner: PartnerId,
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
        let partner = state
            .store
            .partner_for_key(&hash_key(key))
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Self { partner })
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
