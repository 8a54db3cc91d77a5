//! The time rules. Each ticket keeps when its first time rule is due (`Due`, worked out by the
//! workflow at every write), so a sweep reads only the tickets whose time has come, through an
//! index, whatever the store's size. When a workflow's time rules change, its open tickets'
//! due times are worked out again first.

use std::borrow::Cow;
use std::collections::HashSet;

use jiff::Timestamp;
use serde::Serialize;

use super::{Author, Change, Desk, DeskError};
use crate::workflow::rules::Due;
use crate::workflow::{self, Actor, Proof, StateKind, Workflow};

/// Tickets read at a time, and sent notifications whose bodies are dropped at a time.
const PAGE: i64 = 500;
/// Sent notifications whose bodies one sweep drops, at most: a store upgraded with years of
/// them is pruned over a few sweeps, not in one long one.
const DROPS_PER_SWEEP: usize = 10_000;

/// What a sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Tickets whose time had come.
    pub checked: usize,
    /// The tickets changed, each with the rules applied.
    pub changed: Vec<(String, String)>,
    /// Tickets whose due time was worked out again (their workflow's time rules changed).
    pub reworked: usize,
    /// Sent notifications whose bodies were dropped (`outbound.keep_sent_for`).
    pub bodies_dropped: usize,
}

impl Desk {
    /// Applies the time rules that are due at `now`.
    pub async fn sweep(&self, now: Timestamp) -> Result<SweepReport, DeskError> {
        let mut report = SweepReport::default();
        for wf in self.workflows() {
            report.reworked += self.keep_due_times(&wf).await?;
        }
        // A ticket still due once swept (a rule that fires at once in its next state) waits
        // for the next sweep.
        let mut seen = HashSet::new();
        loop {
            let due = self.store.due_refs(now, PAGE).await?;
            let full = due.len() as i64 == PAGE;
            let fresh: Vec<String> = due.into_iter().filter(|r| seen.insert(r.clone())).collect();
            if fresh.is_empty() {
                break;
            }
            for reference in fresh {
                report.checked += 1;
                // One ticket that cannot be swept holds up none of the others.
                match self.sweep_one(&reference, now).await {
                    Ok(Some(rules)) => report.changed.push((reference, rules)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(ticket = %reference, "time rules not applied: {}", crate::errors::Chain(&e))
                    }
                }
            }
            if !full {
                break;
            }
        }
        report.bodies_dropped = self.drop_sent_bodies(now).await?;
        Ok(report)
    }

    /// Drops the bodies of the notifications sent longer than `outbound.keep_sent_for` ago, a
    /// page per transaction.
    async fn drop_sent_bodies(&self, now: Timestamp) -> Result<usize, DeskError> {
        let keep = jiff::SignedDuration::from_secs(self.settings.outbound.keep_sent_for_secs);
        // Kept longer than time goes back: nothing is old enough.
        let Ok(before) = now.checked_sub(keep) else {
            return Ok(0);
        };
        let mut dropped = 0;
        while dropped < DROPS_PER_SWEEP {
            let n = self.store.drop_sent_bodies(before, PAGE).await?;
            dropped += n;
            if (n as i64) < PAGE {
                break;
            }
        }
        Ok(dropped)
    }

    /// The workflows tickets may follow: the configured one and every preset.
    fn workflows(&self) -> Vec<Cow<'_, Workflow>> {
        let mut all = vec![Cow::Borrowed(&self.settings.workflow)];
        for name in workflow::presets::names() {
            if name != self.settings.workflow.name
                && let Some(wf) = workflow::presets::load(name)
            {
                all.push(Cow::Owned(wf));
            }
        }
        all
    }

    /// Applies a ticket's due rules, in a transaction of its own; the rules' names when it
    /// changed.
    async fn sweep_one(
        &self,
        reference: &str,
        now: Timestamp,
    ) -> Result<Option<String>, DeskError> {
        let mut tx = self.store.begin().await?;
        let Some(rec) = tx.ticket_for_update(reference).await? else {
            return Ok(None);
        };
        let wf = match self.workflow_for(&rec.ticket) {
            Ok(wf) => wf,
            Err(e) => {
                // Not read again until its workflow is back, which then works its tickets'
                // due times out again (no basis noted for it).
                tracing::warn!(ticket = %reference, "no time rules apply: {}", crate::errors::Chain(&e));
                tx.set_due(rec.id, Due::NONE).await?;
                tx.forget_due_basis(&rec.ticket.workflow).await?;
                tx.commit().await?;
                return Ok(None);
            }
        };
        // What is due is what the workflow says now: a due time kept from before (a state
        // closed since, a rule dropped) is set right, and nothing fires.
        let due = Due::of(&wf, &rec.ticket);
        let effects = match due.at() {
            Some(at) if at <= now => {
                workflow::sweep(&wf, &self.settings.directory, &rec.ticket, now)
            }
            _ => None,
        };
        let Some(effects) = effects else {
            if due.at() != rec.due_at {
                tx.set_due(rec.id, due).await?;
                tx.commit().await?;
            }
            return Ok(None);
        };
        tx.update_ticket(rec.id, &effects.ticket, Due::of(&wf, &effects.ticket))
            .await?;
        let system = Actor {
            person: self.system_person(),
            proof: Proof::System,
        };
        let w = Change {
            ticket_id: rec.id,
            thread_root: rec.thread_root.as_deref(),
            author: Author::new(&system),
            inbound: None,
            now,
        };
        self.write(&mut tx, &w, &effects, &[]).await?;
        tx.commit().await?;
        Ok(Some(effects.action))
    }

    /// Works the due times of a workflow's open tickets out again when its time rules are not
    /// those they were worked out with (and for a store older than due times); how many
    /// changed. A page at a time, each in a transaction of its own.
    async fn keep_due_times(&self, wf: &Workflow) -> Result<usize, DeskError> {
        let digest = crate::hex::sha256_hex(Due::basis(wf).as_bytes());
        if self.store.due_basis(&wf.name).await?.as_deref() == Some(digest.as_str()) {
            return Ok(0);
        }
        let open: Vec<String> = wf
            .states
            .iter()
            .filter(|s| s.kind != StateKind::Closed)
            .map(|s| s.name.clone())
            .collect();
        let (mut after, mut changed) = (0, 0);
        loop {
            let mut tx = self.store.begin().await?;
            let page = tx.tickets_in_states(&wf.name, &open, after, PAGE).await?;
            for rec in &page {
                let due = Due::of(wf, &rec.ticket);
                if due.at() != rec.due_at {
                    tx.set_due(rec.id, due).await?;
                    changed += 1;
                }
            }
            let last = page.last().map(|r| r.id);
            if (page.len() as i64) < PAGE {
                tx.set_due_basis(&wf.name, &digest).await?;
            }
            tx.commit().await?;
            match last {
                Some(id) if page.len() as i64 == PAGE => after = id,
                _ => break,
            }
        }
        if changed > 0 {
            tracing::info!(workflow = %wf.name, tickets = changed, "due times worked out again");
        }
        Ok(changed)
    }
}
