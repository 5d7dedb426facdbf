-- Ringsource schema, version 5: a touch is stored in its columns only.
--
-- `touch_json` repeated every column of the row as JSON; on the writer's
-- every visit that was a third of the bytes written and a serialisation.
-- The two fields only the JSON held get columns of their own.

ALTER TABLE touches ADD COLUMN utm_id TEXT;
ALTER TABLE touches ADD COLUMN referrer_host TEXT;
UPDATE touches SET utm_id = touch_json ->> '$.utm_id', referrer_host = touch_json ->> '$.referrer_host';
ALTER TABLE touches DROP COLUMN touch_json;
