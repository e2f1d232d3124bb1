//! The shared statements (`store/sql/`) on a PostgreSQL transaction. The store's operations run on the
//! blocking pool, as with SQLite; each statement here waits for its answer on the runtime that drives the
//! connection (`Handle::block_on`, allowed on a blocking thread). Placeholders are renumbered (`?1` to
//! `$1`) and prepared statements cached per connection.

use std::collections::HashMap;

use bytes::BytesMut;
use futures_util::StreamExt as _;
use tokio::runtime::Handle;
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use crate::store::StoreError;
use crate::store::cam::Snapshot as CamSnapshot;
use crate::store::changes::StartView;
use crate::store::groups::GroupRow;
use crate::store::sql::changes::View;
use crate::store::sql::persons::INDEXED_FACES;
use crate::store::sql::vectors::decode;
use crate::store::sql::{self, Backend, Row, Sql, SqlError, Value, numbered_placeholders};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// A transaction of a pooled connection, run from a blocking thread.
pub struct Transaction<'a> {
    pub(super) tx: &'a deadpool_postgres::Transaction<'a>,
    pub(super) runtime: Handle,
}

impl From<tokio_postgres::Error> for SqlError {
    fn from(e: tokio_postgres::Error) -> Self {
        SqlError::Db(Box::new(e))
    }
}

impl Transaction<'_> {
    fn prepared(&self, sql: &str) -> sql::Result<tokio_postgres::Statement> {
        Ok(self
            .runtime
            .block_on(self.tx.prepare_cached(&numbered_placeholders(sql)))?)
    }
}

fn refs(args: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Sql for Transaction<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn run(&self, sql: &str, args: &[Value]) -> sql::Result<u64> {
        let statement = self.prepared(sql)?;
        Ok(self
            .runtime
            .block_on(self.tx.execute(&statement, &refs(args)))?)
    }

    fn each_row(
        &self,
        sql: &str,
        args: &[Value],
        each: &mut dyn FnMut(&Row) -> sql::Result<()>,
    ) -> sql::Result<()> {
        let statement = self.prepared(sql)?;
        let rows = self
            .runtime
            .block_on(self.tx.query(&statement, &refs(args)))?;
        for row in &rows {
            let values = (0..row.len())
                .map(|i| column(row, i))
                .collect::<sql::Result<Vec<_>>>()?;
            each(&Row::new(values))?;
        }
        Ok(())
    }
}

/// A snapshot as the start view: as the shared statements read it, but for the vectors, which stream in
/// with binary COPY, row by row (a million faces are neither held as rows nor parsed from text).
pub struct StartSnapshot<'a>(pub &'a Transaction<'a>);

impl StartView for StartSnapshot<'_> {
    fn last_change(&self) -> Result<u64, StoreError> {
        View(self.0).last_change()
    }

    fn groups(&self) -> Result<Vec<GroupRow>, StoreError> {
        View(self.0).groups()
    }

    fn face_counts(&self) -> Result<HashMap<String, u64>, StoreError> {
        View(self.0).face_counts()
    }

    fn for_each_indexed_face(
        &self,
        each: &mut dyn FnMut(&str, &str, &str, Vec<f32>),
    ) -> Result<(), StoreError> {
        let Transaction { tx, runtime } = self.0;
        let copy = format!("COPY ({INDEXED_FACES}) TO STDOUT (FORMAT binary)");
        let stream = runtime.block_on(tx.copy_out(copy.as_str()))?;
        let rows =
            BinaryCopyOutStream::new(stream, &[Type::TEXT, Type::TEXT, Type::TEXT, Type::BYTEA]);
        let mut rows = std::pin::pin!(rows);
        while let Some(row) = runtime.block_on(rows.next()) {
            let row = row?;
            let column = |i| {
                row.try_get::<&str>(i)
                    .map_err(|e| StoreError::from(SqlError::Type(i, e.to_string())))
            };
            let embedding: &[u8] = row
                .try_get(3)
                .map_err(|e| StoreError::from(SqlError::Type(3, e.to_string())))?;
            each(column(0)?, column(1)?, column(2)?, decode(embedding));
        }
        Ok(())
    }

    fn group_vectors(
        &self,
        group_id: &str,
        model: &str,
    ) -> Result<Vec<(String, u64, Vec<f32>)>, StoreError> {
        View(self.0).group_vectors(group_id, model)
    }

    fn cam(&self) -> Result<CamSnapshot, StoreError> {
        View(self.0).cam()
    }
}

/// Column `i` of a PostgreSQL row as a `Value`, by its type.
fn column(row: &tokio_postgres::Row, i: usize) -> sql::Result<Value> {
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        i: usize,
    ) -> sql::Result<Option<T>> {
        row.try_get(i).map_err(|e| SqlError::Type(i, e.to_string()))
    }
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
    let real = |v: Option<f64>| v.map_or(Value::Null, Value::Real);
    Ok(match *row.columns()[i].type_() {
        Type::INT2 => int(get::<i16>(row, i)?.map(i64::from)),
        Type::INT4 => int(get::<i32>(row, i)?.map(i64::from)),
        Type::INT8 => int(get::<i64>(row, i)?),
        Type::BOOL => int(get::<bool>(row, i)?.map(i64::from)),
        Type::FLOAT4 => real(get::<f32>(row, i)?.map(f64::from)),
        Type::FLOAT8 => real(get::<f64>(row, i)?),
        Type::BYTEA => get::<Vec<u8>>(row, i)?.map_or(Value::Null, Value::Blob),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            get::<String>(row, i)?.map_or(Value::Null, Value::Text)
        }
        ref other => {
            return Err(SqlError::Type(
                i,
                format!("unsupported column type {other}"),
            ));
        }
    })
}

/// A value as the parameter type PostgreSQL inferred for its placeholder: integers narrowed (checked)
/// or widened to the column's, numbers to floats, text as text.
impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT8 => i.to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => i.to_string().to_sql(ty, out),
                _ => Err(format!("an integer for a parameter of type {ty}").into()),
            },
            Value::Real(r) => match *ty {
                Type::FLOAT4 => (*r as f32).to_sql(ty, out),
                Type::FLOAT8 => r.to_sql(ty, out),
                _ => Err(format!("a real number for a parameter of type {ty}").into()),
            },
            Value::Text(s) => s.as_str().to_sql(ty, out),
            Value::Blob(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
