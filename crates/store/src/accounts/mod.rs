//! Who may act for a partner: partners, API keys, portal users, their sessions, sign-in
//! failures and invitations. Secrets (session tokens, invitation tokens, API keys) are
//! kept only as SHA-256 hashes; passwords only as memory-hard hashes made by the caller.

mod queries;
mod sign_in;

use async_trait::async_trait;

use crate::Result;
use crate::engine::Engine;
use crate::model::{ApiKeyHash, Partner};
use crate::work;

use gridroll_domain::scope::Scopes;
use gridroll_domain::{ApiKeyId, PartnerId, UserId};

/// What a portal user may do beyond the everyday work of uploading and reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Also invites users and manages API keys.
    Admin,
    Member,
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

impl AddUserError {
    /// As a store error, so that a transaction that meets it rolls back.
    fn into_store(self) -> crate::StoreError {
        match self {
            Self::EmailTaken => crate::StoreError::Conflict,
            Self::Store(e) => e,
        }
    }

    fn from_store(error: crate::StoreError) -> Self {
        match error {
            crate::StoreError::Conflict => Self::EmailTaken,
            e => Self::Store(e),
        }
    }
}

/// An API key as its partner sees it (never the key itself).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    /// The key's first characters ([`KEY_PREFIX_LEN`]), to tell keys of one name apart;
    /// none for keys made before prefixes were kept.
    pub prefix: Option<String>,
    pub scopes: Scopes,
    pub created_at: i64,
    /// Updated at most about once a minute per process: lookups are cached.
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// How many of a key's first characters are kept and shown: `grk_` and eight of its
/// random part (48 of its 256 bits).
pub const KEY_PREFIX_LEN: usize = 12;

/// A partner as the operator lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerSummary {
    pub partner: Partner,
    pub users: u64,
    /// Keys not revoked.
    pub live_keys: u64,
}

/// An invitation not yet accepted, as an admin lists them (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInvitation {
    pub email: String,
    pub role: Role,
    /// The email of the user who made it.
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What removing a user or changing a role found. A partner always keeps an admin: the
/// change that would leave it none is refused, checked in the change's transaction so
/// that two admins demoting each other at once cannot both succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// Done; the user as it was before a removal, or with its new role.
    Done(User),
    /// The partner has no such user.
    NoSuchUser,
    /// The user is the partner's last admin.
    LastAdmin,
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
    pub scopes: Scopes,
}

