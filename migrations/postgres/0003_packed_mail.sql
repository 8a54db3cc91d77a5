-- Inbound mails are kept LZ4-compressed, as outbox messages are (block format, the
-- uncompressed size in front as a 4-byte little-endian integer): `raw_lz4` holds a mail stored
-- from now on and `raw` stays empty; mails stored before keep `raw`. deskmail packs them on a
-- thread of its own before they reach the server, so the server stores the packed columns as
-- they are instead of trying its own compression on them (STORAGE EXTERNAL).
ALTER TABLE inbound_messages ADD COLUMN raw_lz4 BYTEA;
ALTER TABLE inbound_messages ALTER COLUMN raw_lz4 SET STORAGE EXTERNAL;
ALTER TABLE outbox ALTER COLUMN message_lz4 SET STORAGE EXTERNAL;
