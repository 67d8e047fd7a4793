-- A dataset's schema is kept as the text it was declared in: jsonb orders object
-- keys by length then bytes, so a schema stored as jsonb came back with its
-- properties reordered, and with them CSV columns and records' keys, which follow
-- the schema's declared order. json keeps the document as written. Schemas stored
-- before this migration lost their order already: they keep jsonb's, until a PATCH
-- declares them again. The datasets table is small: it is rewritten under a brief lock.
LOCK TABLE datasets IN ACCESS EXCLUSIVE MODE;

ALTER TABLE datasets ALTER COLUMN schema TYPE json USING schema::json;