/// Partners, their API keys, and the portal's users, sessions and invitations.
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_partner(&self, name: &str, now: i64) -> Result<Partner>;
    async fn get_partner(&self, partner: PartnerId) -> Result<Option<Partner>>;
    async fn find_partner_by_name(&self, name: &str) -> Result<Option<Partner>>;
    /// Every partner, oldest first, with its counts of users and live keys.
    async fn list_partners(&self) -> Result<Vec<PartnerSummary>>;

    /// Stores the hash of a new API key for a partner, and its first characters
    /// ([`KEY_PREFIX_LEN`]) to show.
    async fn add_api_key(
        &self,
        partner: PartnerId,
        name: &str,
        scopes: Scopes,
        hash: &ApiKeyHash,
        prefix: &str,
        now: i64,
    ) -> Result<ApiKeyId>;
    /// What a live (not revoked) key grants; notes that it was used at `now` (at most
    /// once a minute: unknown keys and busy ones cost no write).
    async fn use_api_key(&self, hash: &ApiKeyHash, now: i64) -> Result<Option<KeyGrant>>;
    /// A partner's keys, newest first, revoked ones included.
    async fn list_api_keys(&self, partner: PartnerId) -> Result<Vec<ApiKey>>;
    /// Revokes a partner's key. False if the partner has no such live key.
    async fn revoke_api_key(&self, partner: PartnerId, key: ApiKeyId, now: i64) -> Result<bool>;

    /// Adds a portal user to a partner. `email` must be lower-cased.
    async fn add_user(
        &self,
        partner: PartnerId,
        email: &str,
        role: Role,
        password_hash: &str,
        now: i64,
    ) -> Result<User, AddUserError>;
    /// Replaces the password hash of the user with this (lower-cased) email, of
    /// `partner` if given, and ends the user's sessions and lockouts.
    async fn set_password(
        &self,
        email: &str,
        partner: Option<PartnerId>,
        password_hash: &str,
    ) -> Result<PasswordSet>;
    /// A partner's users, in the order they were added.
    async fn list_users(&self, partner: PartnerId) -> Result<Vec<User>>;
    /// One of a partner's users, with what signing in checks.
    async fn credentials_of(&self, partner: PartnerId, user: UserId)
    -> Result<Option<Credentials>>;
    /// Removes a partner's user with everything that is theirs: sessions, sign-in
    /// counts, remembered browsers, and the invitations they made (no longer vouched
    /// for). Refused for the partner's last admin.
    async fn remove_user(&self, partner: PartnerId, user: UserId) -> Result<UserChange>;
    /// Gives a partner's user a role. Refused when it would leave the partner no admin.
    async fn set_role(&self, partner: PartnerId, user: UserId, role: Role) -> Result<UserChange>;
    /// Replaces a user's password hash; every session of the user but `keep` ends, and
    /// the user's sign-in counts start again. False if the partner has no such user.
    async fn change_password(
        &self,
        partner: PartnerId,
        user: UserId,
        password_hash: &str,
        keep: Option<TokenHash>,
    ) -> Result<bool>;
    /// Every user with this (lower-cased) email, one per partner, the most recently signed
    /// in first, with what signing in checks.
    async fn user_credentials(&self, email: &str) -> Result<Vec<Credentials>>;
    /// Counts a sign-in attempt of `source` on `user` before its password is checked, so
    /// that attempts made at once cannot outrun the count. The `lock_after`-th attempt in a
    /// row from the source without success locks that source (only) out of the user until
    /// `lock_until`; while it is, nothing is counted. The count starts again once a lock
    /// has lapsed, and a success ([`AccountStore::start_session`]) resets it.
    async fn sign_in_attempt(
        &self,
        user: UserId,
        source: &TokenHash,
        now: i64,
        lock_after: u32,
        lock_until: i64,
    ) -> Result<SignInAttempt>;
    /// Whether `device` is a browser `user` signed in from before.
    async fn is_known_device(&self, user: UserId, device: &TokenHash) -> Result<bool>;
    /// Starts a session after a successful sign-in: the failure counts of the account and
    /// of the session's source start again, its device is remembered, and the user's
    /// expired sessions are removed.
    async fn start_session(&self, session: &NewSession) -> Result<()>;
    /// The live session a token opens.
    async fn session(&self, token: &TokenHash, now: i64) -> Result<Option<Session>>;
    async fn end_session(&self, token: &TokenHash) -> Result<()>;
    async fn add_invitation(&self, invitation: &NewInvitation) -> Result<()>;
    /// A partner's invitations that can still be accepted at `now`, newest first.
    async fn list_invitations(
        &self,
        partner: PartnerId,
        now: i64,
    ) -> Result<Vec<PendingInvitation>>;
    /// Withdraws a partner's invitations to `email` (lower-cased), expired ones too;
    /// answers how many pending ones there were.
    async fn revoke_invitations(&self, partner: PartnerId, email: &str, now: i64) -> Result<u64>;
    /// The invitation a token opens, if it has not expired or been used.
    async fn invitation(&self, token: &TokenHash, now: i64) -> Result<Option<Invitation>>;
    /// Turns an invitation into a user, once.
    async fn accept_invitation(
        &self,
        token: &TokenHash,
        now: i64,
        password_hash: &str,
    ) -> Result<Option<User>, AddUserError>;
}

#[async_trait]
impl<E: Engine> AccountStore for E {
    async fn create_partner(&self, name: &str, now: i64) -> Result<Partner> {
        let name = name.to_owned();
        self.write(work!(db => async move { queries::create_partner(db, &name, now).await }))
            .await
    }

    async fn get_partner(&self, partner: PartnerId) -> Result<Option<Partner>> {
        self.read(work!(db => queries::get_partner(db, partner)))
            .await
    }

    async fn find_partner_by_name(&self, name: &str) -> Result<Option<Partner>> {
        let name = name.to_owned();
        self.read(work!(db => async move { queries::find_partner_by_name(db, &name).await }))
            .await
    }

    async fn list_partners(&self) -> Result<Vec<PartnerSummary>> {
        self.read(work!(db => queries::list_partners(db))).await
    }

    async fn add_api_key(
        &self,
        partner: PartnerId,
        name: &str,
        scopes: Scopes,
        hash: &ApiKeyHash,
        prefix: &str,
        now: i64,
    ) -> Result<ApiKeyId> {
        let (name, hash, prefix) = (name.to_owned(), *hash, prefix.to_owned());
        self.write(work!(db => async move {
            queries::add_api_key(db, partner, &name, scopes, &hash, &prefix, now).await
        }))
        .await
    }

    async fn use_api_key(&self, hash: &ApiKeyHash, now: i64) -> Result<Option<KeyGrant>> {
        let hash = *hash;
        let found = self
            .read(work!(db => async move { queries::find_api_key(db, &hash).await }))
            .await?;
        let Some((grant, last_used)) = found else {
            return Ok(None);
        };
        if queries::worth_noting(last_used, now) {
            self.write(work!(db => async move { queries::note_api_key_use(db, &hash, now).await }))
                .await?;
        }
        Ok(Some(grant))
    }

    async fn list_api_keys(&self, partner: PartnerId) -> Result<Vec<ApiKey>> {
        self.read(work!(db => queries::list_api_keys(db, partner)))
            .await
    }

    async fn revoke_api_key(&self, partner: PartnerId, key: ApiKeyId, now: i64) -> Result<bool> {
        self.write(work!(db => queries::revoke_api_key(db, partner, key, now)))
            .await
    }

