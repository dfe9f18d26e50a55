-- The postings of an event are kept as one journal row instead of one row
-- per line: a cash payment has six lines, and writing them as six rows and
-- six index entries was the largest part of an append. The `postings` view
-- shows the same lines as before (seq, line, account, currency, amount),
-- so the journal is still queried line by line.
--
-- journal.postings is a JSON array of [account, currency, amount] arrays in
-- line order, amounts in minor units (debit positive, credit negative).
CREATE TABLE journal (
    seq      BIGINT PRIMARY KEY,
    postings TEXT   NOT NULL
);
INSERT INTO journal (seq, postings)
    SELECT seq, '[' || string_agg(format('[%s,%s,%s]', to_json(account), to_json(currency), amount), ',' ORDER BY line) || ']'
    FROM postings GROUP BY seq;
DROP TABLE postings;
CREATE VIEW postings (seq, line, account, currency, amount) AS
    SELECT journal.seq, CAST(line.number - 1 AS BIGINT), line.posting ->> 0, line.posting ->> 1,
           CAST(line.posting ->> 2 AS BIGINT)
    FROM journal
    CROSS JOIN LATERAL json_array_elements(CAST(journal.postings AS json)) WITH ORDINALITY AS line(posting, number);
