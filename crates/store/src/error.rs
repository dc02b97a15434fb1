use std::error::Error as StdError;

/// What can go wrong in the store. None of these is the caller's fault; they map to 5xx,
/// except [`StoreError::LeaseLost`], which a worker handles by moving on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[source] Box<dyn StdError + Send + Sync>),
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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(Box::new(e))
    }
}
