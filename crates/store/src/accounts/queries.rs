//! The statements and rules of accounts, once for both backends.

use gridroll_domain::scope::Scopes;
use gridroll_domain::{ApiKeyId, PartnerId, UserId};

use super::sign_in;
use super::{
    AddUserError, ApiKey, Credentials, Invitation, KeyGrant, NewInvitation, NewSession,
    PartnerSummary, PasswordSet, PendingInvitation, Role, Session, SignInAttempt, TokenHash, User,
    UserChange, stale_use,
};
use crate::db::{Db, Row};
use crate::model::{ApiKeyHash, Partner};
use crate::rows::{self, PARTNER_COLUMNS};
use crate::{Result, StoreError, values};

const USER_COLUMNS: &str = "id, partner_id, email, role, created_at, last_sign_in_at";

fn user(row: &Row) -> Result<User> {
    Ok(User {
        id: row.get(0)?,
        partner: row.get(1)?,
        email: row.get(2)?,
        role: row.parse(3)?,
        created_at: row.get(4)?,
        last_sign_in_at: row.get(5)?,
    })
}

pub async fn create_partner(db: &mut dyn Db, name: &str, now: i64) -> Result<Partner> {
    let partner = Partner {
        id: PartnerId::new(),
        name: name.to_owned(),
        created_at: now,
    };
    db.execute(
        "INSERT INTO partners (id, name, created_at) VALUES ($1, $2, $3)",
        values![partner.id, &partner.name, now],
    )
    .await?;
    Ok(partner)
}

pub async fn get_partner(db: &mut dyn Db, id: PartnerId) -> Result<Option<Partner>> {
    let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE id = $1");
    db.query_opt(&sql, values![id])
        .await?
        .as_ref()
        .map(rows::partner)
        .transpose()
}

pub async fn find_partner_by_name(db: &mut dyn Db, name: &str) -> Result<Option<Partner>> {
    let sql = format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE name = $1 ORDER BY id LIMIT 1");
    db.query_opt(&sql, values![name])
        .await?
        .as_ref()
        .map(rows::partner)
        .transpose()
}

pub async fn list_partners(db: &mut dyn Db) -> Result<Vec<PartnerSummary>> {
    let sql = format!(
        "SELECT {PARTNER_COLUMNS},
                (SELECT count(*) FROM users u WHERE u.partner_id = partners.id),
                (SELECT count(*) FROM api_keys k
                 WHERE k.partner_id = partners.id AND k.revoked_at IS NULL)
         FROM partners ORDER BY created_at, id"
    );
    db.query(&sql, values![])
        .await?
        .iter()
        .map(|row| {
            Ok(PartnerSummary {
                partner: rows::partner(row)?,
                users: row.get(3)?,
                live_keys: row.get(4)?,
            })
        })
        .collect()
}

pub async fn add_api_key(
    db: &mut dyn Db,
    partner: PartnerId,
    name: &str,
    scopes: Scopes,
    hash: &ApiKeyHash,
    prefix: &str,
    now: i64,
) -> Result<ApiKeyId> {
    let id = ApiKeyId::new();
    db.execute(
        "INSERT INTO api_keys (id, partner_id, name, key_hash, scopes, prefix, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        values![
            id,
            partner,
            name,
            &hash.0[..],
            scopes.to_string(),
            prefix,
            now
        ],
    )
    .await?;
    Ok(id)
}

/// What a live key grants, and when it was last used.
pub async fn find_api_key(
    db: &mut dyn Db,
    hash: &ApiKeyHash,
) -> Result<Option<(KeyGrant, Option<i64>)>> {
    let row = db
        .query_opt(
            "SELECT partner_id, scopes, last_used_at FROM api_keys
             WHERE key_hash = $1 AND revoked_at IS NULL",
            values![&hash.0[..]],
        )
        .await?;
    row.map(|row| {
        let grant = KeyGrant {
            partner: row.get(0)?,
            scopes: row.parse(1)?,
        };
        Ok((grant, row.get(2)?))
    })
    .transpose()
}

/// Notes a key's use at `now`, unless it was noted lately (see `stale_use`).
pub async fn note_api_key_use(db: &mut dyn Db, hash: &ApiKeyHash, now: i64) -> Result<()> {
    db.execute(
        "UPDATE api_keys SET last_used_at = $2 WHERE key_hash = $1",
        values![&hash.0[..], now],
    )
    .await?;
    Ok(())
}

