-- wrk script for `cargo xtask bench limiter`: each request comes from the next of
-- RINGSOURCE_BENCH_CLIENTS addresses of 10.0.0.0/8, named in X-Forwarded-For (the bench
-- collector trusts it). The body is no visit: the collector takes the client's token, or
-- refuses it (429), before it reads the body, and answers 400 to the few requests that
-- get a token. So every request measures the limiter, and none reaches the database.
local clients = tonumber(assert(os.getenv("RINGSOURCE_BENCH_CLIENTS")))
local next_client = 0
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"

function request()
  local i = next_client
  next_client = (next_client + 1) % clients
  wrk.headers["X-Forwarded-For"] =
    string.format("10.%d.%d.%d", math.floor(i / 65536), math.floor(i / 256) % 256, i % 256)
  return wrk.format()
end
