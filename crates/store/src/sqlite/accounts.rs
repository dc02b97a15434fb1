//! Users, sessions, invitations and API keys on SQLite.

use std::str::FromStr;

use gridroll_domain::{ApiKeyId, PartnerId, UserId};
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

use crate::Result;
use crate::accounts::{
    AddUserError, ApiKey, Credentials, Invitation, KeyGrant, MeterOverview, NewInvitation,
    NewSession, PasswordSet, Permission, Role, Session, SignInAttempt, TokenHash, User,
};
use crate::model::ApiKeyHash;
use crate::query::Dialect;
use crate::sign_in;

const USER_COLUMNS: &str = "id, partner_id, email, role, created_at, last_sign_in_at";

/// A text column parsed into one of the store's enums.
fn parsed<T: FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(index)?;
    text.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
}

fn user(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId::from_uuid(row.get(0)?),
        partner: PartnerId::from_uuid(row.get(1)?),
        email: row.get(2)?,
        role: parsed(row, 3)?,
        created_at: row.get(4)?,
        last_sign_in_at: row.get(5)?,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation)
}

pub fn add_api_key(
    conn: &Connection,
    partner: PartnerId,
    name: &str,
    permission: Permission,
    hash: &ApiKeyHash,
    now: i64,
) -> Result<ApiKeyId> {
    let id = ApiKeyId::new();
    conn.execute(
        "INSERT INTO api_keys (id, partner_id, name, key_hash, permission, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            id.as_uuid(),
            partner.as_uuid(),
            name,
            &hash.0[..],
            permission.to_string(),
            now
        ],
    )?;
    Ok(id)
}

/// What a key grants and when it was last used.
pub fn find_api_key(
    conn: &Connection,
    hash: &ApiKeyHash,
) -> Result<Option<(KeyGrant, Option<i64>)>> {
    Ok(conn
        .prepare_cached(
            "SELECT partner_id, permission, last_used_at FROM api_keys
             WHERE key_hash = ?1 AND revoked_at IS NULL",
        )?
        .query_row([&hash.0[..]], |row| {
            let grant = KeyGrant {
                partner: PartnerId::from_uuid(row.get(0)?),
                permission: parsed(row, 1)?,
            };
            Ok((grant, row.get(2)?))
        })
        .optional()?)
}

pub fn note_api_key_use(conn: &Connection, hash: &ApiKeyHash, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE api_keys SET last_used_at = ?2 WHERE key_hash = ?1",
        params![&hash.0[..], now],
    )?;
    Ok(())
}

pub fn list_api_keys(conn: &Connection, partner: PartnerId) -> Result<Vec<ApiKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, permission, created_at, last_used_at, revoked_at FROM api_keys
         WHERE partner_id = ?1 ORDER BY id DESC",
    )?;
    let keys = stmt
        .query_map([partner.as_uuid()], |row| {
            Ok(ApiKey {
                id: ApiKeyId::from_uuid(row.get(0)?),
                name: row.get(1)?,
                permission: parsed(row, 2)?,
                created_at: row.get(3)?,
                last_used_at: row.get(4)?,
                revoked_at: row.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(keys)
}

pub fn revoke_api_key(
    conn: &Connection,
    partner: PartnerId,
    key: ApiKeyId,
    now: i64,
) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE api_keys SET revoked_at = ?3
         WHERE id = ?1 AND partner_id = ?2 AND revoked_at IS NULL",
        params![key.as_uuid(), partner.as_uuid(), now],
    )?;
    Ok(changed == 1)
}

pub fn add_user(
    conn: &Connection,
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
    conn.execute(
        "INSERT INTO users (id, partner_id, email, role, password_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            user.id.as_uuid(),
            partner.as_uuid(),
            email,
            role.to_string(),
            password_hash,
            now
        ],
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            AddUserError::EmailTaken
        } else {
            AddUserError::Store(e.into())
        }
    })?;
    Ok(user)
}

pub fn set_password(
    conn: &mut Connection,
    email: &str,
    partner: Option<PartnerId>,
    password_hash: &str,
) -> Result<PasswordSet> {
    let sql = |text| Dialect::Sqlite.render(text).into_owned();
    let tx = conn.transaction()?;
    let users: Vec<uuid::Uuid> = tx
        .prepare(&sql(sign_in::USERS_BY_EMAIL))?
        .query_map(params![email, partner.map(|p| *p.as_uuid())], |row| {
            row.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    let user = match users.as_slice() {
        [] => return Ok(PasswordSet::NoSuchUser),
        [user] => *user,
        _ => return Ok(PasswordSet::Ambiguous),
    };
    tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user])?;
    tx.execute(&sql(sign_in::CLEAR_USER), [user])?;
    tx.execute(
        "UPDATE users SET password_hash = ?2, failed_sign_ins = 0 WHERE id = ?1",
        params![user, password_hash],
    )?;
    tx.commit()?;
    Ok(PasswordSet::Changed)
}

pub fn list_users(conn: &Connection, partner: PartnerId) -> Result<Vec<User>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE partner_id = ?1 ORDER BY id"
    ))?;
    let users = stmt
        .query_map([partner.as_uuid()], user)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(users)
}