/// Whether a key last used at `last` is worth noting as used at `now`.
pub fn worth_noting(last: Option<i64>, now: i64) -> bool {
    stale_use(last, now)
}

pub async fn list_api_keys(db: &mut dyn Db, partner: PartnerId) -> Result<Vec<ApiKey>> {
    let rows = db
        .query(
            "SELECT id, name, scopes, created_at, last_used_at, revoked_at, prefix
             FROM api_keys WHERE partner_id = $1 ORDER BY id DESC",
            values![partner],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ApiKey {
                id: row.get(0)?,
                name: row.get(1)?,
                scopes: row.parse(2)?,
                created_at: row.get(3)?,
                last_used_at: row.get(4)?,
                revoked_at: row.get(5)?,
                prefix: row.get(6)?,
            })
        })
        .collect()
}

pub async fn revoke_api_key(
    db: &mut dyn Db,
    partner: PartnerId,
    key: ApiKeyId,
    now: i64,
) -> Result<bool> {
    let changed = db
        .execute(
            "UPDATE api_keys SET revoked_at = $3
             WHERE id = $1 AND partner_id = $2 AND revoked_at IS NULL",
            values![key, partner, now],
        )
        .await?;
    Ok(changed == 1)
}

pub async fn add_user(
    db: &mut dyn Db,
    partner: PartnerId,
    email: &str,
    role: Role,
    password_hash: &str,
    now: i64,
) -> Result<User, AddUserError> {
    let user = User {
        id: UserId::new(),
        partner,
        email: email.to_owned(),
        role,
        created_at: now,
        last_sign_in_at: None,
    };
    let added = db
        .execute(
            "INSERT INTO users (id, partner_id, email, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            values![
                user.id,
                partner,
                email,
                role.to_string(),
                password_hash,
                now
            ],
        )
        .await;
    match added {
        Ok(_) => Ok(user),
        Err(StoreError::Conflict) => Err(AddUserError::EmailTaken),
        Err(e) => Err(AddUserError::Store(e)),
    }
}

pub async fn set_password(
    db: &mut dyn Db,
    email: &str,
    partner: Option<PartnerId>,
    password_hash: &str,
) -> Result<PasswordSet> {
    let users = db
        .query(sign_in::USERS_BY_EMAIL, values![email, partner])
        .await?;
    let user: UserId = match users.as_slice() {
        [] => return Ok(PasswordSet::NoSuchUser),
        [row] => row.get(0)?,
        _ => return Ok(PasswordSet::Ambiguous),
    };
    db.execute("DELETE FROM sessions WHERE user_id = $1", values![user])
        .await?;
    db.execute(sign_in::CLEAR_USER, values![user]).await?;
    db.execute(
        "UPDATE users SET password_hash = $2, failed_sign_ins = 0 WHERE id = $1",
        values![user, password_hash],
    )
    .await?;
    Ok(PasswordSet::Changed)
}

pub async fn list_users(db: &mut dyn Db, partner: PartnerId) -> Result<Vec<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE partner_id = $1 ORDER BY id");
    db.query(&sql, values![partner])
        .await?
        .iter()
        .map(user)
        .collect()
}

pub async fn credentials_of(
    db: &mut dyn Db,
    partner: PartnerId,
    user_id: UserId,
) -> Result<Option<Credentials>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE partner_id = $1 AND id = $2"
    );
    db.query_opt(&sql, values![partner, user_id])
        .await?
        .map(|row| {
            Ok(Credentials {
                user: user(&row)?,
                password_hash: row.get(6)?,
            })
        })
        .transpose()
}

/// The partner's user, locked until the change commits, after the partner's admins are
/// locked: every change that could leave the partner without an admin locks them first,
/// so such changes run one after the other and each counts what the last one left.
async fn lock_user(
    db: &mut dyn Db,
    partner: PartnerId,
    user_id: UserId,
) -> Result<(Option<User>, usize)> {
    let lock = db.dialect().for_update();
    let admins = db
        .query(
            &format!("SELECT id FROM users WHERE partner_id = $1 AND role = $2 ORDER BY id{lock}"),
            values![partner, Role::Admin.to_string()],
        )
        .await?
        .len();
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE partner_id = $1 AND id = $2{lock}");
    let found = db
        .query_opt(&sql, values![partner, user_id])
        .await?
        .as_ref()
        .map(user)
        .transpose()?;
    Ok((found, admins))
}

