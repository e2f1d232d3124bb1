//! The SQL both backends run: the statements of every named operation (`store/<area>.rs`), written once in
//! the subset SQLite and PostgreSQL share (`?N` placeholders, `ON CONFLICT`, `RETURNING`, `rowid` for
//! creation order, which the PostgreSQL schema names as a column) and run on a connection of either through
//! `Sql`. So each rule a write checks on what it read is written once and holds the same on both backends.
//!
//! `Sql` has the shape of the rusqlite calls it replaced (`query_row`, `prepare(..).query_map`,
//! `execute`, `optional`, `params!`), over owned values (`Value`) that either backend converts.

pub mod cam;
pub mod changes;
pub mod files;
pub mod groups;
pub mod jobs;
pub mod listing;
pub mod persons;
pub mod vectors;

use super::StoreError;

/// A value passed to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Which backend a connection belongs to, for the rare statement the two spell differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// `query_row` found no row (`optional` turns it into `None`).
    #[error("the query returned no rows")]
    NoRows,
    #[error("column {0}: {1}")]
    Type(usize, String),
    #[error("{0}")]
    Db(Box<dyn std::error::Error + Send + Sync>),
    /// A rule of the store, raised while reading rows.
    #[error("{0}")]
    Store(Box<StoreError>),
}

pub type Result<T, E = SqlError> = std::result::Result<T, E>;

impl From<SqlError> for StoreError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::Store(e) => *e,
            SqlError::Db(e) => StoreError::Db(e),
            other => StoreError::Db(Box::new(other)),
        }
    }
}

impl From<StoreError> for SqlError {
    fn from(e: StoreError) -> Self {
        SqlError::Store(Box::new(e))
    }
}

/// A connection, or a transaction on one, of either backend.
pub trait Sql {
    fn backend(&self) -> Backend;
    /// Run one statement with `args`; the number of rows it changed.
    fn run(&self, sql: &str, args: &[Value]) -> Result<u64>;
    /// Run one query with `args`, handing each row to `each` in order.
    fn each_row(
        &self,
        sql: &str,
        args: &[Value],
        each: &mut dyn FnMut(&Row) -> Result<()>,
    ) -> Result<()>;
}

impl<'c> dyn Sql + 'c {
    pub fn execute(&self, sql: &str, args: impl Params) -> Result<usize> {
        Ok(self.run(sql, &args.values())? as usize)
    }

    /// The first row, through `f`; `SqlError::NoRows` when there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        args: impl Params,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.each_row(sql, &args.values(), &mut |row| {
            if let Some(f) = f.take() {
                out = Some(f(row)?);
            }
            Ok(())
        })?;
        out.ok_or(SqlError::NoRows)
    }

    /// A statement to run (repeatedly).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_, 'c>> {
        Ok(Statement {
            conn: self,
            sql: sql.to_owned(),
        })
    }
}

/// A statement of a connection.
pub struct Statement<'a, 'c> {
    conn: &'a (dyn Sql + 'c),
    sql: String,
}

impl Statement<'_, '_> {
    /// Every row through `f`, as an iterator of results (like rusqlite's).
    pub fn query_map<T>(
        &mut self,
        args: impl Params,
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut out = Vec::new();
        self.conn.each_row(&self.sql, &args.values(), &mut |row| {
            out.push(Ok(f(row)?));
            Ok(())
        })?;
        Ok(out.into_iter())
    }

    /// Each row handed to `each` as it is read (large reads: the start-up load).
    pub fn for_each(
        &mut self,
        args: impl Params,
        mut each: impl FnMut(&Row) -> Result<()>,
    ) -> Result<()> {
        self.conn.each_row(&self.sql, &args.values(), &mut each)
    }

    pub fn execute(&mut self, args: impl Params) -> Result<usize> {
        self.conn.execute(&self.sql, args)
    }
}

