-- Inbound mails are kept LZ4-compressed, as outbox messages are (block format, the
-- uncompressed size in front as a 4-byte little-endian integer): `raw_lz4` holds a mail stored
-- from now on and `raw` stays empty; mails stored before keep `raw`. Mail text packs to about
-- 40 % of its size, which roughly halves what an ingest writes.
ALTER TABLE inbound_messages ADD COLUMN raw_lz4 BLOB;
