//! Who may act for a partner: portal users, their sessions and invitations, and API keys.
//! Secrets (session tokens, invitation tokens, API keys) are kept only as SHA-256 hashes;
//! passwords only as memory-hard hashes made by the caller.

use gridroll_domain::enums::EnrollmentStatus;
use gridroll_domain::{ApiKeyId, PartnerId, UserId};
use strum::VariantNames;

/// What a portal user may do beyond the everyday work of uploading and reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Also invites users and manages API keys.
    Admin,
    Member,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Permission {
    /// Reads and writes: creates meters and changes participation.
    ReadWrite,
    /// Reads only: lists, searches and validates.
    ReadOnly,
}

/// A portal user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub partner: PartnerId,
    /// Lower-cased; unique among the partner's users (one address may be a user of
    /// several partners).
    pub email: String,
    pub role: Role,
    pub created_at: i64,
    pub last_sign_in_at: Option<i64>,
}

/// A user with what signing in checks.
#[derive(Clone)]
pub struct Credentials {
    pub user: User,
    /// PHC string of the password hash.
    pub password_hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a random token handed out once (a session cookie, an invitation link).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A session about to start.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: TokenHash,
    pub user: UserId,
    /// The token every form of the session must carry.
    pub csrf_token: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The source the user signed in from, whose failures start again.
    pub source: Option<TokenHash>,
    /// The browser the user signed in from, remembered as theirs.
    pub device: Option<TokenHash>,
}

/// What counting a sign-in attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInAttempt {
    /// False while the source is locked out of the user (nothing was counted then).
    pub allowed: bool,
    /// The account's attempts in a row without success, from every source, this one
    /// included.
    pub account_failures: u32,
}

/// What setting a password by email did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSet {
    Changed,
    NoSuchUser,
    /// Several partners have a user with this email: the partner must be named.
    Ambiguous,
}

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
    pub expires_at: i64,
}

/// An invitation for someone to become a user of a partner.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub token: TokenHash,
    pub partner: PartnerId,
    pub email: String,
    pub role: Role,
    pub invited_by: UserId,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An invitation that can still be accepted.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub partner: PartnerId,
    pub email: String,
    pub role: Role,
    pub expires_at: i64,
}

/// Why a user could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    #[error("the partner has a user with this email")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

/// An API key as its partner sees it (never the key itself).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub permission: Permission,
    pub created_at: i64,
    /// Updated at most about once a minute per process: lookups are cached.
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A key whose last use is noted no more often than this: keys are looked up on every
/// cache miss, and a write each time would cost more than the lookup.
pub(crate) const LAST_USE_PRECISION_MS: i64 = 60_000;

/// Whether a key last used at `last` should be noted as used at `now`.
pub(crate) fn stale_use(last: Option<i64>, now: i64) -> bool {
    last.is_none_or(|last| now - last >= LAST_USE_PRECISION_MS)
}

/// What a presented, live API key grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGrant {
    pub partner: PartnerId,
    pub permission: Permission,
}

/// Counts of a partner's meters for an overview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeterOverview {
    pub total: u64,
    /// Meters that need something from the partner.
    pub action_required: u64,
    /// Global enrollment status and how many meters have it.
    pub by_status: Vec<(String, u64)>,
    /// Transmission region and how many meters are in it.
    pub by_region: Vec<(String, u64)>,
}

impl MeterOverview {
    /// The query of an overview: one scan of the index that pages a region (it carries
    /// the status and the action flag), grouped by region in index order, with the
    /// statuses counted side by side. `$partner` is the dialect's first placeholder.
    pub(crate) fn sql(partner: &str) -> String {
        let statuses: String = EnrollmentStatus::VARIANTS
            .iter()
            .map(|status| {
                format!(", count(*) FILTER (WHERE global_enrollment_status = '{status}')")
            })
            .collect();
        format!(
            "SELECT transmission_region, count(*),
                    count(*) FILTER (WHERE partner_action_required){statuses}
             FROM meters WHERE partner_id = {partner} GROUP BY transmission_region"
        )
    }

    /// Sums the rows of [`MeterOverview::sql`]: region, meters, meters needing an action,
    /// then the meters of each status in the order of `EnrollmentStatus::VARIANTS`.
    pub(crate) fn from_rows(rows: impl IntoIterator<Item = (String, Vec<u64>)>) -> Self {
        let mut overview = Self::default();
        let mut by_status = vec![0u64; EnrollmentStatus::VARIANTS.len()];
        for (region, counts) in rows {
            let (total, action) = (counts[0], counts[1]);
            overview.total += total;
            overview.action_required += action;
            for (sum, n) in by_status.iter_mut().zip(&counts[2..]) {
                *sum += n;
            }
            overview.by_region.push((region, total));
        }
        overview.by_status = EnrollmentStatus::VARIANTS
            .iter()
            .zip(by_status)
            .filter(|(_, n)| *n > 0)
            .map(|(status, n)| ((*status).to_owned(), n))
            .collect();
        overview
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overview_sums_the_regions_and_lists_only_statuses_that_occur() {
        let statuses = EnrollmentStatus::VARIANTS.len();
        let counts = |total: u64, action: u64, per: &[(&str, u64)]| {
            let mut row = vec![total, action];
            row.extend(
                EnrollmentStatus::VARIANTS
                    .iter()
                    .map(|v| per.iter().find(|(s, _)| s == v).map_or(0, |(_, n)| *n)),
            );
            assert_eq!(row.len(), statuses + 2);
            row
        };
        let overview = MeterOverview::from_rows([
            (
                "CAISO".to_owned(),
                counts(5, 3, &[("ELIGIBLE", 3), ("PENDING", 2)]),
            ),
            ("ERCOT".to_owned(), counts(5, 0, &[("ELIGIBLE", 5)])),
        ]);
        assert_eq!(overview.total, 10);
        assert_eq!(overview.action_required, 3);
        let owned = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
            pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
        };
        assert_eq!(
            overview.by_status,
            owned(&[("ELIGIBLE", 8), ("PENDING", 2)])
        );
        assert_eq!(overview.by_region, owned(&[("CAISO", 5), ("ERCOT", 5)]));
    }

    #[test]
    fn the_overview_query_counts_every_status() {
        let sql = MeterOverview::sql("?1");
        for status in EnrollmentStatus::VARIANTS {
            assert!(sql.contains(&format!("= '{status}'")), "{status}");
        }
    }
}
