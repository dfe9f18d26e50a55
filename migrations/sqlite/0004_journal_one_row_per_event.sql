-- The postings of an event are kept as one journal row instead of one row
-- per line: a cash payment has six lines, and writing them as six rows and
-- six index entries was the largest part of an append. The `postings` view
-- shows the same lines as before (seq, line, account, currency, amount),
-- so the journal is still queried line by line.
--
-- journal.postings is a JSON array of [account, currency, amount] arrays in
-- line order, amounts in minor units (debit positive, credit negative).
CREATE TABLE journal (
    seq      INTEGER PRIMARY KEY,
    postings TEXT    NOT NULL
);
INSERT INTO journal (seq, postings)
    SELECT seq, json_group_array(json_array(account, currency, amount) ORDER BY line)
    FROM postings GROUP BY seq;
DROP TABLE postings;
CREATE VIEW postings (seq, line, account, currency, amount) AS
    SELECT journal.seq, CAST(line.key AS INTEGER), line.value ->> 0, line.value ->> 1, CAST(line.value ->> 2 AS INTEGER)
    FROM journal, json_each(journal.postings) AS line;