pub fn user_credentials(conn: &Connection, email: &str) -> Result<Vec<Credentials>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = ?1
         ORDER BY last_sign_in_at IS NULL, last_sign_in_at DESC, created_at"
    ))?;
    let found = stmt
        .query_map([email], |row| {
            Ok(Credentials {
                user: user(row)?,
                password_hash: row.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(found)
}

pub fn sign_in_attempt(
    conn: &mut Connection,
    user: UserId,
    source: &TokenHash,
    now: i64,
    lock_after: u32,
    lock_until: i64,
) -> Result<SignInAttempt> {
    let sql = |text| Dialect::Sqlite.render(text).into_owned();
    let tx = conn.transaction()?;
    let counted: Option<u32> = tx
        .query_row(
            &sql(sign_in::COUNT_SOURCE),
            params![user.as_uuid(), &source.0[..], now, lock_after, lock_until],
            |row| row.get(0),
        )
        .optional()?;
    let attempt = match counted {
        None => SignInAttempt {
            allowed: false,
            account_failures: tx.query_row(
                "SELECT failed_sign_ins FROM users WHERE id = ?1",
                [user.as_uuid()],
                |row| row.get(0),
            )?,
        },
        Some(_) => SignInAttempt {
            allowed: true,
            account_failures: tx.query_row(
                &sql(sign_in::COUNT_ACCOUNT),
                [user.as_uuid()],
                |row| row.get(0),
            )?,
        },
    };
    tx.commit()?;
    Ok(attempt)
}

pub fn is_known_device(conn: &Connection, user: UserId, device: &TokenHash) -> Result<bool> {
    let sql = Dialect::Sqlite.render(sign_in::KNOWN_DEVICE);
    let found: i64 = conn.query_row(&sql, params![user.as_uuid(), &device.0[..]], |row| {
        row.get(0)
    })?;
    Ok(found > 0)
}

pub fn start_session(conn: &mut Connection, session: &NewSession) -> Result<()> {
    let sql = |text| Dialect::Sqlite.render(text).into_owned();
    let tx = conn.transaction()?;
    tx.execute(
        &sql(sign_in::SUCCEEDED),
        params![session.user.as_uuid(), session.created_at],
    )?;
    if let Some(source) = &session.source {
        tx.execute(
            &sql(sign_in::CLEAR_SOURCE),
            params![session.user.as_uuid(), &source.0[..]],
        )?;
    }
    if let Some(device) = &session.device {
        tx.execute(
            &sql(sign_in::REMEMBER_DEVICE),
            params![session.user.as_uuid(), &device.0[..], session.created_at],
        )?;
    }
    tx.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2",
        params![session.user.as_uuid(), session.created_at],
    )?;
    tx.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            &session.token.0[..],
            session.user.as_uuid(),
            session.csrf_token,
            session.created_at,
            session.expires_at
        ],
    )?;
    tx.commit()?;
    Ok(())
}

pub fn session(conn: &Connection, token: &TokenHash, now: i64) -> Result<Option<Session>> {
    Ok(conn
        .query_row(
            "SELECT u.id, u.partner_id, u.email, u.role, u.created_at, u.last_sign_in_at,
                    s.csrf_token, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2",
            params![&token.0[..], now],
            |row| {
                Ok(Session {
                    user: user(row)?,
                    csrf_token: row.get(6)?,
                    expires_at: row.get(7)?,
                })
            },
        )
        .optional()?)
}

pub fn end_session(conn: &Connection, token: &TokenHash) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [&token.0[..]])?;
    Ok(())
}

pub fn add_invitation(conn: &Connection, invitation: &NewInvitation) -> Result<()> {
    conn.execute(
        "INSERT INTO invitations
             (token_hash, partner_id, email, role, invited_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            &invitation.token.0[..],
            invitation.partner.as_uuid(),
            invitation.email,
            invitation.role.to_string(),
            invitation.invited_by.as_uuid(),
            invitation.created_at,
            invitation.expires_at
        ],
    )?;
    Ok(())
}

pub fn invitation(conn: &Connection, token: &TokenHash, now: i64) -> Result<Option<Invitation>> {
    Ok(conn
        .query_row(
            "SELECT partner_id, email, role, expires_at FROM invitations
             WHERE token_hash = ?1 AND expires_at > ?2",
            params![&token.0[..], now],
            |row| {
                Ok(Invitation {
                    partner: PartnerId::from_uuid(row.get(0)?),
                    email: row.get(1)?,
                    role: parsed(row, 2)?,
                    expires_at: row.get(3)?,
                })
            },
        )
        .optional()?)
}

pub fn accept_invitation(
    conn: &mut Connection,
    token: &TokenHash,
    now: i64,
    password_hash: &str,
) -> Result<Option<User>, AddUserError> {
    let tx = conn.transaction().map_err(crate::StoreError::from)?;
    let Some(found) = invitation(&tx, token, now)? else {
        return Ok(None);
    };
    tx.execute(
        "DELETE FROM invitations WHERE token_hash = ?1",
        [&token.0[..]],
    )
    .map_err(crate::StoreError::from)?;
    let user = add_user(
        &tx,
        found.partner,
        &found.email,
        found.role,
        password_hash,
        now,
    )?;
    tx.commit().map_err(crate::StoreError::from)?;
    Ok(Some(user))
}

pub fn meter_overview(conn: &Connection, partner: PartnerId) -> Result<MeterOverview> {
    let mut stmt = conn.prepare_cached(&MeterOverview::sql("?1"))?;
    let columns = stmt.column_count();
    let rows = stmt
        .query_map([partner.as_uuid()], |row| {
            let counts = (1..columns)
                .map(|i| row.get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0)))
                .collect::<rusqlite::Result<Vec<u64>>>()?;
            Ok((row.get(0)?, counts))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(MeterOverview::from_rows(rows))
}
