-- A sent notification's body is dropped after `outbound.keep_sent_for` (`message_lz4` left
-- empty, its pieces deleted); the row stays, with what threading, the loop breaker and bounce
-- matching read. This index finds the bodies still kept, the longest sent first (its
-- `status` first, so that the planner prefers it to `outbox_status` for `status = 'sent'`).
CREATE INDEX outbox_sent_bodies ON outbox (status, sent_at) WHERE length(message_lz4) > 0;
