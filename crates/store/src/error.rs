use std::error::Error as StdError;

/// What can go wrong in the store. None of these is the caller's fault; they map to 5xx,
/// except [`StoreError::LeaseLost`], which a worker handles by moving on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The message says the database's own (code and text); it is not repeated as a
    /// source.
    #[error("database error: {0}")]
    Database(Box<dyn StdError + Send + Sync>),
    /// A row with the same key exists (a unique index refused the write).
    #[error("a row with the same key exists")]
    Conflict,
    /// The disk (or the database's size limit) is full: the change was not made.
    #[error("the database has no storage left: {0}")]
    StorageFull(String),
    #[error("stored data is not what this version expects: {0}")]
    Corrupt(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("another worker holds the job's lease")]
    LeaseLost,
    #[error("a database task stopped unexpectedly")]
    Task,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Says where storage ran out, for errors that do not say it themselves.
    pub(crate) fn at(self, location: &std::path::Path) -> Self {
        match self {
            Self::StorageFull(message) => {
                Self::StorageFull(format!("{}: {message}", location.display()))
            }
            other => other,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        const UNIQUE: i32 = 2067; // SQLITE_CONSTRAINT_UNIQUE
        const PRIMARY_KEY: i32 = 1555; // SQLITE_CONSTRAINT_PRIMARYKEY
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.extended_code, UNIQUE | PRIMARY_KEY) =>
            {
                Self::Conflict
            }
            _ if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => {
                Self::StorageFull(e.to_string())
            }
            _ => Self::Database(Box::new(e)),
        }
    }
}
