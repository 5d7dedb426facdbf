-- Ringsource schema, version 12: indexes for the dashboard's default views
-- over a year of a large site (issue #17: a million calls, ten million
-- sessions; `cargo xtask bench reports` measures them, and the collector's
-- README has the figures).
--
-- The calls list across sites, newest first: without an index on the ring
-- time alone, every page read and sorted the whole calls table.
CREATE INDEX calls_by_time ON calls(ring_at_ms);

-- The pools report: the leases that overlap its window are those that end
-- after its start (less a cooldown), found here by the expression the report
-- compares; without it, every report read the site's whole lease history.
-- Not led by site_id: SQLite (without statistics: the collector never runs
-- ANALYZE) would then take it for every lease query by site, the count of
-- live leases and retention's pass among them, and read all of a site's
-- leases through it. A lease writes this entry when it starts and moves it
-- when it ends or is renewed.
CREATE INDEX leases_by_end ON leases(COALESCE(ended_at_ms, expires_at_ms));
