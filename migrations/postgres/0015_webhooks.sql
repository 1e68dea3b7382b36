-- Webhooks (db::webhooks): each item event is recorded in the transaction that makes it
-- happen (with the item as it was), then fanned out to one delivery per configured webhook,
-- whose id is the one receivers see on every attempt.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    item_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    fanned_out INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_events_pending ON webhook_events (fanned_out, id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    webhook TEXT NOT NULL,
    event TEXT NOT NULL,
    item_id TEXT NOT NULL,
    state TEXT NOT NULL,            -- pending | delivered | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_status INTEGER,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    delivered_at BIGINT,
    UNIQUE (event_id, webhook)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (webhook, created_at);