pub async fn remove_user(
    db: &mut dyn Db,
    partner: PartnerId,
    user_id: UserId,
) -> Result<UserChange> {
    let (found, admins) = lock_user(db, partner, user_id).await?;
    let Some(found) = found else {
        return Ok(UserChange::NoSuchUser);
    };
    if found.role == Role::Admin && admins <= 1 {
        return Ok(UserChange::LastAdmin);
    }
    for sql in [
        "DELETE FROM sessions WHERE user_id = $1",
        "DELETE FROM sign_in_failures WHERE user_id = $1",
        "DELETE FROM sign_in_devices WHERE user_id = $1",
        "DELETE FROM invitations WHERE invited_by = $1",
        "DELETE FROM users WHERE id = $1",
    ] {
        db.execute(sql, values![user_id]).await?;
    }
    Ok(UserChange::Done(found))
}

pub async fn set_role(
    db: &mut dyn Db,
    partner: PartnerId,
    user_id: UserId,
    role: Role,
) -> Result<UserChange> {
    let (found, admins) = lock_user(db, partner, user_id).await?;
    let Some(mut found) = found else {
        return Ok(UserChange::NoSuchUser);
    };
    if found.role == Role::Admin && role != Role::Admin && admins <= 1 {
        return Ok(UserChange::LastAdmin);
    }
    db.execute(
        "UPDATE users SET role = $2 WHERE id = $1",
        values![user_id, role.to_string()],
    )
    .await?;
    found.role = role;
    Ok(UserChange::Done(found))
}

pub async fn change_password(
    db: &mut dyn Db,
    partner: PartnerId,
    user_id: UserId,
    password_hash: &str,
    keep: Option<TokenHash>,
) -> Result<bool> {
    let changed = db
        .execute(
            "UPDATE users SET password_hash = $3, failed_sign_ins = 0
             WHERE partner_id = $1 AND id = $2",
            values![partner, user_id, password_hash],
        )
        .await?;
    if changed == 0 {
        return Ok(false);
    }
    let keep = keep.map(|token| token.0.to_vec());
    db.execute(
        "DELETE FROM sessions WHERE user_id = $1 AND (token_hash <> $2 OR $2 IS NULL)",
        values![user_id, keep.as_deref()],
    )
    .await?;
    db.execute(sign_in::CLEAR_USER, values![user_id]).await?;
    Ok(true)
}

pub async fn user_credentials(db: &mut dyn Db, email: &str) -> Result<Vec<Credentials>> {
    // Most recently signed in first, those never signed in last.
    let sql = format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1
         ORDER BY last_sign_in_at IS NULL, last_sign_in_at DESC, created_at"
    );
    db.query(&sql, values![email])
        .await?
        .iter()
        .map(|row| {
            Ok(Credentials {
                user: user(row)?,
                password_hash: row.get(6)?,
            })
        })
        .collect()
}

pub async fn sign_in_attempt(
    db: &mut dyn Db,
    user: UserId,
    source: &TokenHash,
    now: i64,
    lock_after: u32,
    lock_until: i64,
) -> Result<SignInAttempt> {
    // One statement per count: concurrent attempts are counted one after the other.
    let counted = db
        .query_opt(
            sign_in::COUNT_SOURCE,
            values![user, &source.0[..], now, lock_after, lock_until],
        )
        .await?;
    let allowed = counted.is_some();
    let account = if allowed {
        sign_in::COUNT_ACCOUNT
    } else {
        "SELECT failed_sign_ins FROM users WHERE id = $1"
    };
    let failures: u32 = db.query_one(account, values![user]).await?.get(0)?;
    Ok(SignInAttempt {
        allowed,
        account_failures: failures,
    })
}

pub async fn is_known_device(db: &mut dyn Db, user: UserId, device: &TokenHash) -> Result<bool> {
    let row = db
        .query_one(sign_in::KNOWN_DEVICE, values![user, &device.0[..]])
        .await?;
    Ok(rows::count(&row)? > 0)
}

