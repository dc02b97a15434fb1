//! Counting failed sign-ins per source. A source
//! is the SHA-256 of a browser the user signed in from before, or of the client's
//! address: the source that keeps failing is locked out of the account, and the user,
//! signing in from elsewhere (or from a browser they used before), is not.

/// Counts an attempt of a source on a user; answers the source's failures in a row, or
/// nothing while it is locked out (then nothing is counted). $1 user, $2 source, $3 now,
/// $4 failures that lock, $5 locked until.
pub const COUNT_SOURCE: &str =
    "INSERT INTO sign_in_failures (user_id, source, failures, locked_until)
     VALUES ($1, $2, 1, CASE WHEN 1 >= CAST($4 AS INTEGER) THEN CAST($5 AS BIGINT) END)
     ON CONFLICT (user_id, source) DO UPDATE SET
         failures = CASE WHEN sign_in_failures.locked_until IS NOT NULL THEN 1
                         ELSE sign_in_failures.failures + 1 END,
         locked_until = CASE WHEN (CASE WHEN sign_in_failures.locked_until IS NOT NULL THEN 1
                                        ELSE sign_in_failures.failures + 1 END)
                                  >= CAST($4 AS INTEGER)
                             THEN CAST($5 AS BIGINT) END
         WHERE sign_in_failures.locked_until IS NULL OR sign_in_failures.locked_until <= $3
     RETURNING failures";

/// Counts an attempt on the account, from any source; answers its failures in a row.
/// $1 user.
pub const COUNT_ACCOUNT: &str = "UPDATE users SET failed_sign_ins = failed_sign_ins + 1 WHERE id = $1 RETURNING failed_sign_ins";

/// A sign-in succeeded: the account's count starts again. $1 user, $2 now.
pub const SUCCEEDED: &str =
    "UPDATE users SET failed_sign_ins = 0, last_sign_in_at = $2 WHERE id = $1";

/// ... and the source's. $1 user, $2 source.
pub const CLEAR_SOURCE: &str = "DELETE FROM sign_in_failures WHERE user_id = $1 AND source = $2";

/// Remembers the browser a user signed in from. $1 user, $2 device, $3 now.
pub const REMEMBER_DEVICE: &str = "INSERT INTO sign_in_devices (user_id, device, created_at)
     VALUES ($1, $2, $3) ON CONFLICT (user_id, device) DO NOTHING";

/// Whether a browser is one the user signed in from. $1 user, $2 device.
pub const KNOWN_DEVICE: &str =
    "SELECT count(*) FROM sign_in_devices WHERE user_id = $1 AND device = $2";

/// Every count of a user, for a new password. $1 user.
pub const CLEAR_USER: &str = "DELETE FROM sign_in_failures WHERE user_id = $1";

/// The users a new password is for. $1 email, $2 partner or NULL (compared first, so
/// that PostgreSQL learns its type).
pub const USERS_BY_EMAIL: &str =
    "SELECT id FROM users WHERE email = $1 AND (partner_id = $2 OR $2 IS NULL)";
