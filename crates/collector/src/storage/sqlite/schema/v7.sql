-- Ringsource schema, version 7: pool events without an index.
--
-- While a pool is exhausted every visitor it serves writes a pool event, so
-- the index on (site, pool, time) was written as often as the table itself:
-- under the collector bench, an eighth of the bytes the collector wrote per
-- visit (the WAL and the database file). Its only reader was the pools
-- report, which reads all of a site's pool events in the same snapshot anyway
-- (to find when each session first asked a pool); scanning the table once
-- more for the exhaustions in its window costs the report about what the
-- index lookup did.

DROP INDEX pool_events_by_pool;
