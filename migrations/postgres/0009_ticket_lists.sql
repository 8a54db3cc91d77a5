-- Lists page newest first (by id), each filter through an index. Text filters compare in
-- lower case, so their indexes are on LOWER(column); the requester is kept in lower case.
DROP INDEX tickets_status;
DROP INDEX tickets_org;
-- Nothing reads tickets by their last update any more; the index cost a page written at every
-- change of a ticket, wherever in the store the ticket is.
DROP INDEX tickets_updated;
CREATE INDEX tickets_status ON tickets (LOWER(status), id);
CREATE INDEX tickets_org ON tickets (LOWER(organisation), id);
CREATE INDEX tickets_requester ON tickets (requester, id);
CREATE INDEX tickets_created ON tickets (created_at);
CREATE INDEX tickets_closed ON tickets (closed_at) WHERE closed_at IS NOT NULL;
-- The ticket's service (its `service` field), kept at every write for the filter.
ALTER TABLE tickets ADD COLUMN service TEXT;
UPDATE tickets SET service = fields::json ->> 'service';
CREATE INDEX tickets_service ON tickets (LOWER(service), id);
-- Who besides the requester and the organisation sees a ticket, as the ticket's JSON lists
-- hold them: its watchers (`watcher:<address>`) and involved partners (`partner:<name>`).
CREATE TABLE ticket_parties (
    party TEXT NOT NULL,
    ticket_id BIGINT NOT NULL,
    PRIMARY KEY (party, ticket_id)
);
CREATE INDEX ticket_parties_ticket ON ticket_parties (ticket_id);
INSERT INTO ticket_parties (party, ticket_id)
    SELECT DISTINCT 'watcher:' || j.value, t.id FROM tickets t, json_array_elements_text(t.watchers::json) AS j(value);
INSERT INTO ticket_parties (party, ticket_id)
    SELECT DISTINCT 'partner:' || j.value, t.id FROM tickets t, json_array_elements_text(t.involved_partners::json) AS j(value);
-- The lists of inbound mails and notifications page by id under a status filter.
DROP INDEX inbound_messages_failed;
CREATE INDEX inbound_messages_status ON inbound_messages (status, id);
CREATE INDEX outbox_status ON outbox (status, id);
