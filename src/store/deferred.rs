//! Writes that nobody waits for, sent together. sqlx hands every SQLite statement to the
//! connection's worker thread and waits for the answer: a hand-off per statement, which costs
//! more than most of the statements. On SQLite a transaction's writes that return nothing
//! (updating the ticket, a comment, history lines, outbox rows, the mail's outcome) are kept
//! back and sent in front of the next statement that reads, or at commit, as one
//! multi-statement call; SQLite binds each statement's `$N` from the shared list of values. On
//! PostgreSQL, where one call takes one statement with values, they are sent at once.
//!
//! A deferred write that fails reports its error with the statement it went out with; the
//! transaction fails either way.

use sqlx::any::AnyArguments;
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{Any, AssertSqlSafe};

use super::{Dialect, StoreError, Tx};

/// A value bound to a deferred statement.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Vec<u8>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}

impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::Int(v)
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_string()))
    }
}

impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}

impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Val::Text(v.map(String::from))
    }
}

impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Self {
        Val::Blob(v)
    }
}

/// `$N` placeholders moved up by `offset`.
fn renumber(sql: &str, offset: usize) -> String {
    if offset == 0 {
        return sql.to_string();
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            let n: usize = sql[start..end].parse().unwrap_or(0);
            out.push_str(&sql[copied..i]);
            out.push('$');
            out.push_str(&(n + offset).to_string());
            copied = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    out
}

macro_rules! bind_vals {
    ($q:expr, $vals:expr) => {{
        let mut q = $q;
        for v in $vals {
            q = match v {
                Val::Int(i) => q.bind(i),
                Val::Text(t) => q.bind(t),
                Val::Blob(b) => q.bind(b),
            };
        }
        q
    }};
}

pub(crate) fn bind_query(
    q: Query<'_, Any, AnyArguments>,
    vals: Vec<Val>,
) -> Query<'_, Any, AnyArguments> {
    bind_vals!(q, vals)
}

pub(crate) fn bind_query_as<O>(
    q: QueryAs<'_, Any, O, AnyArguments>,
    vals: Vec<Val>,
) -> QueryAs<'_, Any, O, AnyArguments> {
    bind_vals!(q, vals)
}

pub(crate) fn bind_scalar<O>(
    q: QueryScalar<'_, Any, O, AnyArguments>,
    vals: Vec<Val>,
) -> QueryScalar<'_, Any, O, AnyArguments> {
    bind_vals!(q, vals)
}

impl Tx {
    /// A write whose result nobody waits for: kept back on SQLite, sent at once on PostgreSQL.
    pub(crate) async fn defer(&mut self, sql: String, vals: Vec<Val>) -> Result<(), StoreError> {
        // A ticket read ahead may be what this write changes.
        self.prefetched = None;
        match self.dialect {
            Dialect::Sqlite => {
                self.pending.push((sql, vals));
                Ok(())
            }
            Dialect::Postgres => {
                bind_query(sqlx::query::<Any>(AssertSqlSafe(sql)), vals)
                    .execute(&mut *self.inner)
                    .await
                    .map_err(|e| self.error(e))?;
                Ok(())
            }
        }
    }

    /// `sql` with the pending writes in front of it (its placeholders moved after theirs), and
    /// their values, which are bound first. The pending writes are taken.
    pub(crate) fn with_pending(&mut self, sql: &str) -> (String, Vec<Val>) {
        if self.pending.is_empty() {
            return (sql.to_string(), Vec::new());
        }
        let mut text = String::new();
        let mut vals: Vec<Val> = Vec::new();
        for (s, v) in self.pending.drain(..) {
            text.push_str(&renumber(&s, vals.len()));
            text.push_str(";\n");
            vals.extend(v);
        }
        text.push_str(&renumber(sql, vals.len()));
        (text, vals)
    }

    /// Sends the pending writes.
    pub(crate) async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let (mut sql, vals) = self.with_pending("");
        // The last statement of the batch is the empty one `with_pending` was given.
        sql.truncate(sql.trim_end().len());
        bind_query(sqlx::query::<Any>(AssertSqlSafe(sql)), vals)
            .execute(&mut *self.inner)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_move_after_the_ones_before() {
        assert_eq!(
            renumber("UPDATE t SET a = $1, b = $12 WHERE c = '$x'", 3),
            "UPDATE t SET a = $4, b = $15 WHERE c = '$x'"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
    }
}
