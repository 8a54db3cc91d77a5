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
//! Each write carries what it touches as data ([`Write`]: the table it writes, whether it
//! looks at that table's rows, the tables it reads), which alone decides what may go out
//! together; `tx` decides when. A deferred write that fails reports its error with the
//! statement it went out with; the transaction fails either way.

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

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

/// `n` placeholders from `$from` on, comma-separated (`$3, $4, $5`).
pub(crate) fn places(from: usize, n: usize) -> String {
    let list: Vec<String> = (from..from + n).map(|i| format!("${i}")).collect();
    list.join(", ")
}

/// The `VALUES` list of a multi-row insert: `row` (placeholders `$1`..`$width`) once per row,
/// numbered on (`($1, $2), ($3, $4), ...`).
pub(crate) fn value_rows(row: &str, width: usize, rows: usize) -> String {
    (0..rows)
        .map(|i| renumber(row, i * width))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `q` with `vals` bound, in order.
pub(crate) fn bind_query(
    q: Query<'_, Any, AnyArguments>,
    vals: Vec<Val>,
) -> Query<'_, Any, AnyArguments> {
    vals.into_iter().fold(q, |q, v| match v {
        Val::Int(i) => q.bind(i),
        Val::Text(t) => q.bind(t),
        Val::Blob(b) => q.bind(b),
    })
}

/// A table a kept-back write changes or reads (see `migrations/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    AddressStatus,
    Comments,
    DueBasis,
    History,
    InboundMessages,
    MailboxMoves,
    Outbox,
    OutboxBodies,
    Pieces,
    TicketParties,
    Tickets,
}

/// A write kept back: its statement, and what it touches as data, which decides what it may
/// go out with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Write {
    pub(super) sql: String,
    pub(super) vals: Vec<Val>,
    pub(super) touch: Touch,
}

/// The tables a write touches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Touch {
    /// The table it writes.
    pub(super) table: Table,
    /// It looks at the table's existing rows to change them (`UPDATE`, `DELETE`, an upsert).
    pub(super) looks_at_rows: bool,
    /// The tables it reads to make its rows (`INSERT ... SELECT`).
    pub(super) reads: &'static [Table],
}

impl Write {
    fn new(table: Table, looks_at_rows: bool, sql: impl Into<String>, vals: Vec<Val>) -> Write {
        Write {
            sql: sql.into(),
            vals,
            touch: Touch {
                table,
                looks_at_rows,
                reads: &[],
            },
        }
    }

    /// `INSERT INTO table ... VALUES ...` without `ON CONFLICT`.
    pub(crate) fn insert(table: Table, sql: impl Into<String>, vals: Vec<Val>) -> Write {
        Write::new(table, false, sql, vals)
    }

    /// `INSERT INTO table ... SELECT` from the tables `reads`.
    pub(crate) fn insert_select(
        table: Table,
        reads: &'static [Table],
        sql: impl Into<String>,
        vals: Vec<Val>,
    ) -> Write {
        let mut w = Write::new(table, false, sql, vals);
        w.touch.reads = reads;
        w
    }

    /// `UPDATE`, `DELETE` or `INSERT ... ON CONFLICT`: a write that looks at the table's rows.
    pub(crate) fn change(table: Table, sql: impl Into<String>, vals: Vec<Val>) -> Write {
        Write::new(table, true, sql, vals)
    }
}

/// Whether writes can go out as the parts of one PostgreSQL statement. Its parts all see the
/// rows as they were before it, so none may look at the rows of a table an earlier part wrote
/// (an `UPDATE` would miss rows inserted or change rows updated before it), nor read one.
pub(super) fn one_statement(writes: impl IntoIterator<Item = Touch>) -> bool {
    let mut written: Vec<Table> = Vec::new();
    for w in writes {
        if (w.looks_at_rows && written.contains(&w.table))
            || w.reads.iter().any(|t| written.contains(t))
        {
            return false;
        }
        written.push(w.table);
    }
    true
}

