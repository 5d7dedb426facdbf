-- Ringsource schema, version 8: PBX deliveries remembered in the database.
--
-- A PBX that names each delivery (Standard Webhooks' `webhook-id`) repeats
-- that id when it retries. The id used to be remembered in the process's
-- memory before the event was stored, so a retry that arrived while the
-- first delivery was still being stored was answered "duplicate", and if
-- the first delivery then failed, the call was gone. The id is now written
-- in the transaction that stores the event: a "duplicate" answer always
-- follows a stored event, and every process on the database sees it.
-- Rows are kept until the delivery's signed timestamp has left the
-- tolerance window (`keep_until_ms`), after which a replay is refused as
-- stale anyway, and are pruned when later deliveries are stored.
CREATE TABLE pbx_deliveries (
    site_id        TEXT NOT NULL REFERENCES sites(id),
    pbx            TEXT NOT NULL,
    delivery_id    TEXT NOT NULL,
    -- The call the delivery's event went to (not a foreign key: the row
    -- outlives nothing, and erasing a call need not look here).
    call_id        INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    keep_until_ms  INTEGER NOT NULL,
    PRIMARY KEY (site_id, pbx, delivery_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX pbx_deliveries_by_expiry ON pbx_deliveries(keep_until_ms);
