-- wrk script for `cargo xtask bench collector`: POSTs the visit body the xtask wrote
-- (built from ringsource-core's wire types) to the lease endpoint.
-- text/plain keeps it a "simple" request, like the browser's (no CORS preflight).
local file = assert(io.open(os.getenv("RINGSOURCE_BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
