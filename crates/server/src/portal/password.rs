//! Portal passwords: Argon2id (memory-hard) hashes in PHC strings, hashed on blocking
//! threads and a few at a time, so that sign-ins cannot exhaust memory or the runtime.

use std::sync::LazyLock;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::Semaphore;

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 12;
const MAX_LENGTH: usize = 1024;

/// Hashes running at once; each takes about 19 MiB.
static HASHING: Semaphore = Semaphore::const_new(4);

/// A hash of nothing anyone can sign in with, checked when an email is unknown so that
/// an unknown email takes as long to refuse as a wrong password.
static DECOY: LazyLock<String> = LazyLock::new(|| {
    hash_now("decoy password that is never accepted").expect("hashing a constant succeeds")
});

fn hash_now(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// All hashing capacity stayed taken for too long: the server is flooded with sign-ins.
#[derive(Debug, thiserror::Error)]
#[error("too many passwords are being checked at once")]
pub struct Busy;

/// How long a sign-in waits for hashing capacity before it is turned away.
const WAIT: Duration = Duration::from_secs(10);

async fn permit() -> Result<tokio::sync::SemaphorePermit<'static>, Busy> {
    match tokio::time::timeout(WAIT, HASHING.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(Busy),
    }
}

/// Hashes a new password.
pub async fn hash(password: String) -> anyhow::Result<String> {
    let _permit = permit().await?;
    let hashed = tokio::task::spawn_blocking(move || hash_now(&password)).await?;
    hashed.map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Whether `password` matches a stored hash; with no hash, spends the same time and
/// answers no.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, Busy> {
    let _permit = permit().await?;
    let checked = tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DECOY.clone());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            tracing::error!("a stored password hash is not a PHC string");
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        known && matches
    })
    .await;
    Ok(checked.unwrap_or(false))
}

/// The form an email is stored and looked up in: trimmed and lower-cased.
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if valid {
        Ok(email)
    } else {
        Err("enter an email address such as name@example.com")
    }
}

/// Refuses passwords too short, too long, or equal to the email.
pub fn check_strength(password: &str, email: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!(
            "the password must have at least {MIN_LENGTH} characters"
        ));
    }
    if length > MAX_LENGTH {
        return Err(format!(
            "the password must have at most {MAX_LENGTH} characters"
        ));
    }
    if password.eq_ignore_ascii_case(email) {
        return Err("the password must not be the email address".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_another_does_not() {
        let stored = hash("correct horse battery".to_owned()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            verify("correct horse battery".to_owned(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify("correct horse batterY".to_owned(), Some(stored))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let decoy = "decoy password that is never accepted".to_owned();
        assert!(!verify(decoy, None).await.unwrap());
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased_and_checked() {
        assert_eq!(
            normalize_email(" Ops@Example.COM ").unwrap(),
            "ops@example.com"
        );
        assert!(normalize_email("ops@example").is_err());
        assert!(normalize_email("@example.com").is_err());
        assert!(normalize_email("o ps@example.com").is_err());
        assert!(normalize_email("ops\u{0}@example.com").is_err());
    }

    #[test]
    fn short_passwords_and_the_email_itself_are_refused() {
        assert!(check_strength("short", "a@b.co").is_err());
        assert!(check_strength("ops@example.com", "ops@example.com").is_err());
        assert!(check_strength("a long enough passphrase", "a@b.co").is_ok());
    }
}
