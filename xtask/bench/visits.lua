-- wrk script for `cargo xtask bench collector`: every request is a first page view
-- of the demo site asking for a number, as the browser script sends it.
-- text/plain keeps it a "simple" request, like the real beacon (no CORS preflight).
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.body = '{"page_url":"https://demo.ringsource.test/?utm_source=google&utm_medium=cpc&utm_campaign=bench&gclid=bench","referrer":"https://www.google.com/"}'
