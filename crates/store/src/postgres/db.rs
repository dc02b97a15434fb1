//! [`Db`] on a PostgreSQL connection or transaction: statements of fixed text kept
//! prepared per connection, values bound as the parameter types the server expects, and
//! rows read by their columns' types.

use async_trait::async_trait;
use bytes::BytesMut;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::{IsNull, ToSql, Type};

use crate::db::{Column, Db, Dialect, Kind, Row, Value};
use crate::{Result, StoreError};

/// A client or transaction of the pool, as a [`Db`].
pub struct PgDb<'c, C: GenericClient + CopyIn + Sync> {
    client: &'c C,
}

impl<'c, C: GenericClient + CopyIn + Sync> PgDb<'c, C> {
    pub fn new(client: &'c C) -> Self {
        Self { client }
    }
}

/// What `COPY ... FROM STDIN` is started on: a client of the pool, or a transaction.
#[async_trait]
pub trait CopyIn {
    async fn copy_in_sink(
        &self,
        sql: &str,
    ) -> std::result::Result<tokio_postgres::CopyInSink<bytes::Bytes>, tokio_postgres::Error>;
}

// The `COPY` statement is kept prepared like any other: preparing it anew would cost
// each chunk a round trip per table it copies into.
#[async_trait]
impl CopyIn for deadpool_postgres::Object {
    async fn copy_in_sink(
        &self,
        sql: &str,
    ) -> std::result::Result<tokio_postgres::CopyInSink<bytes::Bytes>, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.copy_in(&statement).await
    }
}

#[async_trait]
impl CopyIn for deadpool_postgres::Transaction<'_> {
    async fn copy_in_sink(
        &self,
        sql: &str,
    ) -> std::result::Result<tokio_postgres::CopyInSink<bytes::Bytes>, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.copy_in(&statement).await
    }
}

fn pg_type(kind: Kind) -> Type {
    match kind {
        Kind::Bool => Type::BOOL,
        Kind::Int => Type::INT8,
        Kind::Text => Type::TEXT,
        Kind::Bytes => Type::BYTEA,
        Kind::Uuid => Type::UUID,
    }
}

fn params(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

#[async_trait]
impl<C: GenericClient + CopyIn + Sync> Db for PgDb<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn query(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let statement = self.client.prepare_cached(sql).await?;
        let rows = self.client.query(&statement, &params(values)).await?;
        rows.iter().map(row).collect()
    }

    async fn execute(&mut self, sql: &str, values: &[Value]) -> Result<u64> {
        let statement = self.client.prepare_cached(sql).await?;
        Ok(self.client.execute(&statement, &params(values)).await?)
    }

    async fn query_built(&mut self, sql: &str, values: &[Value]) -> Result<Vec<Row>> {
        let rows = self.client.query(sql, &params(values)).await?;
        rows.iter().map(row).collect()
    }

    async fn execute_built(&mut self, sql: &str, values: &[Value]) -> Result<u64> {
        Ok(self.client.execute(sql, &params(values)).await?)
    }

    async fn insert_rows(
        &mut self,
        table: &str,
        columns: &[Column<'_>],
        rows: &[Vec<Value>],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
        let types: Vec<Type> = columns.iter().map(|c| pg_type(c.kind)).collect();
        let sink = self
            .client
            .copy_in_sink(&format!(
                "COPY {table} ({}) FROM STDIN BINARY",
                names.join(", ")
            ))
            .await?;
        let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
        futures_util::pin_mut!(writer);
        for row in rows {
            writer.as_mut().write(&params(row)).await?;
        }
        writer.finish().await?;
        Ok(())
    }
}

/// A row of the driver as a neutral [`Row`], by its columns' types.
pub fn row(row: &tokio_postgres::Row) -> Result<Row> {
    let values = row
        .columns()
        .iter()
        .enumerate()
        .map(|(i, column)| column_value(row, i, column.type_()))
        .collect::<Result<Vec<Value>>>()?;
    Ok(Row(values))
}

fn column_value(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Result<Value> {
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        i: usize,
        into: impl FnOnce(T) -> Value,
    ) -> Result<Value> {
        Ok(row.try_get::<_, Option<T>>(i)?.map_or(Value::Null, into))
    }
    match *ty {
        Type::BOOL => get(row, i, Value::Bool),
        Type::INT2 => get(row, i, |n: i16| Value::Int(i64::from(n))),
        Type::INT4 => get(row, i, |n: i32| Value::Int(i64::from(n))),
        Type::INT8 => get(row, i, Value::Int),
        Type::FLOAT4 => get(row, i, |n: f32| Value::Float(f64::from(n))),
        Type::FLOAT8 => get(row, i, Value::Float),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get(row, i, Value::Text),
        Type::BYTEA => get(row, i, Value::Bytes),
        Type::UUID => get(row, i, Value::Uuid),
        ref other => Err(StoreError::Corrupt(format!(
            "a column of type {other} is not one the store reads"
        ))),
    }
}

/// Values are bound as the type the server asks for: an integer as the column's width,
/// NULL for any type.
impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Bool(b) => b.to_sql(ty, out),
            Value::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Float(f) => f.to_sql(ty, out),
            Value::Text(t) => t.to_sql(ty, out),
            Value::Bytes(b) => b.to_sql(ty, out),
            Value::Uuid(u) => u.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value, by the type each holds (see `to_sql_checked`).
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let fits = match self {
            Value::Null => true,
            Value::Bool(_) => <bool as ToSql>::accepts(ty),
            Value::Int(_) => {
                matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8 | Type::FLOAT8)
            }
            Value::Float(_) => <f64 as ToSql>::accepts(ty),
            Value::Text(_) => <String as ToSql>::accepts(ty),
            Value::Bytes(_) => <Vec<u8> as ToSql>::accepts(ty),
            Value::Uuid(_) => <uuid::Uuid as ToSql>::accepts(ty),
        };
        if !fits {
            return Err(format!("cannot bind {self:?} as {ty}").into());
        }
        self.to_sql(ty, out)
    }
}
