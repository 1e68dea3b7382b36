-- People: users, their API tokens and sign-in sessions; items are deduplicated per owner.
ALTER TABLE items DROP CONSTRAINT items_canonical_url_key;
DROP INDEX items_by_platform_media;
CREATE INDEX items_by_owner ON items (owner, id);
-- One item per owner and video, however its URL was spelled.
CREATE UNIQUE INDEX items_by_owner_url ON items (owner, canonical_url)
    WHERE canonical_url IS NOT NULL;
CREATE UNIQUE INDEX items_by_platform_media ON items (owner, platform, platform_media_id)
    WHERE platform_media_id IS NOT NULL;

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,      -- UUIDv7
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    password_hash TEXT,                           -- argon2id (PHC string); NULL: no password
    quota_bytes   BIGINT,                         -- NULL: no quota
    telegram_id   BIGINT UNIQUE,                  -- the Telegram account that speaks for them
    created_at    BIGINT NOT NULL
);

-- Personal API tokens, stored only as the SHA-256 of the token (hex).
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE INDEX api_tokens_by_user ON api_tokens (user_id, id);

-- Sign-in sessions (cookies), stored only as the SHA-256 of the cookie's value.
CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_by_user ON sessions (user_id);
