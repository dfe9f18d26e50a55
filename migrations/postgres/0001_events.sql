-- The chain. One row per event; never updated, never deleted.
CREATE TABLE events (
    seq         BIGINT PRIMARY KEY CHECK (seq >= 1),
    id          TEXT   NOT NULL UNIQUE,
    recorded_at TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    event_type  TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    payload     TEXT   NOT NULL, -- text, not jsonb: the hash covers these exact bytes
    prev_hash   TEXT   NOT NULL UNIQUE, -- no two events share a predecessor: no fork
    hash        TEXT   NOT NULL UNIQUE,
    key_id      TEXT   NOT NULL,
    tag         TEXT   NOT NULL
);

CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % is refused', TG_OP;
END
$$;

CREATE TRIGGER events_refuse_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Every append transaction first updates this one row: writers on every
-- server sharing the database queue on its row lock.
CREATE TABLE chain_lock (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    appends BIGINT NOT NULL
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
