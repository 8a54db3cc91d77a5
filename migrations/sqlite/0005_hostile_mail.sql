-- A mail over the size limit is kept as its headers only (`raw_lz4` holds the packed header
-- block): `size` is the whole mail's size in bytes and `sha256` its digest, both set only for
-- such a mail.
ALTER TABLE inbound_messages ADD COLUMN size INTEGER;
ALTER TABLE inbound_messages ADD COLUMN sha256 TEXT;
-- How a comment's author was verified: `token` (a signed reply address), `dmarc` or `dkim` (a
-- trusted Authentication-Results header), `cli` (the command line), `system` (deskmail's time
-- rules), `none` (not verified);
-- NULL for comments written before deskmail kept it.
ALTER TABLE comments ADD COLUMN verified_by TEXT;
-- Values longer than 1 MiB (a stored mail, an attachment, a notification's message) keep their
-- first MiB in their own row and the rest here, a piece per row, each LZ4-packed on its own:
-- no statement carries more than a piece (store/pieces.rs). `owner` is `inbound:<id>`,
-- `attachment:<id>` or `outbox:<Message-ID>`.
CREATE TABLE pieces (
    owner TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (owner, seq)
);
-- A notification caused by a mail whose sender could not be verified: the loop breaker counts
-- these apart, so that forged mail cannot use up what a verified sender's reply needs.
ALTER TABLE outbox ADD COLUMN unverified INTEGER NOT NULL DEFAULT 0;
