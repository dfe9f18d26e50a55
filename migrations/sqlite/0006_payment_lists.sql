-- Payment cycles. A payment list holds its total on its budget line
-- from import until each row is charged (delivered) or released (failed,
-- cancelled): available = allocated - disbursed - held. Money in minor
-- units, as in every projection table.

ALTER TABLE budget_lines ADD COLUMN held INTEGER NOT NULL DEFAULT 0;

-- Programmes whose required approvals were stated; the others need 1.
CREATE TABLE programme_approvals (
    programme          TEXT PRIMARY KEY,
    approvals_required INTEGER NOT NULL,
    set_seq            INTEGER NOT NULL
) STRICT;

-- A list as imported; written once.
CREATE TABLE payment_lists (
    id                 TEXT PRIMARY KEY,
    programme          TEXT NOT NULL,
    donor              TEXT NOT NULL,
    country            TEXT NOT NULL,
    currency           TEXT NOT NULL,
    planned_on         TEXT NOT NULL,
    imported_by        TEXT NOT NULL,
    imported_seq       INTEGER NOT NULL UNIQUE,
    imported_at        TEXT NOT NULL,
    content_hash       TEXT NOT NULL,
    approvals_required INTEGER NOT NULL,
    rows               INTEGER NOT NULL,
    total              INTEGER NOT NULL
) STRICT;
CREATE INDEX payment_lists_by_programme ON payment_lists (programme, imported_seq);

-- Where each list stands.
CREATE TABLE payment_list_totals (
    id            TEXT PRIMARY KEY,
    programme     TEXT NOT NULL,
    status        TEXT NOT NULL,
    held          INTEGER NOT NULL,
    delivered     INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    released_back INTEGER NOT NULL,
    approvals     INTEGER NOT NULL,
    updated_seq   INTEGER NOT NULL
) STRICT;
CREATE INDEX payment_list_totals_by_status ON payment_list_totals (programme, status);

CREATE TABLE payment_list_approvals (
    list         TEXT NOT NULL,
    approved_by  TEXT NOT NULL,
    approval     INTEGER NOT NULL,
    approved_seq INTEGER NOT NULL,
    approved_at  TEXT NOT NULL,
    PRIMARY KEY (list, approved_by)
) STRICT;

-- The rows as imported; row_reference is empty when absent.
CREATE TABLE payment_list_rows (
    list            TEXT NOT NULL,
    row             INTEGER NOT NULL,
    beneficiary_ref TEXT NOT NULL,
    amount          INTEGER NOT NULL,
    paid_amount     INTEGER NOT NULL,
    paid_currency   TEXT NOT NULL,
    method          TEXT NOT NULL,
    row_reference   TEXT NOT NULL,
    PRIMARY KEY (list, row)
) STRICT;

-- The payment reference of each row of a released list: unique in the ledger.
CREATE TABLE payment_references (
    list      TEXT NOT NULL,
    row       INTEGER NOT NULL,
    reference TEXT NOT NULL,
    PRIMARY KEY (list, row)
) STRICT;
CREATE UNIQUE INDEX payment_references_unique ON payment_references (reference);

-- Each confirmed row: delivered_amount in the row's local currency,
-- charged and released in the programme's.
CREATE TABLE payment_outcomes (
    list                    TEXT NOT NULL,
    row                     INTEGER NOT NULL,
    status                  TEXT NOT NULL,
    delivered_amount        INTEGER NOT NULL,
    delivered_on            TEXT NOT NULL,
    provider_transaction_id TEXT NOT NULL,
    charged                 INTEGER NOT NULL,
    released                INTEGER NOT NULL,
    confirmed_seq           INTEGER NOT NULL,
    PRIMARY KEY (list, row)
) STRICT;
