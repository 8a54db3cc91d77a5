//! Every filter of the lists is served by an index: the test reads the store's own plan for
//! each (`EXPLAIN QUERY PLAN` on SQLite; `EXPLAIN` on PostgreSQL with sequential scans priced
//! out) and fails on a table read whole.

mod support;

async fn plans(url: &str) -> Vec<(String, Vec<String>)> {
    let store = deskmail::store::Store::open(url).await.unwrap();
    let plans = store.list_plans().await.unwrap();
    store.close().await;
    plans
}

/// A plan line that reads a table whole: SQLite's `SCAN <table>` without an index (a subquery's
/// result, `w0`..., is not a table), PostgreSQL's `Seq Scan`.
fn scans(line: &str) -> bool {
    let line = line.trim_start_matches([' ', '-', '>']);
    if line.starts_with("Seq Scan") {
        return true;
    }
    let Some(rest) = line.strip_prefix("SCAN ") else {
        return false;
    };
    let table = rest.split_whitespace().next().unwrap_or("");
    !table.starts_with('w') && !rest.contains("USING")
}

/// Every case; a list without any filter is not among them: it reads the newest rows in the
/// primary key's order and stops after a page, which SQLite shows as `SCAN`.
fn check(plans: &[(String, Vec<String>)]) {
    assert!(plans.len() >= 22, "{plans:?}");
    // The sent bodies to drop: `status = 'sent'` matches nearly every notification; only the
    // index on the bodies kept finds the few old enough without reading the rest.
    let (_, bodies) = plans
        .iter()
        .find(|(case, _)| case == "sent bodies to drop")
        .expect("the sent bodies' plan");
    assert!(
        bodies.iter().any(|l| l.contains("outbox_sent_bodies")),
        "{bodies:?}"
    );
    for (case, lines) in plans {
        eprintln!("{case}:\n  {}", lines.join("\n  "));
        assert!(
            !lines.iter().any(|l| scans(l)),
            "a list by {case} reads a table whole:\n{}",
            lines.join("\n")
        );
    }
}

async fn list_filters_use_indexes(url: &str) {
    check(&plans(url).await);
}

on_each_dialect! {
    list_filters_use_indexes => list_filters_use_indexes;
}

#[test]
fn a_whole_table_read_is_recognised() {
    assert!(scans("SCAN t"));
    assert!(scans(
        "  ->  Seq Scan on tickets t  (cost=0.00..1.00 rows=1 width=8)"
    ));
    assert!(!scans("SCAN t USING INDEX tickets_org"));
    assert!(!scans("SEARCH t USING INDEX tickets_status (<expr>=?)"));
    assert!(!scans("SCAN w0"));
}
