-- Key columns hold codes, hex digests, UUIDs and pseudonyms: ASCII whose
-- order needs no language rules. With the "C" collation their indexes
-- compare bytes instead of calling the locale's collation, which makes
-- every index lookup and insertion of an append cheaper. ASCII sorts
-- the same either way.
ALTER TABLE events
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN prev_hash TYPE TEXT COLLATE "C",
    ALTER COLUMN hash TYPE TEXT COLLATE "C";
ALTER TABLE idempotency
    ALTER COLUMN actor TYPE TEXT COLLATE "C",
    ALTER COLUMN key TYPE TEXT COLLATE "C";
ALTER TABLE tokens
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN token_hash TYPE TEXT COLLATE "C";
ALTER TABLE donors ALTER COLUMN code TYPE TEXT COLLATE "C";
ALTER TABLE programmes ALTER COLUMN code TYPE TEXT COLLATE "C";
ALTER TABLE funding
    ALTER COLUMN programme TYPE TEXT COLLATE "C",
    ALTER COLUMN donor TYPE TEXT COLLATE "C";
ALTER TABLE budget_lines
    ALTER COLUMN programme TYPE TEXT COLLATE "C",
    ALTER COLUMN donor TYPE TEXT COLLATE "C",
    ALTER COLUMN country TYPE TEXT COLLATE "C";
ALTER TABLE account_balances
    ALTER COLUMN account TYPE TEXT COLLATE "C",
    ALTER COLUMN currency TYPE TEXT COLLATE "C";
ALTER TABLE local_paid
    ALTER COLUMN programme TYPE TEXT COLLATE "C",
    ALTER COLUMN country TYPE TEXT COLLATE "C",
    ALTER COLUMN currency TYPE TEXT COLLATE "C";
ALTER TABLE disbursement_splits
    ALTER COLUMN programme TYPE TEXT COLLATE "C",
    ALTER COLUMN donor TYPE TEXT COLLATE "C",
    ALTER COLUMN country TYPE TEXT COLLATE "C",
    ALTER COLUMN level TYPE TEXT COLLATE "C",
    ALTER COLUMN dimension TYPE TEXT COLLATE "C";
ALTER TABLE assistance ALTER COLUMN beneficiary_ref TYPE TEXT COLLATE "C";
ALTER TABLE reach
    ALTER COLUMN scope TYPE TEXT COLLATE "C",
    ALTER COLUMN beneficiary_ref TYPE TEXT COLLATE "C";
ALTER TABLE reach_totals ALTER COLUMN scope TYPE TEXT COLLATE "C";
