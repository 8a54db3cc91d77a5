-- Inbound mail: what deskmail made of each mail, and the lookups that match replies.
-- status: processing (inside its transaction only), applied (a ticket was created or changed),
-- refused (not applied; the sender was told where that is safe), recorded (an auto-reply, a
-- bounce, a list's or deskmail's own mail: kept, nothing changed), failed (could not be
-- applied; `deskmail inbound retry ID` applies it again). `raw` is the mail as received;
-- `detail` (JSON) says what deskmail made of a mail that was not applied. A mail's Message-ID is
-- its dedupe_key, so replies are matched through that unique index.
ALTER TABLE inbound_messages ADD COLUMN class TEXT;
ALTER TABLE inbound_messages ADD COLUMN detail TEXT;
ALTER TABLE inbound_messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX inbound_messages_failed ON inbound_messages (id) WHERE status = 'failed';
CREATE INDEX tickets_thread_root ON tickets (thread_root);
