-- Telegram updates, stored before their offset is confirmed to Telegram (THREATS TG-03): an
-- update redelivered after a crash finds its row and is not handled twice. Only updates from
-- allow-listed users are stored.
CREATE TABLE telegram_updates (
    update_id   BIGINT PRIMARY KEY NOT NULL,
    payload     TEXT NOT NULL,                -- the update as JSON
    state       TEXT NOT NULL CHECK (state IN ('pending', 'handled')),
    attempts    INTEGER NOT NULL DEFAULT 0,   -- handling attempts that failed for a passing reason
    run_after   BIGINT NOT NULL,                 -- Unix ms; a failed attempt waits until then
    received_at BIGINT NOT NULL,
    handled_at  BIGINT
);

CREATE INDEX telegram_updates_pending ON telegram_updates (state, update_id);

-- The bot's replies that follow an item: edited as the item moves, until it ends.
CREATE TABLE telegram_replies (
    chat_id    BIGINT NOT NULL,
    message_id BIGINT NOT NULL,
    item_id    TEXT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    text       TEXT NOT NULL,                -- what the message says now
    edited_at  BIGINT NOT NULL,                 -- Unix ms of the last send or edit
    finished   INTEGER NOT NULL DEFAULT 0,   -- 1 once the item ended and the reply says so
    PRIMARY KEY (chat_id, message_id)
);

CREATE INDEX telegram_replies_open ON telegram_replies (finished, edited_at);
