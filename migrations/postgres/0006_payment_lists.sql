-- Payment cycles. A payment list holds its total on its budget line
-- from import until each row is charged (delivered) or released (failed,
-- cancelled): available = allocated - disbursed - held. Money in minor
-- units, as in every projection table.

ALTER TABLE budget_lines ADD COLUMN held BIGINT NOT NULL DEFAULT 0;

-- Programmes whose required approvals were stated; the others need 1.
CREATE TABLE programme_approvals (
    programme          TEXT COLLATE "C" PRIMARY KEY,
    approvals_required BIGINT NOT NULL,
    set_seq            BIGINT NOT NULL
);

-- A list as imported; written once.
CREATE TABLE payment_lists (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    programme          TEXT COLLATE "C" NOT NULL,
    donor              TEXT COLLATE "C" NOT NULL,
    country            TEXT COLLATE "C" NOT NULL,
    currency           TEXT NOT NULL,
    planned_on         TEXT NOT NULL,
    imported_by        TEXT NOT NULL,
    imported_seq       BIGINT NOT NULL UNIQUE,
    imported_at        TEXT NOT NULL,
    content_hash       TEXT NOT NULL,
    approvals_required BIGINT NOT NULL,
    rows               BIGINT NOT NULL,
    total              BIGINT NOT NULL
);
CREATE INDEX payment_lists_by_programme ON payment_lists (programme, imported_seq);

-- Where each list stands.
CREATE TABLE payment_list_totals (
    id            TEXT COLLATE "C" PRIMARY KEY,
    programme     TEXT COLLATE "C" NOT NULL,
    status        TEXT COLLATE "C" NOT NULL,
    held          BIGINT NOT NULL,
    delivered     BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    released_back BIGINT NOT NULL,
    approvals     BIGINT NOT NULL,
    updated_seq   BIGINT NOT NULL
);
CREATE INDEX payment_list_totals_by_status ON payment_list_totals (programme, status);

CREATE TABLE payment_list_approvals (
    list         TEXT COLLATE "C" NOT NULL,
    approved_by  TEXT COLLATE "C" NOT NULL,
    approval     BIGINT NOT NULL,
    approved_seq BIGINT NOT NULL,
    approved_at  TEXT NOT NULL,
    PRIMARY KEY (list, approved_by)
);

-- The rows as imported; row_reference is empty when absent.
CREATE TABLE payment_list_rows (
    list            TEXT COLLATE "C" NOT NULL,
    row             BIGINT NOT NULL,
    beneficiary_ref TEXT COLLATE "C" NOT NULL,
    amount          BIGINT NOT NULL,
    paid_amount     BIGINT NOT NULL,
    paid_currency   TEXT NOT NULL,
    method          TEXT NOT NULL,
    row_reference   TEXT NOT NULL,
    PRIMARY KEY (list, row)
);

-- The payment reference of each row of a released list: unique in the ledger.
CREATE TABLE payment_references (
    list      TEXT COLLATE "C" NOT NULL,
    row       BIGINT NOT NULL,
    reference TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (list, row)
);
CREATE UNIQUE INDEX payment_references_unique ON payment_references (reference);

-- Each confirmed row: delivered_amount in the row's local currency,
-- charged and released in the programme's.
CREATE TABLE payment_outcomes (
    list                    TEXT COLLATE "C" NOT NULL,
    row                     BIGINT NOT NULL,
    status                  TEXT NOT NULL,
    delivered_amount        BIGINT NOT NULL,
    delivered_on            TEXT NOT NULL,
    provider_transaction_id TEXT NOT NULL,
    charged                 BIGINT NOT NULL,
    released                BIGINT NOT NULL,
    confirmed_seq           BIGINT NOT NULL,
    PRIMARY KEY (list, row)
);
