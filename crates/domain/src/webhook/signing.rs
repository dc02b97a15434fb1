//! Signing deliveries the Standard Webhooks way (<https://www.standardwebhooks.com>): an
//! HMAC-SHA256 of `{id}.{timestamp}.{body}` under the subscription's secret, sent as
//! `webhook-signature: v1,<base64>`, so receivers can check deliveries with any of the
//! Standard Webhooks libraries.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::digest::Key;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the delivery's id, the same on every attempt.
pub const HEADER_ID: &str = "webhook-id";
/// The header carrying the attempt's time, in seconds since the Unix epoch.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying the signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

const PREFIX: &str = "whsec_";
const VERSION: &str = "v1,";
/// Standard Webhooks asks for keys of 24 to 64 bytes.
const MIN_KEY_LEN: usize = 24;
const MAX_KEY_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// A subscription's signing secret: `whsec_` and the standard base64 of 24 to 64 key bytes.
/// It does not print: `Debug` shows `Secret(..)` and there is no `Display`; the text is
/// reached only through [`Secret::expose_secret`], to store it or show it once to its owner.
#[derive(Clone)]
pub struct Secret {
    text: String,
    /// The key zero-padded to SHA-256's 64-byte block. HMAC pads a shorter key the same way
    /// (RFC 2104 §2), so the MAC is unchanged, and the key can be given to `Mac::new`, which
    /// cannot fail, instead of the fallible `new_from_slice`.
    block: Key<HmacSha256>,
}

/// Text that is not a signing secret. It never repeats the text, which may be a real key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a signing secret starts with `whsec_`")]
    MissingPrefix,
    #[error("a signing secret is `whsec_` followed by standard base64")]
    NotBase64,
    #[error("a signing secret holds 24 to 64 key bytes, not {0}")]
    KeyLength(usize),
}

impl Secret {
    /// The number of random bytes a new secret is made of.
    pub const GENERATED_KEY_LEN: usize = 32;

    /// A secret made of `key`, which the caller draws from a secure random source. The
    /// length is fixed by the type so that every secret Gridroll makes is within the rules.
    pub fn from_key_bytes(key: &[u8; Self::GENERATED_KEY_LEN]) -> Secret {
        Self::from_valid_key(key, format!("{PREFIX}{}", STANDARD.encode(key)))
    }

    /// Reads a secret from its text, as stored or as a partner supplies it.
    pub fn parse(text: &str) -> Result<Secret, SecretError> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
            return Err(SecretError::KeyLength(key.len()));
        }
        Ok(Self::from_valid_key(&key, text.to_owned()))
    }

    /// The secret's text, `whsec_...`. Named so that every use stands out in review.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }

    /// `key` must be at most 64 bytes; both callers have checked.
    fn from_valid_key(key: &[u8], text: String) -> Secret {
        let mut block = Key::<HmacSha256>::default();
        block.iter_mut().zip(key).for_each(|(b, k)| *b = *k);
        Secret { text, block }
    }

    /// The MAC of one delivery, ready to be finalized or compared.
    fn mac(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new(&self.block);
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The signature of one delivery attempt: `v1,` and the base64 of
/// HMAC-SHA256(key, `{msg_id}.{timestamp_secs}.{body}`).
pub fn sign(secret: &Secret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let tag = secret.mac(msg_id, timestamp_secs, body).finalize();
    format!("{VERSION}{}", STANDARD.encode(tag.into_bytes()))
}

/// The `webhook-signature` value: one signature per secret, separated by a space. While a
/// secret is being rotated both are given, newest first, so the receiver accepts the
/// delivery whichever secret it holds.
pub fn signature_header(
    secrets: &[&Secret],
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, msg_id, timestamp_secs, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any `v1,` signature in `header_value` (space-separated) is the signature of this
/// delivery under `secret`; signatures of other versions are skipped. Compares in constant
/// time. It does not judge the timestamp: a receiver must also refuse one too far from its
/// own clock, or an old delivery can be replayed.
pub fn verify(
    secret: &Secret,
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
    header_value: &str,
) -> bool {
    let expected = secret.mac(msg_id, timestamp_secs, body);
    header_value
        .split(' ')
        .filter_map(|signature| signature.strip_prefix(VERSION))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|tag| expected.clone().verify_slice(&tag).is_ok())
}

#[cfg(test)]
mod tests;
