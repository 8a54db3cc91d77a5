-- Who does a piece of the daemon's work (`mailbox:<name>`, `sweep`) when several daemons share
-- one database: a daemon holds a lease until `expires_at` (the database's clock, ms) and renews
-- it; `epoch` rises each time another daemon takes the lease over, and a daemon commits a mail
-- only while its epoch is the lease's (a daemon that lost the lease cannot commit as owner).
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
-- The daemon (its `holder` name) that claimed a notification being sent: when that daemon's
-- own lease (`daemon:<holder>`) runs out, another daemon puts the notification back in the
-- queue instead of waiting for the claim to run out.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
