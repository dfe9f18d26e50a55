-- Reach is kept as one row per returnee, programme and country: how many
-- active (not reversed) disbursements the returnee has there. The returnees
-- reached per programme, country and programme's country (reach_totals)
-- follow from a returnee's rows, so a disbursement adds one row here
-- instead of one per scope. The counts are those of the assistance table.
DROP TABLE reach;
CREATE TABLE reach (
    beneficiary_ref TEXT COLLATE "C" NOT NULL,
    programme       TEXT COLLATE "C" NOT NULL,
    country         TEXT COLLATE "C" NOT NULL,
    disbursements   BIGINT NOT NULL,
    PRIMARY KEY (beneficiary_ref, programme, country)
);
INSERT INTO reach (beneficiary_ref, programme, country, disbursements)
    SELECT beneficiary_ref, programme, country, COUNT(*) FROM assistance WHERE reversed = 0
    GROUP BY beneficiary_ref, programme, country;
