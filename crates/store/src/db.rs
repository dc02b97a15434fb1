//! The small abstraction the store's rules are written once over: a statement in
//! PostgreSQL's text (`$1` placeholders) with neutral [`Value`]s, run by a [`Db`] of either
//! backend, which answers neutral [`Row`]s. Each backend renders the statement in its
//! dialect ([`Dialect::render`]) and converts values both ways; what differs beyond
//! placeholders (`COPY`, arrays, `FOR UPDATE`, the chunk's batched statements) stays in
//! the backend.

use async_trait::async_trait;
use gridroll_domain::{ApiKeyId, EventId, JobId, MeterId, PartnerId, UserId, WebhookId};
use uuid::Uuid;

pub use crate::query::Dialect;
use crate::{Result, StoreError};

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Uuid(Uuid),
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Self::Int(i64::from(v))
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        // Counts and sequences stay far below i64::MAX.
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Self::from(v as u64)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Self::Bytes(v.to_vec())
    }
}

impl From<Uuid> for Value {
    fn from(v: Uuid) -> Self {
        Self::Uuid(v)
    }
}

macro_rules! id_values {
    ($($id:ty),+) => {$(
        impl From<$id> for Value {
            fn from(v: $id) -> Self {
                Self::Uuid(*v.as_uuid())
            }
        }
        impl FromValue for $id {
            fn from_value(value: &Value) -> Option<Self> {
                Uuid::from_value(value).map(<$id>::from_uuid)
            }
        }
    )+};
}

id_values!(
    PartnerId, JobId, MeterId, UserId, ApiKeyId, WebhookId, EventId
);

impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Self {
        v.as_deref().map_or(Self::Null, Value::from)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// The values of a statement, in placeholder order: `params![a, b]`.
#[macro_export]
macro_rules! values {
    ($($value:expr),* $(,)?) => {
        &[$($crate::db::Value::from($value)),*][..]
    };
}

/// A row as a statement answered it.
#[derive(Debug, Clone, Default)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// The column at `index` as a `T`; a column of another type is stored data this
    /// release does not expect.
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T> {
        let value = self.0.get(index).unwrap_or(&Value::Null);
        T::from_value(value).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "column {index} holds {value:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// The column at `index`, parsed from its text (an enum stored by name).
    pub fn parse<T: std::str::FromStr>(&self, index: usize) -> Result<T> {
        let text: String = self.get(index)?;
        text.parse()
            .map_err(|_| StoreError::Corrupt(format!("unexpected value {text:?}")))
    }

    /// Like [`Row::parse`], for a column that may be NULL.
    pub fn parse_opt<T: std::str::FromStr>(&self, index: usize) -> Result<Option<T>> {
        match self.0.get(index) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.parse(index).map(Some),
        }
    }
}

/// A Rust value read from a column.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }
}

impl FromValue for u64 {
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).and_then(|i| u64::try_from(i).ok())
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).and_then(|i| u32::try_from(i).ok())
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            // SQLite keeps booleans as integers.
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(t) => Some(t.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl FromValue for Uuid {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Uuid(u) => Some(*u),
            // SQLite keeps UUIDs as 16-byte blobs.
            Value::Bytes(b) => Uuid::from_slice(b).ok(),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// A connection or transaction of either backend. Statements are written in PostgreSQL's
/// text and rendered for the backend's dialect.
#[async_trait]
pub trait Db: Send {
    fn dialect(&self) -> Dialect;

    /// Runs a statement of fixed text (prepared once per connection) and answers its rows.
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;

    /// Runs a statement and answers how many rows it changed.
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Runs a statement whose text varies from call to call (a built filter): not kept
    /// prepared, so that its variants do not pile up on every connection.
    async fn query_built(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;

    /// Like [`Db::execute`], for a statement whose text varies from call to call.
    async fn execute_built(&mut self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Adds `rows` to `table`, each a value per column of `columns`: a bulk write, with
    /// no statement to plan per batch (a binary `COPY` on PostgreSQL, a prepared insert
    /// stepped per row on SQLite).
    async fn insert_rows(
        &mut self,
        table: &str,
        columns: &[Column<'_>],
        rows: &[Vec<Value>],
    ) -> Result<()>;
}

/// A column that [`Db::insert_rows`] writes: its name and the kind of its values (a
/// binary `COPY` sends each in its column's type, NULL included).
#[derive(Debug, Clone, Copy)]
pub struct Column<'n> {
    pub name: &'n str,
    pub kind: Kind,
}

/// The kinds of column the store writes in bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Text,
    Bytes,
    Uuid,
}

/// `name kind, ...`: the columns of a bulk write.
#[macro_export]
macro_rules! columns {
    ($($name:ident: $kind:ident),* $(,)?) => {
        &[$($crate::db::Column { name: stringify!($name), kind: $crate::db::Kind::$kind }),*]
    };
}

impl dyn Db + '_ {
    /// The one row a statement answers, if any.
    pub async fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// The one row a statement must answer.
    pub async fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a statement answered no row".to_owned()))
    }
}

/// Drives a future that never waits: the work SQLite does on its own thread, where every
/// statement completes as it is called. A future that does wait is a bug, reported as such.
pub fn run_now<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => Err(StoreError::Corrupt(
            "work on the SQLite writer waited for something other than SQLite".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_read_as_each_backend_stores_them() {
        let id = Uuid::now_v7();
        let row = Row(vec![
            Value::Bytes(id.as_bytes().to_vec()),
            Value::Uuid(id),
            Value::Int(1),
            Value::Null,
            Value::Text("COMPLETED".to_owned()),
        ]);
        assert_eq!(row.get::<Uuid>(0).unwrap(), id);
        assert_eq!(row.get::<Uuid>(1).unwrap(), id);
        assert!(row.get::<bool>(2).unwrap());
        assert_eq!(row.get::<Option<String>>(3).unwrap(), None);
        assert_eq!(
            row.parse::<gridroll_domain::job::JobStatus>(4).unwrap(),
            gridroll_domain::job::JobStatus::Completed
        );
        assert!(matches!(row.get::<String>(2), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_future_that_never_waits_is_run_at_once_and_one_that_waits_is_refused() {
        assert_eq!(run_now(async { Ok(7) }).unwrap(), 7);
        let waits = async {
            std::future::pending::<()>().await;
            Ok(())
        };
        assert!(run_now(waits).is_err());
    }
}
