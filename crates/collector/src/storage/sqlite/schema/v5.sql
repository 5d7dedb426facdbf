-- Ringsource schema, version 5: a touch is stored in its columns only.
--
-- `touch_json` repeated every column of the row as JSON: on every visit a
-- serialisation on the writer's thread and about a fifth of the bytes stored
-- (measured: 1068 -> 827 bytes of database file per bench visit).
-- The two fields only the JSON held get columns of their own.

ALTER TABLE touches ADD COLUMN utm_id TEXT;
ALTER TABLE touches ADD COLUMN referrer_host TEXT;
UPDATE touches SET utm_id = touch_json ->> '$.utm_id', referrer_host = touch_json ->> '$.referrer_host';
ALTER TABLE touches DROP COLUMN touch_json;
