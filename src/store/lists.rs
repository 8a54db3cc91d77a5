//! The lists' pages, newest first, each filter through an index, so that a page costs about
//! the same in a store of a million rows as in one of a thousand: `ticket list` under any
//! filter (the migrations' `tickets_*` indexes and `ticket_parties`), and `inbound list` and
//! `outbox list` by status (`*_status` indexes).

use jiff::Timestamp;
use sqlx::{Any, AssertSqlSafe};

use super::deferred::{Val, bind_query};
use super::rows::{TICKET_COLUMNS, TicketRecord, TicketRow, ms};
use super::{Store, StoreError};

/// `ticket list` filters; all that are set must hold. Text compares ignoring case.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub reference: Option<String>,
    pub status: Option<String>,
    pub organisation: Option<String>,
    pub requester: Option<String>,
    pub service: Option<String>,
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
    pub closed_from: Option<Timestamp>,
    pub closed_to: Option<Timestamp>,
    /// Only the tickets this reader may see (None: every ticket, as an agent sees them).
    pub visible_to: Option<Visibility>,
}

/// Which tickets a reader who is not an agent sees (`Actor::can_see`, as SQL): those they
/// requested or watch, those their partner is involved in, and for power users and customer
/// IT those of their organisation.
#[derive(Debug, Clone, Default)]
pub struct Visibility {
    pub address: String,
    pub partner: Option<String>,
    pub organisation: Option<String>,
}

/// Where a page starts: after the ticket with this ref (the last of the page before).
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub after: Option<&'a str>,
    pub limit: i64,
}

/// A statement being written: its text and the values of its placeholders.
#[derive(Default)]
struct Sql {
    vals: Vec<Val>,
}

impl Sql {
    /// A placeholder for `v`.
    fn bind(&mut self, v: impl Into<Val>) -> String {
        self.vals.push(v.into());
        format!("${}", self.vals.len())
    }
}

impl TicketFilter {
    /// Whether a date filter is set: the tickets are then found through the dates' index
    /// alone (see `page_sql`).
    fn dated(&self) -> bool {
        [
            self.created_from,
            self.created_to,
            self.closed_from,
            self.closed_to,
        ]
        .iter()
        .any(Option::is_some)
    }

    /// The filter's conditions on tickets aliased `t`, the page's start among them.
    fn conditions(&self, after: Option<&str>, sql: &mut Sql) -> Vec<String> {
        let mut c = Vec::new();
        if let Some(r) = &self.reference {
            // Refs are unique as written; typed in another case, they are found in upper case.
            let p = sql.bind(r.as_str());
            c.push(format!("t.ref IN ({p}, UPPER({p}))"));
        }
        for (column, value) in [
            ("status", &self.status),
            ("organisation", &self.organisation),
            ("service", &self.service),
        ] {
            if let Some(v) = value {
                let p = sql.bind(v.as_str());
                c.push(format!("LOWER(t.{column}) = LOWER({p})"));
            }
        }
        if let Some(r) = &self.requester {
            // Kept in lower case (directory::normalize_address).
            c.push(format!("t.requester = {}", sql.bind(r.to_lowercase())));
        }
        for (cond, at) in [
            ("t.created_at >=", self.created_from),
            ("t.created_at <", self.created_to),
            ("t.closed_at >=", self.closed_from),
            ("t.closed_at <", self.closed_to),
        ] {
            if let Some(at) = at {
                c.push(format!("{cond} {}", sql.bind(ms(at))));
            }
        }
        if let Some(after) = after {
            let p = sql.bind(after);
            let id = if self.dated() { "+t.id" } else { "t.id" };
            c.push(format!(
                "{id} < (SELECT a.id FROM tickets a WHERE a.ref IN ({p}, UPPER({p})))"
            ));
        }
        c
    }
}

