//! Users, sessions, invitations and API keys on PostgreSQL.

use std::str::FromStr;

use deadpool_postgres::GenericClient;
use deadpool_postgres::Object;
use gridroll_domain::{ApiKeyId, PartnerId, UserId};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use crate::accounts::{
    AddUserError, ApiKey, Credentials, Invitation, KeyGrant, MeterOverview, NewInvitation,
    NewSession, PasswordSet, Permission, Role, Session, SignInAttempt, TokenHash, User,
};
use crate::model::ApiKeyHash;
use crate::sign_in;
use crate::{Result, StoreError};
use uuid::Uuid;

const USER_COLUMNS: &str = "id, partner_id, email, role, created_at, last_sign_in_at";

/// A text column parsed into one of the store's enums.
fn parsed<T: FromStr>(row: &Row, index: usize) -> Result<T> {
    let text: &str = row.get(index);
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("unexpected value {text:?} in column {index}")))
}

fn user(row: &Row) -> Result<User> {
    Ok(User {
        id: UserId::from_uuid(row.get(0)),
        partner: PartnerId::from_uuid(row.get(1)),
        email: row.get(2),
        role: parsed(row, 3)?,
        created_at: row.get(4),
        last_sign_in_at: row.get(5),
    })
}

pub async fn add_api_key(
    client: &Object,
    partner: PartnerId,
    name: &str,
    permission: Permission,
    hash: &ApiKeyHash,
    now: i64,
) -> Result<ApiKeyId> {
    let id = ApiKeyId::new();
    client
        .execute(
            "INSERT INTO api_keys (id, partner_id, name, key_hash, permission, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                id.as_uuid(),
                partner.as_uuid(),
                &name,
                &&hash.0[..],
                &permission.to_string(),
                &now,
            ],
        )
        .await?;
    Ok(id)
}

pub async fn use_api_key(client: &Object, hash: &ApiKeyHash, now: i64) -> Result<Option<KeyGrant>> {
    let statement = client
        .prepare_cached(
            "SELECT partner_id, permission, last_used_at FROM api_keys
             WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .await?;
    let Some(row) = client.query_opt(&statement, &[&&hash.0[..]]).await? else {
        return Ok(None);
    };
    let grant = KeyGrant {
        partner: PartnerId::from_uuid(row.get(0)),
        permission: parsed(&row, 1)?,
    };
    let last_used: Option<i64> = row.get(2);
    // Unknown keys and busy ones cost no write.
    if crate::accounts::stale_use(last_used, now) {
        client
            .execute(
                "UPDATE api_keys SET last_used_at = $2 WHERE key_hash = $1",
                &[&&hash.0[..], &now],
            )
            .await?;
    }
    Ok(Some(grant))
}

pub async fn list_api_keys(client: &Object, partner: PartnerId) -> Result<Vec<ApiKey>> {
    let rows = client
        .query(
            "SELECT id, name, permission, created_at, last_used_at, revoked_at FROM api_keys
             WHERE partner_id = $1 ORDER BY id DESC",
            &[partner.as_uuid()],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ApiKey {
                id: ApiKeyId::from_uuid(row.get(0)),
                name: row.get(1),
                permission: parsed(row, 2)?,
                created_at: row.get(3),
                last_used_at: row.get(4),
                revoked_at: row.get(5),
            })
        })
        .collect()
}

pub async fn revoke_api_key(
    client: &Object,
    partner: PartnerId,
    key: ApiKeyId,
    now: i64,
) -> Result<bool> {
    let changed = client
        .execute(
            "UPDATE api_keys SET revoked_at = $3
             WHERE id = $1 AND partner_id = $2 AND revoked_at IS NULL",
            &[key.as_uuid(), partner.as_uuid(), &now],
        )
        .await?;
    Ok(changed == 1)
}

pub async fn add_user(
    client: &impl GenericClient,
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
    client
        .execute(
            "INSERT INTO users (id, partner_id, email, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                user.id.as_uuid(),
                partner.as_uuid(),
                &email,
                &role.to_string(),
                &password_hash,
                &now,
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                AddUserError::EmailTaken
            } else {
                AddUserError::Store(e.into())
            }
        })?;
    Ok(user)
}

pub async fn set_password(
    client: &mut Object,
    email: &str,
    partner: Option<PartnerId>,
    password_hash: &str,
) -> Result<PasswordSet> {
    let tx = client.transaction().await?;
    let partner = partner.map(|p| *p.as_uuid());
    let users: Vec<Uuid> = tx
        .query(sign_in::USERS_BY_EMAIL, &[&email, &partner])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let user = match users.as_slice() {
        [] => return Ok(PasswordSet::NoSuchUser),
        [user] => *user,
        _ => return Ok(PasswordSet::Ambiguous),
    };
    tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user])
        .await?;
    tx.execute(sign_in::CLEAR_USER, &[&user]).await?;
    tx.execute(
        "UPDATE users SET password_hash = $2, failed_sign_ins = 0 WHERE id = $1",
        &[&user, &password_hash],
    )
    .await?;
    tx.commit().await?;
    Ok(PasswordSet::Changed)
}

pub async fn list_users(client: &Object, partner: PartnerId) -> Result<Vec<User>> {
    let rows = client
        .query(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE partner_id = $1 ORDER BY id"),
            &[partner.as_uuid()],
        )
        .await?;
    rows.iter().map(user).collect()
}

pub async fn user_credentials(client: &Object, email: &str) -> Result<Vec<Credentials>> {
    let rows = client
        .query(
            &format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1
                 ORDER BY last_sign_in_at DESC NULLS LAST, created_at"
            ),
            &[&email],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Credentials {
                user: user(row)?,
                password_hash: row.get(6),
            })
        })
        .collect()
}