    async fn add_user(
        &self,
        partner: PartnerId,
        email: &str,
        role: Role,
        password_hash: &str,
        now: i64,
    ) -> Result<User, AddUserError> {
        let (email, hash) = (email.to_owned(), password_hash.to_owned());
        let added = self
            .write(work!(db => async move {
                queries::add_user(db, partner, &email, role, &hash, now)
                    .await
                    .map_err(AddUserError::into_store)
            }))
            .await;
        added.map_err(AddUserError::from_store)
    }

    async fn set_password(
        &self,
        email: &str,
        partner: Option<PartnerId>,
        password_hash: &str,
    ) -> Result<PasswordSet> {
        let (email, hash) = (email.to_owned(), password_hash.to_owned());
        self.write(work!(db => async move {
            queries::set_password(db, &email, partner, &hash).await
        }))
        .await
    }

    async fn list_users(&self, partner: PartnerId) -> Result<Vec<User>> {
        self.read(work!(db => queries::list_users(db, partner)))
            .await
    }

    async fn credentials_of(
        &self,
        partner: PartnerId,
        user: UserId,
    ) -> Result<Option<Credentials>> {
        self.read(work!(db => queries::credentials_of(db, partner, user)))
            .await
    }

    async fn remove_user(&self, partner: PartnerId, user: UserId) -> Result<UserChange> {
        self.write(work!(db => queries::remove_user(db, partner, user)))
            .await
    }

    async fn set_role(&self, partner: PartnerId, user: UserId, role: Role) -> Result<UserChange> {
        self.write(work!(db => queries::set_role(db, partner, user, role)))
            .await
    }

    async fn change_password(
        &self,
        partner: PartnerId,
        user: UserId,
        password_hash: &str,
        keep: Option<TokenHash>,
    ) -> Result<bool> {
        let hash = password_hash.to_owned();
        self.write(work!(db => async move {
            queries::change_password(db, partner, user, &hash, keep).await
        }))
        .await
    }

    async fn user_credentials(&self, email: &str) -> Result<Vec<Credentials>> {
        let email = email.to_owned();
        self.read(work!(db => async move { queries::user_credentials(db, &email).await }))
            .await
    }

    async fn sign_in_attempt(
        &self,
        user: UserId,
        source: &TokenHash,
        now: i64,
        lock_after: u32,
        lock_until: i64,
    ) -> Result<SignInAttempt> {
        let source = *source;
        self.write(work!(db => async move {
            queries::sign_in_attempt(db, user, &source, now, lock_after, lock_until).await
        }))
        .await
    }

    async fn is_known_device(&self, user: UserId, device: &TokenHash) -> Result<bool> {
        let device = *device;
        self.read(work!(db => async move { queries::is_known_device(db, user, &device).await }))
            .await
    }

    async fn start_session(&self, session: &NewSession) -> Result<()> {
        let session = session.clone();
        self.write(work!(db => async move { queries::start_session(db, &session).await }))
            .await
    }

    async fn session(&self, token: &TokenHash, now: i64) -> Result<Option<Session>> {
        let token = *token;
        self.read(work!(db => async move { queries::session(db, &token, now).await }))
            .await
    }

    async fn end_session(&self, token: &TokenHash) -> Result<()> {
        let token = *token;
        self.write(work!(db => async move { queries::end_session(db, &token).await }))
            .await
    }

    async fn add_invitation(&self, invitation: &NewInvitation) -> Result<()> {
        let invitation = invitation.clone();
        self.write(work!(db => async move { queries::add_invitation(db, &invitation).await }))
            .await
    }

    async fn list_invitations(
        &self,
        partner: PartnerId,
        now: i64,
    ) -> Result<Vec<PendingInvitation>> {
        self.read(work!(db => queries::list_invitations(db, partner, now)))
            .await
    }

    async fn revoke_invitations(&self, partner: PartnerId, email: &str, now: i64) -> Result<u64> {
        let email = email.to_owned();
        self.write(work!(db => async move {
            queries::revoke_invitations(db, partner, &email, now).await
        }))
        .await
    }

    async fn invitation(&self, token: &TokenHash, now: i64) -> Result<Option<Invitation>> {
        let token = *token;
        self.read(work!(db => async move { queries::invitation(db, &token, now).await }))
            .await
    }

    async fn accept_invitation(
        &self,
        token: &TokenHash,
        now: i64,
        password_hash: &str,
    ) -> Result<Option<User>, AddUserError> {
        let (token, hash) = (*token, password_hash.to_owned());
        // A taken email rolls the acceptance back: the invitation stays.
        let accepted = self
            .write(work!(db => async move {
                queries::accept_invitation(db, &token, now, &hash)
                    .await
                    .map_err(AddUserError::into_store)
            }))
            .await;
        accepted.map_err(AddUserError::from_store)
    }
}
