-- The chain. One row per event; never updated, never deleted.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY CHECK (seq >= 1),
    id          TEXT    NOT NULL UNIQUE,
    recorded_at TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    payload     TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL UNIQUE, -- no two events share a predecessor: no fork
    hash        TEXT    NOT NULL UNIQUE,
    key_id      TEXT    NOT NULL,
    tag         TEXT    NOT NULL
);

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable: UPDATE is refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable: DELETE is refused');
END;

-- Every append transaction first updates this one row: writers queue on it.
CREATE TABLE chain_lock (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    appends BIGINT  NOT NULL
);
INSERT INTO chain_lock (id, appends) VALUES (1, 0);

-- Answers already given to an Idempotency-Key, written with the events.
CREATE TABLE idempotency (
    actor        TEXT   NOT NULL,
    key          TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    receipts     TEXT   NOT NULL,
    first_seq    BIGINT NOT NULL,
    PRIMARY KEY (actor, key)
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'finance_officer', 'auditor', 'donor')),
    donor      TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    CHECK ((role = 'donor') = (donor IS NOT NULL))
);

CREATE TABLE checkpoints (
    tree_size  BIGINT PRIMARY KEY,
    root_hash  TEXT   NOT NULL,
    created_at TEXT   NOT NULL,
    key_id     TEXT   NOT NULL,
    signature  TEXT   NOT NULL
);