pub async fn start_session(db: &mut dyn Db, session: &NewSession) -> Result<()> {
    db.execute(
        sign_in::SUCCEEDED,
        values![session.user, session.created_at],
    )
    .await?;
    if let Some(source) = &session.source {
        db.execute(sign_in::CLEAR_SOURCE, values![session.user, &source.0[..]])
            .await?;
    }
    if let Some(device) = &session.device {
        db.execute(
            sign_in::REMEMBER_DEVICE,
            values![session.user, &device.0[..], session.created_at],
        )
        .await?;
    }
    db.execute(
        "DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2",
        values![session.user, session.created_at],
    )
    .await?;
    db.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        values![
            &session.token.0[..],
            session.user,
            &session.csrf_token,
            session.created_at,
            session.expires_at
        ],
    )
    .await?;
    Ok(())
}

pub async fn session(db: &mut dyn Db, token: &TokenHash, now: i64) -> Result<Option<Session>> {
    let row = db
        .query_opt(
            "SELECT u.id, u.partner_id, u.email, u.role, u.created_at, u.last_sign_in_at,
                    s.csrf_token, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
            values![&token.0[..], now],
        )
        .await?;
    row.map(|row| {
        Ok(Session {
            user: user(&row)?,
            csrf_token: row.get(6)?,
            expires_at: row.get(7)?,
        })
    })
    .transpose()
}

pub async fn end_session(db: &mut dyn Db, token: &TokenHash) -> Result<()> {
    db.execute(
        "DELETE FROM sessions WHERE token_hash = $1",
        values![&token.0[..]],
    )
    .await?;
    Ok(())
}

pub async fn add_invitation(db: &mut dyn Db, invitation: &NewInvitation) -> Result<()> {
    db.execute(
        "INSERT INTO invitations
             (token_hash, partner_id, email, role, invited_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        values![
            &invitation.token.0[..],
            invitation.partner,
            &invitation.email,
            invitation.role.to_string(),
            invitation.invited_by,
            invitation.created_at,
            invitation.expires_at
        ],
    )
    .await?;
    Ok(())
}

pub async fn list_invitations(
    db: &mut dyn Db,
    partner: PartnerId,
    now: i64,
) -> Result<Vec<PendingInvitation>> {
    let rows = db
        .query(
            "SELECT i.email, i.role, u.email, i.created_at, i.expires_at
             FROM invitations i JOIN users u ON u.id = i.invited_by
             WHERE i.partner_id = $1 AND i.expires_at > $2
             ORDER BY i.created_at DESC, i.email",
            values![partner, now],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(PendingInvitation {
                email: row.get(0)?,
                role: row.parse(1)?,
                invited_by: row.get(2)?,
                created_at: row.get(3)?,
                expires_at: row.get(4)?,
            })
        })
        .collect()
}

pub async fn revoke_invitations(
    db: &mut dyn Db,
    partner: PartnerId,
    email: &str,
    now: i64,
) -> Result<u64> {
    let pending = db
        .query(
            "DELETE FROM invitations WHERE partner_id = $1 AND email = $2
             RETURNING expires_at",
            values![partner, email],
        )
        .await?;
    let mut live = 0;
    for row in &pending {
        if row.get::<i64>(0)? > now {
            live += 1;
        }
    }
    Ok(live)
}

pub async fn invitation(
    db: &mut dyn Db,
    token: &TokenHash,
    now: i64,
) -> Result<Option<Invitation>> {
    let row = db
        .query_opt(
            "SELECT partner_id, email, role, expires_at FROM invitations
             WHERE token_hash = $1 AND expires_at > $2",
            values![&token.0[..], now],
        )
        .await?;
    row.map(|row| {
        Ok(Invitation {
            partner: row.get(0)?,
            email: row.get(1)?,
            role: row.parse(2)?,
            expires_at: row.get(3)?,
        })
    })
    .transpose()
}

/// Turns an invitation into a user, once: deleting it takes the row (and, on PostgreSQL,
/// its lock), so two acceptances of one link cannot both win; a failure below rolls the
/// deletion back with the rest of the transaction.
pub async fn accept_invitation(
    db: &mut dyn Db,
    token: &TokenHash,
    now: i64,
    password_hash: &str,
) -> Result<Option<User>, AddUserError> {
    let row = db
        .query_opt(
            "DELETE FROM invitations WHERE token_hash = $1 AND expires_at > $2
             RETURNING partner_id, email, role",
            values![&token.0[..], now],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let (partner, email, role): (PartnerId, String, Role) =
        (row.get(0)?, row.get(1)?, row.parse(2)?);
    add_user(db, partner, &email, role, password_hash, now)
        .await
        .map(Some)
}