/// The `WHERE` clause of a page of inbound mails or notifications (`alias`: the table's),
/// by status and after an id, with its values.
pub(super) fn status_page(
    alias: &str,
    status: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> (String, Vec<Val>) {
    let mut sql = Sql::default();
    let mut c = Vec::new();
    if let Some(s) = status {
        c.push(format!("{alias}.status = {}", sql.bind(s)));
    }
    if let Some(after) = after {
        c.push(format!("{alias}.id < {}", sql.bind(after)));
    }
    let limit = sql.bind(limit);
    let text = format!(
        "{} ORDER BY {alias}.id DESC LIMIT {limit}",
        clause(&c, false)
    );
    (text, sql.vals)
}

/// A page read with one row more than `limit`: drops that row and says where the next page
/// starts (the last row kept), when there is one.
pub fn next_page<T, C>(rows: &mut Vec<T>, limit: i64, cursor: impl Fn(&T) -> C) -> Option<C> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(cursor)
}

/// `WHERE` and the conditions, or nothing.
fn clause(conditions: &[String], and: bool) -> String {
    match (conditions.is_empty(), and) {
        (true, _) => String::new(),
        (false, true) => format!(" AND {}", conditions.join(" AND ")),
        (false, false) => format!(" WHERE {}", conditions.join(" AND ")),
    }
}

/// The statement for a page: for a reader who is not an agent, a union of the newest matches
/// by each way they may see a ticket, each through its own index, so that neither a reader
/// with few tickets nor one whose organisation has many makes the store read them all.
fn page_sql(f: &TicketFilter, page: Page<'_>) -> (String, Vec<Val>) {
    let mut sql = Sql::default();
    let conditions = f.conditions(page.after, &mut sql);
    let limit = sql.bind(page.limit);
    // Under a date filter, the order is not taken from an index (`+`, in both dialects): SQLite
    // would otherwise read the newest tickets one by one looking for those of the dates, where
    // the dates' index finds them at once and they are sorted.
    let (id, ticket_id) = if f.dated() {
        ("+t.id", "+p.ticket_id")
    } else {
        ("t.id", "p.ticket_id")
    };
    let Some(v) = &f.visible_to else {
        let text = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets t{} ORDER BY {id} DESC LIMIT {limit}",
            clause(&conditions, false)
        );
        return (text, sql.vals);
    };
    let rest = clause(&conditions, true);
    let mut ways = Vec::new();
    let me = sql.bind(v.address.as_str());
    ways.push(format!(
        "SELECT t.id FROM tickets t WHERE t.requester = {me}{rest} ORDER BY {id} DESC LIMIT {limit}"
    ));
    let mut parties = vec![format!("watcher:{}", v.address)];
    parties.extend(v.partner.iter().map(|p| format!("partner:{p}")));
    for party in parties {
        let p = sql.bind(party);
        ways.push(format!(
            "SELECT t.id FROM ticket_parties p JOIN tickets t ON t.id = p.ticket_id \
             WHERE p.party = {p}{rest} ORDER BY {ticket_id} DESC LIMIT {limit}"
        ));
    }
    if let Some(org) = &v.organisation {
        let o = sql.bind(org.as_str());
        ways.push(format!(
            "SELECT t.id FROM tickets t WHERE LOWER(t.organisation) = LOWER({o}) \
             AND t.organisation = {o}{rest} \
             ORDER BY {id} DESC LIMIT {limit}"
        ));
    }
    let union: Vec<String> = ways
        .iter()
        .enumerate()
        .map(|(i, w)| format!("SELECT id FROM ({w}) AS w{i}"))
        .collect();
    let text = format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id IN ({}) ORDER BY t.id DESC LIMIT {limit}",
        union.join(" UNION ALL ")
    );
    (text, sql.vals)
}

impl Store {
    /// A page of the tickets matching the filter, newest first.
    pub async fn tickets(
        &self,
        f: &TicketFilter,
        page: Page<'_>,
    ) -> Result<Vec<TicketRecord>, StoreError> {
        let (text, vals) = page_sql(f, page);
        self.fetch_all::<TicketRow>(&text, |q| bind_query(q, vals))
            .await?
            .into_iter()
            .map(TicketRow::into_record)
            .collect()
    }

