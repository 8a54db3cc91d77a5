-- Where the daemon is in each IMAP mailbox: every mail up to `last_uid` of the folder's
-- `uidvalidity` has its outcome on disk. A new UIDVALIDITY starts the folder over; the mails
-- taken in before are recognised then and not applied twice. (0001 made a placeholder of
-- this table that nothing wrote to.)
DROP TABLE mailbox_cursors;
CREATE TABLE mailbox_cursors (
    mailbox TEXT PRIMARY KEY,
    uidvalidity BIGINT NOT NULL,
    last_uid BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
-- A mail to move out of its mailbox's folder (to `folder`), written in the mail's own
-- transaction and deleted once the server moved it: a crash in between repeats the move,
-- never the mail.
CREATE TABLE mailbox_moves (
    mailbox TEXT NOT NULL,
    uidvalidity BIGINT NOT NULL,
    uid BIGINT NOT NULL,
    folder TEXT NOT NULL,
    PRIMARY KEY (mailbox, uidvalidity, uid)
);
