//! [`Db`] on a SQLite connection: statements rendered with `?n` placeholders and kept
//! prepared per connection (in its small cache), values converted both ways. Every call completes as it is
//! made, so work over it runs to the end in one poll (`db::run_now`).

use async_trait::async_trait;
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::db::{Column, Db, Dialect, Row, Value};
use crate::{Result, StoreError};

/// A connection the store owns while work runs on it.
pub struct SqliteDb {
    conn: Connection,
}

impl SqliteDb {
    pub fn new(conn: Connection) -> Self {
        Self { conn }
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn into_inner(self) -> Connection {
        self.conn
    }

    /// Runs `work` in a transaction that takes the write lock at once (`BEGIN
    /// IMMEDIATE`), committed if it succeeds and rolled back otherwise.
    pub fn in_transaction<T>(&mut self, work: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match work(self) {
            Ok(value) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(value)
            }
            Err(e) => {
                // A failed rollback leaves nothing worse than the failure reported.
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn run(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let mut statement = self.conn.prepare_cached(&Dialect::Sqlite.render(sql))?;
        let columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(params.iter().map(Bound)))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns)
                .map(|i| read(row.get_ref(i)?))
                .collect::<Result<Vec<Value>>>()?;
            out.push(Row(values));
        }
        Ok(out)
    }

    fn change(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut statement = self.conn.prepare_cached(&Dialect::Sqlite.render(sql))?;
        let changed = statement.execute(rusqlite::params_from_iter(params.iter().map(Bound)))?;
        Ok(changed as u64)
    }
}

/// A value bound as SQLite stores it, its text and bytes lent rather than copied.
struct Bound<'v>(&'v Value);

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Bool(b) => ValueRef::Integer(i64::from(*b)),
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Float(f) => ValueRef::Real(*f),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Bytes(b) => ValueRef::Blob(b),
            Value::Uuid(u) => ValueRef::Blob(u.as_bytes()),
        }))
    }
}

fn read(value: ValueRef<'_>) -> Result<Value> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|e| StoreError::Corrupt(format!("text that is not UTF-8: {e}")))?
                .to_owned(),
        ),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    })
}

#[async_trait]
impl Db for SqliteDb {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.run(sql, params)
    }

    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.change(sql, params)
    }

    // SQLite's statement cache is small and evicts the least used, so built statements
    // may go through it too.
    async fn query_built(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.run(sql, params)
    }

    async fn execute_built(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.change(sql, params)
    }

    async fn insert_rows(
        &mut self,
        table: &str,
        columns: &[Column<'_>],
        rows: &[Vec<Value>],
    ) -> Result<()> {
        let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        let places: Vec<String> = (1..=columns.len()).map(|n| format!("?{n}")).collect();
        let mut insert = self.conn.prepare_cached(&format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            places.join(", ")
        ))?;
        for row in rows {
            insert.execute(rusqlite::params_from_iter(row.iter().map(Bound)))?;
        }
        Ok(())
    }
}
