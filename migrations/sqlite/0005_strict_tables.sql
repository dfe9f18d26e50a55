-- The events and the projection tables become STRICT tables: a column
-- declared INTEGER stores only integers, so a money figure can never be
-- kept as a float (SQLite turns an integer sum past 64 bits into a REAL in
-- an ordinary table; a STRICT table refuses to store it). STRICT knows the
-- types INTEGER, TEXT, REAL, BLOB and ANY only, so BIGINT columns become
-- INTEGER (the same 64-bit integers).
--
-- Each table is created anew under a scratch name, its rows copied over,
-- the old table dropped and the new one renamed; indexes, triggers and the
-- postings view are created again as they were.

DROP VIEW postings;

-- The chain. One row per event; never updated, never deleted. Dropping the
-- old table fires no DELETE trigger.
CREATE TABLE events_strict (
    seq         INTEGER PRIMARY KEY CHECK (seq >= 1),
    id          TEXT    NOT NULL UNIQUE,
    recorded_at TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    payload     TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL UNIQUE, -- no two events share a predecessor: no fork
    hash        TEXT    NOT NULL UNIQUE,
    key_id      TEXT    NOT NULL,
    tag         TEXT    NOT NULL
) STRICT;
INSERT INTO events_strict (seq, id, recorded_at, actor, event_type, version, payload, prev_hash, hash, key_id, tag)
    SELECT seq, id, recorded_at, actor, event_type, version, payload, prev_hash, hash, key_id, tag FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_strict RENAME TO events;

CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable: UPDATE is refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable: DELETE is refused');
END;

CREATE TABLE donors_strict (
    code           TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    registered_seq INTEGER NOT NULL
) STRICT;
INSERT INTO donors_strict (code, name, kind, registered_seq) SELECT code, name, kind, registered_seq FROM donors;
DROP TABLE donors;
ALTER TABLE donors_strict RENAME TO donors;

CREATE TABLE programmes_strict (
    code           TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL,
    currency       TEXT    NOT NULL,
    countries      TEXT    NOT NULL, -- comma-separated ISO 3166-1 alpha-2 codes
    implementer    TEXT    NOT NULL,
    starts_on      TEXT    NOT NULL,
    ends_on        TEXT    NOT NULL,
    registered_seq INTEGER NOT NULL
) STRICT;
INSERT INTO programmes_strict (code, name, currency, countries, implementer, starts_on, ends_on, registered_seq)
    SELECT code, name, currency, countries, implementer, starts_on, ends_on, registered_seq FROM programmes;
DROP TABLE programmes;
ALTER TABLE programmes_strict RENAME TO programmes;

-- One row per (programme, donor).
CREATE TABLE funding_strict (
    programme TEXT    NOT NULL,
    donor     TEXT    NOT NULL,
    currency  TEXT    NOT NULL,
    committed INTEGER NOT NULL,
    received  INTEGER NOT NULL,
    allocated INTEGER NOT NULL,
    PRIMARY KEY (programme, donor)
) STRICT;
INSERT INTO funding_strict (programme, donor, currency, committed, received, allocated)
    SELECT programme, donor, currency, committed, received, allocated FROM funding;
DROP TABLE funding;
ALTER TABLE funding_strict RENAME TO funding;
CREATE INDEX funding_by_donor ON funding (donor);

-- One row per budget line (programme, donor, country).
CREATE TABLE budget_lines_strict (
    programme         TEXT    NOT NULL,
    donor             TEXT    NOT NULL,
    country           TEXT    NOT NULL,
    currency          TEXT    NOT NULL,
    allocated         INTEGER NOT NULL,
    disbursed_cash    INTEGER NOT NULL,
    disbursed_in_kind INTEGER NOT NULL,
    PRIMARY KEY (programme, donor, country)
) STRICT;
INSERT INTO budget_lines_strict (programme, donor, country, currency, allocated, disbursed_cash, disbursed_in_kind)
    SELECT programme, donor, country, currency, allocated, disbursed_cash, disbursed_in_kind FROM budget_lines;
DROP TABLE budget_lines;
ALTER TABLE budget_lines_strict RENAME TO budget_lines;
CREATE INDEX budget_lines_by_country ON budget_lines (country);
CREATE INDEX budget_lines_by_donor ON budget_lines (donor);

CREATE TABLE reversals_strict (
    reversed_seq INTEGER PRIMARY KEY,
    reversal_seq INTEGER NOT NULL UNIQUE
) STRICT;
INSERT INTO reversals_strict (reversed_seq, reversal_seq) SELECT reversed_seq, reversal_seq FROM reversals;
DROP TABLE reversals;
ALTER TABLE reversals_strict RENAME TO reversals;