/// `query_row`'s missing row as `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(SqlError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A row read: its values by column.
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    pub fn new(values: Vec<Value>) -> Self {
        Self { values }
    }

    /// Column `idx` as a `T` (the two type parameters are rusqlite's: `get::<_, String>(0)`).
    pub fn get<I: RowIndex, T: FromValue>(&self, idx: I) -> Result<T> {
        let i = idx.index();
        let value = self
            .values
            .get(i)
            .ok_or_else(|| SqlError::Type(i, "no such column".into()))?;
        T::from_value(value).map_err(|e| SqlError::Type(i, e))
    }
}

/// A column's position.
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// The arguments of a statement: `params![..]`, an array of values, or `[]`.
pub trait Params {
    fn values(self) -> Vec<Value>;
}

/// What `params!` makes.
pub struct Args(pub Vec<Value>);

impl Params for Args {
    fn values(self) -> Vec<Value> {
        self.0
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn values(self) -> Vec<Value> {
        self.iter().map(ToValue::to_value).collect()
    }
}

/// Arguments from expressions of any types `ToValue` knows: `params![id, name, 5_i64]`.
#[macro_export]
macro_rules! sql_params {
    () => { $crate::store::sql::Args(Vec::new()) };
    ($($e:expr),+ $(,)?) => {
        $crate::store::sql::Args(vec![$($crate::store::sql::ToValue::to_value(&$e)),+])
    };
}
pub use crate::sql_params as params;

/// A Rust value as a statement's argument.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_to_value!(i64, i32, i16, u8, u32, u64, usize);

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for f32 {
    fn to_value(&self) -> Value {
        Value::Real(*self as f64)
    }
}

/// A column's value as a Rust value.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self, String>;
}

fn wrong(value: &Value, wanted: &str) -> String {
    let found = match value {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a real number",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    };
    format!("{found} where {wanted} was expected")
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => Err(wrong(other, "text")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.clone().into_bytes()),
            other => Err(wrong(other, "a blob")),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, String> {
        i64::from_value(value).map(|i| i != 0)
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Int(i) => Ok(*i),
            other => Err(wrong(other, "an integer")),
        }
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: &Value) -> Result<Self, String> {
                let i = i64::from_value(value)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
int_from_value!(i32, u32, u64, usize);

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Real(r) => Ok(*r),
            Value::Int(i) => Ok(*i as f64),
            other => Err(wrong(other, "a number")),
        }
    }
}

impl FromValue for f32 {
    fn from_value(value: &Value) -> Result<Self, String> {
        f64::from_value(value).map(|r| r as f32)
    }
}

/// `sql` with SQLite's `?N` and `?` placeholders as PostgreSQL's `$N` (quoted text left alone).
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                } else if let Ok(n) = digits.parse::<usize>() {
                    next = next.max(n);
                }
                out.push('$');
                out.push_str(&digits);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_outside_quotes() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?2 OR d = ?1"),
            "SELECT a FROM t WHERE b = $1 AND c = $2 OR d = $1"
        );
        assert_eq!(
            numbered_placeholders("INSERT INTO t VALUES (?, ?, '?')"),
            "INSERT INTO t VALUES ($1, $2, '?')"
        );
    }

    #[test]
    fn values_convert_both_ways() {
        let row = Row::new(vec![
            Value::Int(7),
            Value::Null,
            Value::Text("x".into()),
            Value::Real(0.5),
        ]);
        assert_eq!(row.get::<_, i64>(0).unwrap(), 7);
        assert_eq!(row.get::<_, u32>(0).unwrap(), 7);
        assert_eq!(row.get::<_, Option<String>>(1).unwrap(), None);
        assert_eq!(row.get::<_, String>(2).unwrap(), "x");
        assert_eq!(row.get::<_, f64>(3).unwrap(), 0.5);
        assert!(row.get::<_, String>(0).is_err());
        assert!(row.get::<_, i64>(9).is_err());
        let args = params![1_i64, "a", Some(2.5), None::<String>, vec![1_u8]].values();
        assert_eq!(
            args,
            vec![
                Value::Int(1),
                Value::Text("a".into()),
                Value::Real(2.5),
                Value::Null,
                Value::Blob(vec![1])
            ]
        );
    }
}
