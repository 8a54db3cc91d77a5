-- A notification's message leaves its row for `outbox_bodies`, packed as before and cut into
-- chunks of at most 1,000 bytes (store/bodies.rs). In its row, a packed message of some 4.5 KB
-- filled an 8 KiB page of its own, and a dropped body left the page nearly empty, as SQLite
-- does not merge pages whose rows shrink. A chunk's id is its notification's id times 2,048
-- plus its number from 0: chunks are appended in id order and fill their pages, a message's
-- chunks are one range of ids, and a dropped body's chunks are deleted, which frees their
-- pages for new ones. A message moved here is one chunk. `body_kept` says whether the body is
-- still there; `outbox_sent_bodies` finds the sent notifications that still have it.
CREATE TABLE outbox_bodies (
    id INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
INSERT INTO outbox_bodies (id, data) SELECT id * 2048, message_lz4 FROM outbox WHERE length(message_lz4) > 0;
ALTER TABLE outbox ADD COLUMN body_kept INTEGER NOT NULL DEFAULT 1;
UPDATE outbox SET body_kept = 0 WHERE length(message_lz4) = 0;
DROP INDEX outbox_sent_bodies;
ALTER TABLE outbox DROP COLUMN message_lz4;
CREATE INDEX outbox_sent_bodies ON outbox (status, sent_at) WHERE body_kept = 1;
