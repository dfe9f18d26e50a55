-- Projections: balances kept beside the events, updated in the same
-- transaction as each append, rebuildable from the events alone.
-- Money is in minor units of the row's currency (cents, millimes, francs).

CREATE TABLE donors (
    code           TEXT   PRIMARY KEY,
    name           TEXT   NOT NULL,
    kind           TEXT   NOT NULL,
    registered_seq BIGINT NOT NULL
);

CREATE TABLE programmes (
    code           TEXT   PRIMARY KEY,
    name           TEXT   NOT NULL,
    currency       TEXT   NOT NULL,
    countries      TEXT   NOT NULL, -- comma-separated ISO 3166-1 alpha-2 codes
    implementer    TEXT   NOT NULL,
    starts_on      TEXT   NOT NULL,
    ends_on        TEXT   NOT NULL,
    registered_seq BIGINT NOT NULL
);

-- One row per (programme, donor).
CREATE TABLE funding (
    programme TEXT   NOT NULL,
    donor     TEXT   NOT NULL,
    currency  TEXT   NOT NULL,
    committed BIGINT NOT NULL,
    received  BIGINT NOT NULL,
    allocated BIGINT NOT NULL,
    PRIMARY KEY (programme, donor)
);
CREATE INDEX funding_by_donor ON funding (donor);

-- One row per budget line (programme, donor, country).
CREATE TABLE budget_lines (
    programme         TEXT   NOT NULL,
    donor             TEXT   NOT NULL,
    country           TEXT   NOT NULL,
    currency          TEXT   NOT NULL,
    allocated         BIGINT NOT NULL,
    disbursed_cash    BIGINT NOT NULL,
    disbursed_in_kind BIGINT NOT NULL,
    PRIMARY KEY (programme, donor, country)
);
CREATE INDEX budget_lines_by_country ON budget_lines (country);
CREATE INDEX budget_lines_by_donor ON budget_lines (donor);

CREATE TABLE reversals (
    reversed_seq BIGINT PRIMARY KEY,
    reversal_seq BIGINT NOT NULL UNIQUE
);

-- Double entry: debit positive, credit negative; per event they sum to zero
-- in every currency.
CREATE TABLE postings (
    seq      BIGINT NOT NULL,
    line     BIGINT NOT NULL,
    account  TEXT   NOT NULL,
    currency TEXT   NOT NULL,
    amount   BIGINT NOT NULL,
    PRIMARY KEY (seq, line)
);

CREATE TABLE account_balances (
    account  TEXT   NOT NULL,
    currency TEXT   NOT NULL,
    balance  BIGINT NOT NULL,
    PRIMARY KEY (account, currency)
);

-- What reached returnees in local currency, per programme and country.
CREATE TABLE local_paid (
    programme TEXT   NOT NULL,
    country   TEXT   NOT NULL,
    currency  TEXT   NOT NULL,
    amount    BIGINT NOT NULL,
    PRIMARY KEY (programme, country, currency)
);
CREATE INDEX local_paid_by_country ON local_paid (country);

-- Disbursed amounts split by level and dimension (cash counts as
-- individual / economic).
CREATE TABLE disbursement_splits (
    programme TEXT   NOT NULL,
    donor     TEXT   NOT NULL,
    country   TEXT   NOT NULL,
    level     TEXT   NOT NULL,
    dimension TEXT   NOT NULL,
    currency  TEXT   NOT NULL,
    amount    BIGINT NOT NULL,
    PRIMARY KEY (programme, donor, country, level, dimension)
);
CREATE INDEX disbursement_splits_by_country ON disbursement_splits (country);

-- Every disbursement to one returnee, for the duplicate-assistance view.
CREATE TABLE assistance (
    seq             BIGINT PRIMARY KEY,
    beneficiary_ref TEXT   NOT NULL,
    programme       TEXT   NOT NULL,
    donor           TEXT   NOT NULL,
    country         TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    currency        TEXT   NOT NULL,
    amount          BIGINT NOT NULL,
    assisted_on     TEXT   NOT NULL,
    reversed        BIGINT NOT NULL
);
CREATE INDEX assistance_by_beneficiary ON assistance (beneficiary_ref);

-- How many active (not reversed) disbursements each returnee has in a scope:
-- 'programme:CODE' or 'country:CC'. A count above zero means reached.
CREATE TABLE reach (
    scope           TEXT   NOT NULL,
    beneficiary_ref TEXT   NOT NULL,
    disbursements   BIGINT NOT NULL,
    PRIMARY KEY (scope, beneficiary_ref)
);

CREATE TABLE reach_totals (
    scope         TEXT   PRIMARY KEY,
    beneficiaries BIGINT NOT NULL
);
