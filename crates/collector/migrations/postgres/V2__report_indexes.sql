-- Ringsource PostgreSQL schema, version 2: SQLite's version 12, indexes for
-- the dashboard's default views over a year of a large site (issue #17; the
-- plans and figures are in docs/reports-at-scale.md, "PostgreSQL").
--
-- The calls list across sites, newest first: without an index on the ring
-- time, every page sorted the whole calls table (a parallel top-N sort of
-- all calls: 62 ms at 100,000 calls, growing with the table). With `id`,
-- the list's whole order (ring_at_ms DESC, id DESC) is walked backwards.
CREATE INDEX calls_by_time ON calls(ring_at_ms, id);

-- The pools report: the leases that overlap its window are those that end
-- after its start (less a cooldown), found here by the expression the report
-- compares. Without it the report read every lease of the site (a sequential
-- scan of the whole table), and the planner, having no statistics on the
-- expression, guessed 20 times the leases it found; ANALYZE keeps statistics
-- on an indexed expression, so the guess is now the count. A lease writes
-- this entry when it starts and moves it when it ends or is renewed.
CREATE INDEX leases_by_end ON leases(COALESCE(ended_at_ms, expires_at_ms));