/// `sql` with `writes` joined in front as `WITH` parts (`w0`, `w1`, ...), and the values, the
/// writes' first.
pub(super) fn with_parts(writes: Vec<Write>, sql: &str) -> (String, Vec<Val>) {
    let mut vals: Vec<Val> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for (i, w) in writes.into_iter().enumerate() {
        parts.push(format!("w{i} AS ({})", renumber(&w.sql, vals.len())));
        vals.extend(w.vals);
    }
    let sql = renumber(sql, vals.len());
    if parts.is_empty() {
        return (sql, vals);
    }
    // A statement that has `WITH` parts of its own takes the writes as its first ones.
    let sql = match sql.strip_prefix("WITH ") {
        Some(rest) => format!("WITH {}, {rest}", parts.join(", ")),
        None => format!("WITH {} {sql}", parts.join(", ")),
    };
    (sql, vals)
}

/// `sql` with `writes` in front of it as statements of one SQLite call, and the values, the
/// writes' first (SQLite binds each statement's `$N` from the shared list).
pub(super) fn in_front(begin: bool, writes: Vec<Write>, sql: &str) -> (String, Vec<Val>) {
    let mut text = String::new();
    if begin {
        text.push_str("BEGIN IMMEDIATE;\n");
    }
    let mut vals: Vec<Val> = Vec::new();
    for w in writes {
        text.push_str(&renumber(&w.sql, vals.len()));
        text.push_str(";\n");
        vals.extend(w.vals);
    }
    text.push_str(&renumber(sql, vals.len()));
    (text, vals)
}

/// The pending writes as PostgreSQL statements: each a run of them joined by `WITH`, a new one
/// started where a write could not be a part of the run before it (see [`one_statement`]).
pub(super) fn postgres_batches(pending: Vec<Write>) -> Vec<(String, Vec<Val>)> {
    let mut out = Vec::new();
    let mut run: Vec<Write> = Vec::new();
    for w in pending {
        if !one_statement(run.iter().chain(std::iter::once(&w)).map(|w| w.touch)) {
            out.push(close(std::mem::take(&mut run)));
        }
        run.push(w);
    }
    if !run.is_empty() {
        out.push(close(run));
    }
    out
}

/// A run of writes as one statement: the last one with the others as its `WITH` parts.
fn close(mut run: Vec<Write>) -> (String, Vec<Val>) {
    let last = run.pop().expect("a run has a write");
    let (sql, mut vals) = with_parts(run, &last.sql);
    vals.extend(last.vals);
    (sql, vals)
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
        let one = || vec![Val::Int(Some(1))];
        let batches = postgres_batches(vec![
            Write::change(Table::Tickets, "UPDATE tickets SET a = $1", one()),
            Write::insert(
                Table::Comments,
                "INSERT INTO comments (x) VALUES ($1)",
                one(),
            ),
            Write::insert(Table::History, "INSERT INTO history (x) VALUES ($1)", one()),
            Write::change(Table::Tickets, "UPDATE tickets SET b = $1", one()),
        ]);
        assert_eq!(batches.len(), 2);
        assert_eq!(
            batches[0].0,
            "WITH w0 AS (UPDATE tickets SET a = $1), w1 AS (INSERT INTO comments (x) VALUES ($2)) \
             INSERT INTO history (x) VALUES ($3)"
        );
        assert_eq!(batches[0].1.len(), 3);
        assert_eq!(batches[1].0, "UPDATE tickets SET b = $1");
        // Nor changes, deletes or reads rows that an earlier part inserted: it would not see
        // them.
        for second in [
            Write::change(Table::Outbox, "UPDATE outbox SET m = $1", one()),
            Write::change(Table::Outbox, "DELETE FROM outbox WHERE x = $1", one()),
            Write::insert_select(
                Table::OutboxBodies,
                &[Table::Outbox],
                "INSERT INTO outbox_bodies (x) SELECT o.id FROM outbox o WHERE o.x = $1",
                one(),
            ),
        ] {
            let batches = postgres_batches(vec![
                Write::insert(Table::Outbox, "INSERT INTO outbox (x) VALUES ($1)", one()),
                Write::insert(Table::History, "INSERT INTO history (x) VALUES ($1)", one()),
                second.clone(),
            ]);
            assert_eq!(batches.len(), 2, "{}", second.sql);
            assert_eq!(batches[1].0, second.sql);
        }
        // A plain insert into a table written before joins the run: it looks at no rows.
        let batches = postgres_batches(vec![
            Write::insert(Table::History, "INSERT INTO history (x) VALUES ($1)", one()),
            Write::insert(Table::History, "INSERT INTO history (x) VALUES ($1)", one()),
        ]);
        assert_eq!(batches.len(), 1);
    }
}