    /// How the store would run each kind of list statement, for the test that keeps every
    /// filter on an index (tests/lists.rs): one entry per filter, with the plan's lines.
    #[doc(hidden)]
    pub async fn list_plans(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let t = Timestamp::UNIX_EPOCH;
        let reader = Visibility {
            address: "anna@acme.example".into(),
            partner: Some("Acme IT".into()),
            organisation: Some("Acme".into()),
        };
        let only = |set: &dyn Fn(&mut TicketFilter)| {
            let mut f = TicketFilter::default();
            set(&mut f);
            f
        };
        let some = |s: &str| Some(s.to_string());
        let cases: Vec<(&str, TicketFilter)> = vec![
            ("ref", only(&|f| f.reference = some("X-1"))),
            ("status", only(&|f| f.status = some("new"))),
            ("organisation", only(&|f| f.organisation = some("acme"))),
            ("requester", only(&|f| f.requester = some("a@b.example"))),
            ("service", only(&|f| f.service = some("mail"))),
            ("created", only(&|f| f.created_from = Some(t))),
            ("closed", only(&|f| f.closed_to = Some(t))),
            ("visibility", only(&|f| f.visible_to = Some(reader.clone()))),
            (
                "visibility and status",
                only(&|f| {
                    f.visible_to = Some(reader.clone());
                    f.status = some("new");
                }),
            ),
        ];
        let mut out = Vec::new();
        for (name, f) in cases {
            for after in [None, Some("X-1")] {
                let (text, vals) = page_sql(&f, Page { after, limit: 50 });
                let plan = self.plan(&text, vals).await?;
                let name = if after.is_some() {
                    format!("{name}, after")
                } else {
                    name.to_string()
                };
                out.push((name, plan));
            }
        }
        let bodies = super::deferred::Val::from(0i64);
        let plan = self
            .plan(super::outbox::SENT_BODIES, vec![bodies, 500i64.into()])
            .await?;
        out.push(("sent bodies to drop".into(), plan));
        for (table, alias) in [("inbound_messages", "i"), ("outbox", "o")] {
            for after in [None, Some(1)] {
                let (page, vals) = status_page(alias, Some("failed"), after, 50);
                let text = format!("SELECT {alias}.id FROM {table} {alias}{page}");
                let name = format!(
                    "{table} by status{}",
                    if after.is_some() { ", after" } else { "" }
                );
                out.push((name, self.plan(&text, vals).await?));
            }
        }
        Ok(out)
    }

    /// The plan's lines for a statement (`EXPLAIN QUERY PLAN` on SQLite; `EXPLAIN` on
    /// PostgreSQL with sequential scans priced out, so that it shows an index wherever one
    /// can serve: a small table is otherwise read whole).
    async fn plan(&self, text: &str, vals: Vec<Val>) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool().acquire().await.map_err(|e| self.error(e))?;
        let explain = match self.dialect() {
            super::Dialect::Sqlite => format!("EXPLAIN QUERY PLAN {text}"),
            super::Dialect::Postgres => {
                sqlx::query::<Any>("SET enable_seqscan = off")
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| self.error(e))?;
                format!("EXPLAIN {text}")
            }
        };
        let rows: Vec<sqlx::any::AnyRow> =
            bind_query(sqlx::query::<Any>(AssertSqlSafe(explain)), vals)
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| self.error(e))?;
        if self.dialect() == super::Dialect::Postgres {
            let _ = sqlx::query::<Any>("RESET enable_seqscan")
                .execute(&mut *conn)
                .await;
        }
        use sqlx::Row;
        Ok(rows
            .iter()
            .map(|r| {
                // SQLite: id, parent, notused, detail; PostgreSQL: one text column.
                let last = r.len() - 1;
                r.try_get::<String, _>(last).unwrap_or_default()
            })
            .collect())
    }
}
