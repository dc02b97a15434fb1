//! Keeping a partner's accounts in order, written once below the portal and the operator's
//! commands: removing users and changing their roles, withdrawing invitations, revoking
//! keys, changing one's own password. Each use case answers its own [`AccountError`],
//! which the portal shows as a page and the command line as one line.
//!
//! Two rules keep a partner from being locked out: the store refuses to remove or demote
//! the partner's last admin (checked in the change's transaction), and an admin acting in
//! the portal cannot remove or demote their own account, which another admin (or the
//! operator) does instead.

use gridroll_domain::{ApiKeyId, PartnerId, UserId};
use gridroll_store::{AccountStore, Role, StoreError, TokenHash, User, UserChange};

use crate::portal::password;

/// Who asks for a change: the operator on the command line, or a signed-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Operator,
    User(UserId),
}

/// Why an account use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("there is no user {0}")]
    NoSuchUser(String),
    #[error("users of several partners have the email {0}: name the partner")]
    AmbiguousEmail(String),
    #[error(
        "this is the partner's last admin: make another user an admin first, so that \
         someone can still manage users and API keys"
    )]
    LastAdmin,
    #[error(
        "you cannot remove your own account or take away your own admin role; another admin \
         can"
    )]
    OwnAccount,
    #[error("there is no pending invitation for {0}")]
    NoSuchInvitation(String),
    #[error("there is no live API key {0}")]
    NoSuchKey(ApiKeyId),
    #[error("the current password is not right")]
    WrongPassword,
    #[error("the two new passwords differ")]
    PasswordsDiffer,
    #[error("{0}")]
    WeakPassword(String),
    #[error("{0}")]
    InvalidEmail(&'static str),
    #[error("too many passwords are being checked at once; try again in a moment")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hashing the password failed: {0}")]
    Hashing(String),
}

/// The user with this email: of `partner` when given, else the only one with it.
pub async fn find_user(
    accounts: &dyn AccountStore,
    email: &str,
    partner: Option<PartnerId>,
) -> Result<User, AccountError> {
    let email = password::normalize_email(email).map_err(AccountError::InvalidEmail)?;
    let mut users: Vec<User> = accounts
        .user_credentials(&email)
        .await?
        .into_iter()
        .map(|c| c.user)
        .filter(|u| partner.is_none_or(|p| u.partner == p))
        .collect();
    match users.len() {
        0 => Err(AccountError::NoSuchUser(email)),
        1 => Ok(users.remove(0)),
        _ => Err(AccountError::AmbiguousEmail(email)),
    }
}

/// Removes a partner's user: their sessions end at once, and invitations they made are
/// withdrawn.
pub async fn remove_user(
    accounts: &dyn AccountStore,
    actor: Actor,
    partner: PartnerId,
    user: UserId,
) -> Result<User, AccountError> {
    if actor == Actor::User(user) {
        return Err(AccountError::OwnAccount);
    }
    let removed = accounts.remove_user(partner, user).await?;
    let user = changed(removed, user)?;
    tracing::info!(user = %user.id, ?actor, "a user was removed");
    Ok(user)
}

/// Gives a partner's user a role.
pub async fn set_role(
    accounts: &dyn AccountStore,
    actor: Actor,
    partner: PartnerId,
    user: UserId,
    role: Role,
) -> Result<User, AccountError> {
    if actor == Actor::User(user) && role != Role::Admin {
        return Err(AccountError::OwnAccount);
    }
    let user = changed(accounts.set_role(partner, user, role).await?, user)?;
    tracing::info!(user = %user.id, role = %role, ?actor, "a user's role was set");
    Ok(user)
}

fn changed(change: UserChange, id: UserId) -> Result<User, AccountError> {
    match change {
        UserChange::Done(user) => Ok(user),
        UserChange::NoSuchUser => Err(AccountError::NoSuchUser(id.to_string())),
        UserChange::LastAdmin => Err(AccountError::LastAdmin),
    }
}

/// Withdraws a partner's pending invitations to `email`: their links stop working.
pub async fn revoke_invitation(
    accounts: &dyn AccountStore,
    partner: PartnerId,
    email: &str,
    now: i64,
) -> Result<String, AccountError> {
    let email = password::normalize_email(email).map_err(AccountError::InvalidEmail)?;
    if accounts.revoke_invitations(partner, &email, now).await? == 0 {
        return Err(AccountError::NoSuchInvitation(email));
    }
    tracing::info!(%partner, "an invitation was withdrawn");
    Ok(email)
}

/// Revokes a partner's live API key. The process that revokes it refuses it at once;
/// others within the minute they remember a checked key.
pub async fn revoke_key(
    accounts: &dyn AccountStore,
    partner: PartnerId,
    key: ApiKeyId,
    now: i64,
) -> Result<(), AccountError> {
    if !accounts.revoke_api_key(partner, key, now).await? {
        return Err(AccountError::NoSuchKey(key));
    }
    tracing::info!(%partner, %key, "an API key was revoked");
    Ok(())
}

/// A user's own change of password.
pub struct PasswordChange {
    pub current: String,
    pub new: String,
    pub confirm: String,
}

/// Changes a signed-in user's password after checking the current one; every other
/// session of the user ends, `keep` (the one asking) goes on.
pub async fn change_password(
    accounts: &dyn AccountStore,
    user: &User,
    keep: TokenHash,
    change: PasswordChange,
) -> Result<(), AccountError> {
    let stored = accounts
        .credentials_of(user.partner, user.id)
        .await?
        .map(|c| c.password_hash);
    let Some(stored) = stored else {
        return Err(AccountError::NoSuchUser(user.email.clone()));
    };
    let matches = password::verify(change.current, Some(stored))
        .await
        .map_err(|_| AccountError::Busy)?;
    if !matches {
        return Err(AccountError::WrongPassword);
    }
    if change.new != change.confirm {
        return Err(AccountError::PasswordsDiffer);
    }
    password::check_strength(&change.new, &user.email).map_err(AccountError::WeakPassword)?;
    let hash = password::hash(change.new)
        .await
        .map_err(|e| AccountError::Hashing(e.to_string()))?;
    if !accounts
        .change_password(user.partner, user.id, &hash, Some(keep))
        .await?
    {
        return Err(AccountError::NoSuchUser(user.email.clone()));
    }
    tracing::info!(user = %user.id, "a user changed their password");
    Ok(())
}
