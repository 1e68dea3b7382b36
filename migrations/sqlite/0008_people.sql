-- no-transaction
-- People: users, their API tokens and sign-in sessions; items are deduplicated per owner.
--
-- SQLite cannot drop the UNIQUE of items.canonical_url (an automatic index), so the items table
-- is rebuilt (the documented twelve-step way): with foreign keys off, since dropping a parent
-- table would otherwise cascade into jobs, renditions and replies. That needs its own
-- transaction, outside the one a migration normally runs in.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE items_rebuilt (
    id                TEXT PRIMARY KEY NOT NULL,  -- UUIDv7, sorts by creation time
    owner             TEXT,                       -- users.id (NULL only before the upgrade adopts it)
    source            TEXT NOT NULL CHECK (source IN ('api', 'telegram', 'watch')),
    source_url        TEXT,
    canonical_url     TEXT,                       -- dedup key of URL captures, per owner
    platform          TEXT NOT NULL,
    platform_media_id TEXT,
    status            TEXT NOT NULL CHECK (status IN
                        ('queued', 'downloading', 'processing', 'completed', 'failed', 'cancelled')),
    stage             TEXT,
    progress_percent  REAL,
    downloaded_bytes  INTEGER,
    total_bytes       INTEGER,
    error_code        TEXT,
    error_message     TEXT,
    title             TEXT,
    duration_seconds  REAL,
    width             INTEGER,
    height            INTEGER,
    video_codec       TEXT,
    audio_codec       TEXT,
    bitrate_bps       INTEGER,
    fps               REAL,
    container         TEXT,
    size_bytes        INTEGER,
    sha256            TEXT,
    -- Relative paths under media_root, fixed when the item is created.
    video_path        TEXT NOT NULL,
    thumb_small_path  TEXT NOT NULL,
    thumb_medium_path TEXT NOT NULL,
    thumb_large_path  TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    completed_at      INTEGER,
    thumbnails_bytes  INTEGER,
    warnings          TEXT,
    kind              TEXT NOT NULL DEFAULT 'video' CHECK (kind IN ('video', 'image')),
    encoding          TEXT
);

INSERT INTO items_rebuilt (id, owner, source, source_url, canonical_url, platform,
    platform_media_id, status, stage, progress_percent, downloaded_bytes, total_bytes, error_code,
    error_message, title, duration_seconds, width, height, video_codec, audio_codec, bitrate_bps,
    fps, container, size_bytes, sha256, video_path, thumb_small_path, thumb_medium_path,
    thumb_large_path, created_at, updated_at, completed_at, thumbnails_bytes, warnings, kind,
    encoding)
SELECT id, owner, source, source_url, canonical_url, platform,
    platform_media_id, status, stage, progress_percent, downloaded_bytes, total_bytes, error_code,
    error_message, title, duration_seconds, width, height, video_codec, audio_codec, bitrate_bps,
    fps, container, size_bytes, sha256, video_path, thumb_small_path, thumb_medium_path,
    thumb_large_path, created_at, updated_at, completed_at, thumbnails_bytes, warnings, kind,
    encoding
FROM items;

DROP TABLE items;
ALTER TABLE items_rebuilt RENAME TO items;

CREATE INDEX items_by_status ON items (status, id);
CREATE INDEX items_by_platform ON items (platform, id);
CREATE INDEX items_by_sha256 ON items (sha256);
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
    quota_bytes   INTEGER,                        -- NULL: no quota
    telegram_id   INTEGER UNIQUE,                 -- the Telegram account that speaks for them
    created_at    INTEGER NOT NULL
);

-- Personal API tokens, stored only as the SHA-256 of the token (hex).
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE INDEX api_tokens_by_user ON api_tokens (user_id, id);

-- Sign-in sessions (cookies), stored only as the SHA-256 of the cookie's value.
CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX sessions_by_user ON sessions (user_id);

PRAGMA foreign_key_check;
COMMIT;
PRAGMA foreign_keys = ON;
