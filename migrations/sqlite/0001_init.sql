-- deskmail schema, SQLite dialect. Times are INTEGER milliseconds since the Unix epoch (UTC);
-- lists and maps are JSON text. Keep in step with migrations/postgres/0001_init.sql.

CREATE TABLE tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ref TEXT NOT NULL UNIQUE,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    status_since INTEGER NOT NULL,
    subject TEXT NOT NULL,
    requester TEXT NOT NULL,
    organisation TEXT,
    assignee TEXT,
    customer_it_assignee TEXT,
    involved_partners TEXT NOT NULL DEFAULT '[]',
    waiting_on TEXT NOT NULL,
    source TEXT NOT NULL,
    system TEXT,
    fields TEXT NOT NULL DEFAULT '{}',
    watchers TEXT NOT NULL DEFAULT '[]',
    timers_fired TEXT NOT NULL DEFAULT '[]',
    linked_to TEXT,
    -- The Message-ID that starts the ticket's mail thread (References begin with it).
    thread_root TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    closed_at INTEGER
);
CREATE INDEX tickets_updated ON tickets (updated_at);
CREATE INDEX tickets_status ON tickets (workflow, status);
CREATE INDEX tickets_org ON tickets (organisation);

-- Per-scope counters for ticket numbers (a scope is the number without its sequence).
CREATE TABLE ticket_counters (
    scope TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

-- Raw inbound mails, to make processing idempotent and to keep what could not be applied.
CREATE TABLE inbound_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key TEXT NOT NULL UNIQUE,
    message_id TEXT,
    mailbox TEXT,
    sender TEXT,
    subject TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    ticket_id INTEGER REFERENCES tickets (id),
    raw BLOB,
    received_at INTEGER NOT NULL,
    processed_at INTEGER
);

CREATE TABLE comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    author TEXT NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    visibility TEXT NOT NULL,
    inbound_id INTEGER REFERENCES inbound_messages (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX comments_ticket ON comments (ticket_id, id);

-- Attachment content lives in the database (one transaction with its comment, one backup).
CREATE TABLE attachments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    comment_id INTEGER REFERENCES comments (id),
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    content BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX attachments_ticket ON attachments (ticket_id);

-- Every change: who, what, when, from which mail.
CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    inbound_id INTEGER REFERENCES inbound_messages (id),
    created_at INTEGER NOT NULL
);
CREATE INDEX history_ticket ON history (ticket_id, id);

-- Notifications written in the same transaction as the change that causes them; the sender
-- delivers them later. `message_lz4` is the whole rendered message, LZ4-compressed (block format,
-- size first). status: queued, sending (claimed until claimed_until), sent, failed.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER REFERENCES tickets (id),
    event TEXT NOT NULL,
    recipient TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    message_lz4 BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);
-- Covers the per-ticket lookups of a change (References, the loop breaker) without reading rows.
CREATE INDEX outbox_thread ON outbox (ticket_id, recipient, id, message_id, created_at);

-- Addresses known to fail (a permanent bounce or SMTP rejection): notifications skip them.
CREATE TABLE address_status (
    address TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Where each mailbox source has read up to.
CREATE TABLE mailbox_cursors (
    mailbox TEXT PRIMARY KEY,
    uid_validity INTEGER,
    last_uid INTEGER,
    updated_at INTEGER NOT NULL
);