-- The postings of each event: a JSON array of [account, currency, amount]
-- arrays in line order, amounts in minor units (debit positive, credit
-- negative).
CREATE TABLE journal_strict (
    seq      INTEGER PRIMARY KEY,
    postings TEXT    NOT NULL
) STRICT;
INSERT INTO journal_strict (seq, postings) SELECT seq, postings FROM journal;
DROP TABLE journal;
ALTER TABLE journal_strict RENAME TO journal;

CREATE TABLE account_balances_strict (
    account  TEXT    NOT NULL,
    currency TEXT    NOT NULL,
    balance  INTEGER NOT NULL,
    PRIMARY KEY (account, currency)
) STRICT;
INSERT INTO account_balances_strict (account, currency, balance) SELECT account, currency, balance FROM account_balances;
DROP TABLE account_balances;
ALTER TABLE account_balances_strict RENAME TO account_balances;

-- What reached returnees in local currency, per programme and country.
CREATE TABLE local_paid_strict (
    programme TEXT    NOT NULL,
    country   TEXT    NOT NULL,
    currency  TEXT    NOT NULL,
    amount    INTEGER NOT NULL,
    PRIMARY KEY (programme, country, currency)
) STRICT;
INSERT INTO local_paid_strict (programme, country, currency, amount) SELECT programme, country, currency, amount FROM local_paid;
DROP TABLE local_paid;
ALTER TABLE local_paid_strict RENAME TO local_paid;
CREATE INDEX local_paid_by_country ON local_paid (country);

-- Disbursed amounts split by level and dimension (cash counts as
-- individual / economic).
CREATE TABLE disbursement_splits_strict (
    programme TEXT    NOT NULL,
    donor     TEXT    NOT NULL,
    country   TEXT    NOT NULL,
    level     TEXT    NOT NULL,
    dimension TEXT    NOT NULL,
    currency  TEXT    NOT NULL,
    amount    INTEGER NOT NULL,
    PRIMARY KEY (programme, donor, country, level, dimension)
) STRICT;
INSERT INTO disbursement_splits_strict (programme, donor, country, level, dimension, currency, amount)
    SELECT programme, donor, country, level, dimension, currency, amount FROM disbursement_splits;
DROP TABLE disbursement_splits;
ALTER TABLE disbursement_splits_strict RENAME TO disbursement_splits;
CREATE INDEX disbursement_splits_by_country ON disbursement_splits (country);

-- Every disbursement to one returnee, for the duplicate-assistance view.
CREATE TABLE assistance_strict (
    seq             INTEGER PRIMARY KEY,
    beneficiary_ref TEXT    NOT NULL,
    programme       TEXT    NOT NULL,
    donor           TEXT    NOT NULL,
    country         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    currency        TEXT    NOT NULL,
    amount          INTEGER NOT NULL,
    assisted_on     TEXT    NOT NULL,
    reversed        INTEGER NOT NULL
) STRICT;
INSERT INTO assistance_strict (seq, beneficiary_ref, programme, donor, country, kind, currency, amount, assisted_on, reversed)
    SELECT seq, beneficiary_ref, programme, donor, country, kind, currency, amount, assisted_on, reversed FROM assistance;
DROP TABLE assistance;
ALTER TABLE assistance_strict RENAME TO assistance;
CREATE INDEX assistance_by_beneficiary ON assistance (beneficiary_ref);

-- Active (not reversed) disbursements per returnee, programme and country.
CREATE TABLE reach_strict (
    beneficiary_ref TEXT    NOT NULL,
    programme       TEXT    NOT NULL,
    country         TEXT    NOT NULL,
    disbursements   INTEGER NOT NULL,
    PRIMARY KEY (beneficiary_ref, programme, country)
) STRICT, WITHOUT ROWID;
INSERT INTO reach_strict (beneficiary_ref, programme, country, disbursements)
    SELECT beneficiary_ref, programme, country, disbursements FROM reach;
DROP TABLE reach;
ALTER TABLE reach_strict RENAME TO reach;

CREATE TABLE reach_totals_strict (
    scope         TEXT    PRIMARY KEY,
    beneficiaries INTEGER NOT NULL
) STRICT;
INSERT INTO reach_totals_strict (scope, beneficiaries) SELECT scope, beneficiaries FROM reach_totals;
DROP TABLE reach_totals;
ALTER TABLE reach_totals_strict RENAME TO reach_totals;

CREATE VIEW postings (seq, line, account, currency, amount) AS
    SELECT journal.seq, CAST(line.key AS INTEGER), line.value ->> 0, line.value ->> 1, CAST(line.value ->> 2 AS INTEGER)
    FROM journal, json_each(journal.postings) AS line;
