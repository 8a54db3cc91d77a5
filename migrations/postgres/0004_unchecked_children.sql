-- The rows written for every mail (the stored mail, its comment, its history lines and its
-- notifications) point at their ticket and at the stored mail, but on PostgreSQL these
-- references are no longer foreign keys. A foreign key there costs a query per row
-- (`SELECT 1 FROM tickets WHERE id = $1 FOR KEY SHARE`, run through SPI): eight per mail,
-- about a seventh of the machine's CPU time when taking in mail, for checks that cannot fail.
-- deskmail writes these rows only for a ticket (and a stored mail) that the same transaction
-- created, locked (`FOR UPDATE`) or read, and it never deletes a ticket, a stored mail, a
-- comment or a history line (ARCHITECTURE.md, Invariants). SQLite keeps the foreign keys:
-- there a check is one in-process B-tree lookup.
-- The references stay as they were (attachments keep theirs):
--   inbound_messages.ticket_id, comments.ticket_id, history.ticket_id, outbox.ticket_id -> tickets(id)
--   comments.inbound_id, history.inbound_id -> inbound_messages(id)
ALTER TABLE inbound_messages DROP CONSTRAINT inbound_messages_ticket_id_fkey;
ALTER TABLE comments DROP CONSTRAINT comments_ticket_id_fkey;
ALTER TABLE comments DROP CONSTRAINT comments_inbound_id_fkey;
ALTER TABLE history DROP CONSTRAINT history_ticket_id_fkey;
ALTER TABLE history DROP CONSTRAINT history_inbound_id_fkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_ticket_id_fkey;
