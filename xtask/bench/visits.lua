-- wrk script for `cargo xtask bench collector`: POSTs the visit body the xtask wrote
-- (built from ringsource-core's wire types) to the lease endpoint.
-- text/plain keeps it a "simple" request, like the browser's (no CORS preflight).
-- The User-Agent comes from the xtask (a desktop Chrome's): without one the collector
-- takes the visitor for a crawler, which is shown the original number and never
-- reaches the pool.
local file = assert(io.open(os.getenv("RINGSOURCE_BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.headers["User-Agent"] = assert(os.getenv("RINGSOURCE_BENCH_UA"))