pub async fn sign_in_attempt(
    client: &mut Object,
    user: UserId,
    source: &TokenHash,
    now: i64,
    lock_after: u32,
    lock_until: i64,
) -> Result<SignInAttempt> {
    let lock_after = i32::try_from(lock_after).unwrap_or(i32::MAX);
    let tx = client.transaction().await?;
    // One statement per count: concurrent attempts are counted one after the other.
    let counted = tx
        .query_opt(
            &sign_in::COUNT_SOURCE
                .replace("$4", "$4::integer")
                .replace("$5", "$5::bigint"),
            &[
                user.as_uuid(),
                &&source.0[..],
                &now,
                &lock_after,
                &lock_until,
            ],
        )
        .await?;
    let (allowed, failures): (bool, i32) = match counted {
        None => {
            let row = tx
                .query_one(
                    "SELECT failed_sign_ins FROM users WHERE id = $1",
                    &[user.as_uuid()],
                )
                .await?;
            (false, row.get(0))
        }
        Some(_) => {
            let row = tx
                .query_one(sign_in::COUNT_ACCOUNT, &[user.as_uuid()])
                .await?;
            (true, row.get(0))
        }
    };
    tx.commit().await?;
    Ok(SignInAttempt {
        allowed,
        account_failures: u32::try_from(failures).unwrap_or(0),
    })
}

pub async fn is_known_device(client: &Object, user: UserId, device: &TokenHash) -> Result<bool> {
    let row = client
        .query_one(sign_in::KNOWN_DEVICE, &[user.as_uuid(), &&device.0[..]])
        .await?;
    Ok(row.get::<_, i64>(0) > 0)
}

pub async fn start_session(client: &mut Object, session: &NewSession) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute(
        sign_in::SUCCEEDED,
        &[session.user.as_uuid(), &session.created_at],
    )
    .await?;
    if let Some(source) = &session.source {
        tx.execute(
            sign_in::CLEAR_SOURCE,
            &[session.user.as_uuid(), &&source.0[..]],
        )
        .await?;
    }
    if let Some(device) = &session.device {
        tx.execute(
            sign_in::REMEMBER_DEVICE,
            &[session.user.as_uuid(), &&device.0[..], &session.created_at],
        )
        .await?;
    }
    tx.execute(
        "DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2",
        &[session.user.as_uuid(), &session.created_at],
    )
    .await?;
    tx.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &&session.token.0[..],
            session.user.as_uuid(),
            &session.csrf_token,
            &session.created_at,
            &session.expires_at,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn session(client: &Object, token: &TokenHash, now: i64) -> Result<Option<Session>> {
    let statement = client
        .prepare_cached(
            "SELECT u.id, u.partner_id, u.email, u.role, u.created_at, u.last_sign_in_at,
                    s.csrf_token, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .await?;
    let row = client.query_opt(&statement, &[&&token.0[..], &now]).await?;
    row.map(|row| {
        Ok(Session {
            user: user(&row)?,
            csrf_token: row.get(6),
            expires_at: row.get(7),
        })
    })
    .transpose()
}

pub async fn end_session(client: &Object, token: &TokenHash) -> Result<()> {
    client
        .execute(
            "DELETE FROM sessions WHERE token_hash = $1",
            &[&&token.0[..]],
        )
        .await?;
    Ok(())
}

pub async fn add_invitation(client: &Object, invitation: &NewInvitation) -> Result<()> {
    client
        .execute(
            "INSERT INTO invitations
                 (token_hash, partner_id, email, role, invited_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &&invitation.token.0[..],
                invitation.partner.as_uuid(),
                &invitation.email,
                &invitation.role.to_string(),
                invitation.invited_by.as_uuid(),
                &invitation.created_at,
                &invitation.expires_at,
            ],
        )
        .await?;
    Ok(())
}

pub async fn invitation(
    client: &Object,
    token: &TokenHash,
    now: i64,
) -> Result<Option<Invitation>> {
    let row = client
        .query_opt(
            "SELECT partner_id, email, role, expires_at FROM invitations
             WHERE token_hash = $1 AND expires_at > $2",
            &[&&token.0[..], &now],
        )
        .await?;
    row.map(|row| {
        Ok(Invitation {
            partner: PartnerId::from_uuid(row.get(0)),
            email: row.get(1),
            role: parsed(&row, 2)?,
            expires_at: row.get(3),
        })
    })
    .transpose()
}

pub async fn accept_invitation(
    client: &mut Object,
    token: &TokenHash,
    now: i64,
    password_hash: &str,
) -> Result<Option<User>, AddUserError> {
    let tx = client.transaction().await.map_err(StoreError::from)?;
    // Deleting takes the row's lock, so two acceptances of one link cannot both win; a
    // failure below rolls the deletion back.
    let row = tx
        .query_opt(
            "DELETE FROM invitations WHERE token_hash = $1 AND expires_at > $2
             RETURNING partner_id, email, role",
            &[&&token.0[..], &now],
        )
        .await
        .map_err(StoreError::from)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let partner = PartnerId::from_uuid(row.get(0));
    let email: String = row.get(1);
    let role: Role = parsed(&row, 2)?;
    let user = add_user(&tx, partner, &email, role, password_hash, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Some(user))
}

pub async fn meter_overview(client: &Object, partner: PartnerId) -> Result<MeterOverview> {
    let rows = client
        .query(&MeterOverview::sql("$1"), &[partner.as_uuid()])
        .await?;
    let rows = rows.iter().map(|row| {
        let counts = (1..row.len())
            .map(|i| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0))
            .collect();
        (row.get(0), counts)
    });
    Ok(MeterOverview::from_rows(rows))
}
