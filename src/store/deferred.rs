//! Writes that nobody waits for, sent together. A transaction's writes that return nothing
//! (updating the ticket, a comment, history lines, outbox rows, the mail's outcome) are kept
//! back and sent before the next statement that reads, or at commit:
//!
//! - on SQLite in front of that statement, as one multi-statement call (SQLite binds each
//!   statement's `$N` from the shared list of values): sqlx hands every SQLite statement to the
//!   connection's worker thread and waits for the answer, a hand-off that costs more than most
//!   of the statements;
//! - on PostgreSQL, where one call takes one statement with values, as one statement of
//!   data-modifying `WITH` parts: a round trip each saved. Its parts do not see each other's
//!   changes, so two that change the same table's rows go out in different statements, and the
//!   read follows as a statement of its own.
//!
//! A deferred write that fails reports its error with the statement it went out with; the
//! transaction fails either way.

use sqlx::any::AnyArguments;
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{Any, AssertSqlSafe};

use super::{Dialect, StoreError, Tx};

/// A value bound to a deferred statement.
#[derive(Debug, Clone, PartialEq)]
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

/// The `VALUES` list of a multi-row insert: `row` (placeholders `$1`..`$width`) once per row,
/// numbered on (`($1, $2), ($3, $4), ...`).
pub(crate) fn value_rows(row: &str, width: usize, rows: usize) -> String {
    (0..rows)
        .map(|i| renumber(row, i * width))
        .collect::<Vec<_>>()
        .join(", ")
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
    /// A write whose result nobody waits for: kept back until the next read or the commit.
    pub(crate) async fn defer(&mut self, sql: String, vals: Vec<Val>) -> Result<(), StoreError> {
        // A ticket read ahead may be what this write changes.
        self.prefetched = None;
        self.pending.push((sql, vals));
        Ok(())
    }

    /// Notes that a pending write changes ticket `id` (see [`Tx::may_change`]).
    pub(crate) fn note_ticket_change(&mut self, id: i64) {
        self.changed_tickets.push(id);
    }

    /// Notes a ticket's id and reference, as read or written.
    pub(crate) fn note_ticket(&mut self, id: i64, reference: &str) {
        if !self.known_tickets.iter().any(|(i, _)| *i == id) {
            self.known_tickets.push((id, reference.to_string()));
        }
    }

    /// Whether the pending writes may change the ticket `reference`: unless every write to
    /// `tickets` among them was noted with its ticket, and each of those is known to be
    /// another one.
    pub(crate) fn may_change(&self, reference: &str) -> bool {
        let writes = self
            .pending
            .iter()
            .filter(|(s, _)| statement_table(s) == Some("tickets"))
            .count();
        writes != self.changed_tickets.len()
            || self.changed_tickets.iter().any(|id| {
                self.known_tickets
                    .iter()
                    .find(|(i, _)| i == id)
                    .is_none_or(|(_, r)| r == reference)
            })
    }

    /// A read's SQL and the values to bind before its own: on SQLite the pending writes go in
    /// front of it (see [`Tx::with_pending`]); on PostgreSQL they are sent first.
    pub(crate) async fn prepare_read(
        &mut self,
        sql: &str,
    ) -> Result<(String, Vec<Val>), StoreError> {
        match self.dialect {
            Dialect::Sqlite => Ok(self.with_pending(sql)),
            Dialect::Postgres => {
                self.flush().await?;
                Ok((sql.to_string(), Vec::new()))
            }
        }
    }

    /// [`Tx::prepare_read`] for a statement that reads only the tables `reads`: on PostgreSQL
    /// the pending writes then go along as `WITH` parts of it, when none of them touches those
    /// tables (the statement would not see their changes) and none changes a table's rows
    /// twice.
    pub(crate) async fn prepare_read_of(
        &mut self,
        sql: &str,
        reads: &[&str],
    ) -> Result<(String, Vec<Val>), StoreError> {
        if self.dialect == Dialect::Sqlite {
            return Ok(self.with_pending(sql));
        }
        if self.pending.is_empty() {
            // Nothing to send but perhaps the `BEGIN`.
            self.send_pending().await?;
            return Ok((sql.to_string(), Vec::new()));
        }
        let touches = self
            .pending
            .iter()
            .any(|(s, _)| statement_table(s).is_some_and(|t| reads.contains(&t)));
        if touches || !one_statement(self.pending.iter().map(|(s, _)| s.as_str())) {
            self.send_pending().await?;
            return Ok((sql.to_string(), Vec::new()));
        }
        if self.mail_unfinished() {
            // The writes wait for the mail's row, written once the mail is done with (see
            // `Tx::finish_inbound`); this read does not need them.
            return Ok((sql.to_string(), Vec::new()));
        }
        let mut vals: Vec<Val> = Vec::new();
        let mut parts: Vec<String> = Vec::new();
        self.changed_tickets.clear();
        for (i, (s, v)) in self.pending.drain(..).enumerate() {
            parts.push(format!("w{i} AS ({})", renumber(&s, vals.len())));
            vals.extend(v);
        }
        let sql = renumber(sql, vals.len());
        // A read that has `WITH` parts of its own takes the writes as its first ones.
        let sql = match sql.strip_prefix("WITH ") {
            Some(rest) => format!("WITH {}, {rest}", parts.join(", ")),
            None => format!("WITH {} {sql}", parts.join(", ")),
        };
        Ok((sql, vals))
    }

    /// `sql` with the pending writes in front of it (its placeholders moved after theirs), and
    /// their values, which are bound first. The pending writes are taken.
    pub(crate) fn with_pending(&mut self, sql: &str) -> (String, Vec<Val>) {
        let begin = self.take_begin();
        if self.pending.is_empty() && !begin {
            return (sql.to_string(), Vec::new());
        }
        let mut text = String::new();
        if begin {
            text.push_str("BEGIN IMMEDIATE;\n");
        }
        let mut vals: Vec<Val> = Vec::new();
        self.changed_tickets.clear();
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
        self.send_pending().await
    }

    /// Sends the pending writes (and a `BEGIN` not sent yet).
    async fn send_pending(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() && !self.needs_begin() {
            return Ok(());
        }
        if self.dialect == Dialect::Postgres {
            return self.flush_postgres().await;
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

/// The table a write goes to (`INSERT INTO t`, `UPDATE t`, `DELETE FROM t`).
fn statement_table(sql: &str) -> Option<&str> {
    let t = sql.trim_start();
    let rest = t
        .strip_prefix("INSERT INTO ")
        .or_else(|| t.strip_prefix("UPDATE "))
        .or_else(|| t.strip_prefix("DELETE FROM "))?;
    rest.split_whitespace().next()
}

/// The table whose existing rows a statement looks at to change them (`UPDATE t`, `DELETE
/// FROM t`, `INSERT INTO t ... ON CONFLICT ...`), if any.
fn rows_changed_in(sql: &str) -> Option<&str> {
    let t = sql.trim_start();
    if t.starts_with("INSERT INTO ") && !t.contains("ON CONFLICT") {
        return None;
    }
    statement_table(t)
}

/// Whether a write reads rows to make its own (`INSERT INTO t ... SELECT`). Which tables it
/// reads is not known here, so it never joins earlier writes in one statement.
pub(super) fn reads_to_write(sql: &str) -> bool {
    let t = sql.trim_start();
    t.starts_with("INSERT INTO ") && t.contains(" SELECT ")
}

/// Whether writes can go out as the parts of one PostgreSQL statement. Its parts all see the
/// rows as they were before it, so none may look at the rows of a table an earlier part wrote
/// (an `UPDATE` would miss rows inserted or change rows updated before it).
fn one_statement<'a>(writes: impl IntoIterator<Item = &'a str>) -> bool {
    let mut written: Vec<&str> = Vec::new();
    for sql in writes {
        if rows_changed_in(sql).is_some_and(|t| written.contains(&t))
            || (!written.is_empty() && reads_to_write(sql))
        {
            return false;
        }
        written.extend(statement_table(sql));
    }
    true
}

/// The pending writes as PostgreSQL statements: each a run of them joined by `WITH`, a new one
/// started where a write could not be a part of the run before it (see [`one_statement`]).
fn postgres_batches(pending: Vec<(String, Vec<Val>)>) -> Vec<(String, Vec<Val>)> {
    let mut out: Vec<(String, Vec<Val>)> = Vec::new();
    let mut run: Vec<(String, Vec<Val>)> = Vec::new();
    let close = |run: &mut Vec<(String, Vec<Val>)>, out: &mut Vec<(String, Vec<Val>)>| {
        if run.is_empty() {
            return;
        }
        let mut vals: Vec<Val> = Vec::new();
        let mut parts: Vec<String> = Vec::new();
        for (s, v) in run.drain(..) {
            parts.push(renumber(&s, vals.len()));
            vals.extend(v);
        }
        let last = parts.pop().unwrap_or_default();
        let sql = if parts.is_empty() {
            last
        } else {
            let with: Vec<String> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| format!("w{i} AS ({p})"))
                .collect();
            format!("WITH {} {last}", with.join(", "))
        };
        out.push((sql, vals));
    };
    for (sql, vals) in pending {
        let joined = run.iter().map(|(s, _)| s.as_str());
        if !one_statement(joined.chain(std::iter::once(sql.as_str()))) {
            close(&mut run, &mut out);
        }
        run.push((sql, vals));
    }
    close(&mut run, &mut out);
    out
}

impl Tx {
    async fn flush_postgres(&mut self) -> Result<(), StoreError> {
        self.changed_tickets.clear();
        for (sql, vals) in postgres_batches(std::mem::take(&mut self.pending)) {
            bind_query(sqlx::query::<Any>(AssertSqlSafe(sql)), vals)
                .execute(&mut *self.inner)
                .await
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_values_list_numbers_its_rows_on() {
        assert_eq!(
            value_rows("($1, 'q', $2, $2)", 2, 3),
            "($1, 'q', $2, $2), ($3, 'q', $4, $4), ($5, 'q', $6, $6)"
        );
    }

    #[test]
    fn placeholders_move_after_the_ones_before() {
        assert_eq!(
            renumber("UPDATE t SET a = $1, b = $12 WHERE c = '$x'", 3),
            "UPDATE t SET a = $4, b = $15 WHERE c = '$x'"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
    }

    #[test]
    fn postgres_joins_writes_but_never_changes_a_table_twice_in_one_statement() {
        let w = |s: &str| (s.to_string(), vec![Val::Int(Some(1))]);
        let batches = postgres_batches(vec![
            w("UPDATE tickets SET a = $1"),
            w("INSERT INTO comments (x) VALUES ($1)"),
            w("INSERT INTO history (x) VALUES ($1)"),
            w("UPDATE tickets SET b = $1"),
        ]);
        assert_eq!(batches.len(), 2);
        assert_eq!(
            batches[0].0,
            "WITH w0 AS (UPDATE tickets SET a = $1), w1 AS (INSERT INTO comments (x) VALUES ($2)) \
             INSERT INTO history (x) VALUES ($3)"
        );
        assert_eq!(batches[0].1.len(), 3);
        assert_eq!(batches[1].0, "UPDATE tickets SET b = $1");
        // Nor changes or deletes rows that an earlier part inserted: it would not see them.
        for second in [
            "UPDATE outbox SET m = $1",
            "DELETE FROM outbox WHERE x = $1",
            "INSERT INTO bodies (x) SELECT o.id FROM outbox o WHERE o.x = $1",
        ] {
            let batches = postgres_batches(vec![
                w("INSERT INTO outbox (x) VALUES ($1)"),
                w("INSERT INTO history (x) VALUES ($1)"),
                w(second),
            ]);
            assert_eq!(batches.len(), 2, "{second}");
            assert_eq!(batches[1].0, second);
        }
    }
}
