-- When each ticket's first time rule is due (ms; NULL when none can fire), worked out by the
-- workflow at every write of the ticket: the sweep reads only the tickets whose time has come.
ALTER TABLE tickets ADD COLUMN due_at BIGINT;
CREATE INDEX tickets_due ON tickets (due_at) WHERE due_at IS NOT NULL;
-- What each workflow's due times were worked out from (a digest of its time rules). When a
-- workflow's time rules change, or it has none here yet (a store older than `due_at`), its
-- open tickets' due times are worked out again before the next sweep.
CREATE TABLE due_basis (
    workflow TEXT PRIMARY KEY,
    digest TEXT NOT NULL
);
