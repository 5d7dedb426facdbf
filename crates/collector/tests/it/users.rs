//! Dashboard users over real HTTP: Argon2id passwords, the session cookie's
//! flags, CSRF tokens, the login rate limit, roles and sites refused by the
//! API with 401/403 JSON, callers masked for marketers, and the CLI.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::common::*;
use crate::people::*;
use ringsource_collector::clock::ManualClock;

/// A fixed time for the throttle tests' clock.
const T0: i64 = 1_800_000_000_000;

const PW: &str = "long enough password 1";

crate::on_both_backends! {
    roles_sites_cookies_and_csrf_over_http => roles_sites_cookies_and_csrf_over_http_on;
    the_login_rate_limit_stops_guessing => the_login_rate_limit_stops_guessing_on;
    behind_a_proxy_the_login_limit_counts_the_address_the_proxy_saw => behind_a_proxy_the_login_limit_counts_the_address_the_proxy_saw_on;
}

fn roles_sites_cookies_and_csrf_over_http_on(backend: Backend) {
    let Some(h) = start_people_on(backend, "roles_sites_cookies_and_csrf_over_http", "", "") else { return };
    let shop_call = kamailio_call(&h, "shop", "users-1@test", POOL[0], json!({}));
    let other_call = kamailio_call(&h, "other", "users-2@test", "+78125550000", json!({}));
    add_user(&h, "Anna", "admin", None, PW);
    add_user(&h, "mark", "marketer", None, PW);
    add_user(&h, "maria", "manager", Some(&["shop"]), PW);

    // Nobody signed in: 401 JSON; a wrong admin token too.
    let resp = h.client.get(h.url("/v1/calls?site=shop")).send().unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().unwrap()["error"]["code"], "unauthorized");
    let resp = h.client.get(h.url("/v1/users")).bearer_auth("not-the-admin-token-0000").send().unwrap();
    assert_eq!(resp.status(), 401);

    // The password is stored as an Argon2id hash, never as itself.
    let stored = h.rows("SELECT password_hash FROM users WHERE username = 'anna'")[0][0].clone().unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains(PW), "{stored}");

    // Sign-in: a cookie no script can read, sent over HTTPS only and to
    // this site's own pages only; the user name is case-blind.
    let anna = login(&h, "ANNA", PW);
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(anna.set_cookie.split("; ").any(|f| f == flag), "{flag} missing: {}", anna.set_cookie);
    }
    assert!(anna.cookie.starts_with("ringsource_session=") && anna.cookie.len() > 40, "{}", anna.cookie);
    assert_eq!(anna.me["role"], "admin");
    // Only the token's hash is in the database.
    let token = anna.cookie.split_once('=').unwrap().1;
    let hashes: Vec<String> =
        h.rows("SELECT token_hash FROM user_sessions").into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(hashes.len(), 1);
    assert!(!hashes[0].contains(token));
    // A form post cannot sign in (no cross-site form sends JSON).
    let resp = h
        .client
        .post(h.url("/v1/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=anna&password=x")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);

    // The marketer: reports, costs, exports and the CSV; callers masked; no
    // recordings, tags written, promo codes, users or privacy.
    let mark = login(&h, "mark", PW);
    assert_eq!(mark.me["sees_callers"], false);
    let (status, list) = mark.get(&h, "/v1/calls?site=shop");
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["calls"][0]["caller"], "+*********67");
    let (status, detail) = mark.get(&h, &format!("/v1/calls/{shop_call}"));
    assert_eq!(status, 200);
    assert_eq!(detail["caller"], "+*********67");
    assert!(!detail.to_string().contains("9161234567"), "the caller leaks: {detail}");
    let resp = h.client.get(h.url("/v1/calls.csv?site=shop")).header("cookie", &mark.cookie).send().unwrap();
    assert_eq!(resp.status(), 200);
    // Nothing a user was let see stays in the browser's cache for the next one.
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let csv = resp.text().unwrap();
    assert!(csv.starts_with('\u{feff}') && csv.contains("+*********67") && !csv.contains("9161234567"), "{csv}");
    for path in ["/v1/reports/calls?site=shop", "/v1/reports/pools?site=other", "/v1/exports?site=shop"] {
        assert_eq!(mark.get(&h, path).0, 200, "{path}");
    }
    for (method, path) in [
        ("GET", "/v1/promo/ACDEF?site=shop".to_owned()),
        ("POST", format!("/v1/calls/{shop_call}/promo")),
        ("GET", "/v1/users".to_owned()),
        ("POST", "/v1/privacy/export".to_owned()),
    ] {
        let (status, body) = mark.send(&h, method, &path, Some(json!({ "code": "ACDEF" })));
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{method} {path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("a marketer may not"), "{body}");
    }

    // The manager of "shop": calls with callers, promo codes; not reports,
    // money, exports, the CSV, nor the other site.
    let maria = login(&h, "maria", PW);
    let (status, list) = maria.get(&h, "/v1/calls?site=shop");
    assert_eq!(status, 200);
    assert_eq!(list["calls"][0]["caller"], CALLER);
    for path in ["/v1/reports/calls?site=shop", "/v1/exports?site=shop", "/v1/calls.csv?site=shop"] {
        let (status, body) = maria.get(&h, path);
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{path}: {body}");
    }
    let (status, body) = maria.send(&h, "POST", "/v1/costs?site=shop", Some(json!([])));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, body) = maria.get(&h, "/v1/calls?site=other");
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("site_forbidden")), "{body}");
    let (status, body) = maria.get(&h, &format!("/v1/calls/{other_call}"));
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("site_forbidden")), "{body}");
    let (status, body) = maria.get(&h, "/v1/calls");
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("site_required")), "{body}");
    let (status, _) = maria.get(&h, &format!("/v1/calls/{shop_call}"));
    assert_eq!(status, 200);

    // CSRF: a change without the session's token is refused, with a wrong
    // one too; with it the request reaches the handler (an unknown code).
    let promo = format!("/v1/calls/{shop_call}/promo");
    let post = |csrf: Option<&str>| {
        let mut req = h.client.post(h.url(&promo)).header("cookie", &maria.cookie).json(&json!({ "code": "ACDEF" }));
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        let resp = req.send().unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    };
    for csrf in [None, Some("wrong"), Some(mark.csrf.as_str())] {
        let (status, body) = post(csrf);
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("csrf_token")), "{csrf:?}: {body}");
    }
    let (status, body) = post(Some(&maria.csrf));
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_promo_code")), "{body}");
    // The CSRF token is the session's, as /v1/auth/me tells a reloaded page.
    let (_, me) = maria.get(&h, "/v1/auth/me");
    assert_eq!(me["csrf_token"], maria.csrf.as_str());
    assert_eq!(me["sites"], json!(["shop"]));

    // The admin token stays for scripts: no cookie, no CSRF.
    let resp = h.client.get(h.url("/v1/users")).bearer_auth(TOKEN).send().unwrap();
    let users: Value = resp.json().unwrap();
    let names: Vec<&str> = users["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["anna", "maria", "mark"]);

    // The admin changes maria's password: her session ends.
    let maria_id =
        users["users"].as_array().unwrap().iter().find(|u| u["username"] == "maria").unwrap()["id"].as_i64().unwrap();
    let (status, body) =
        anna.send(&h, "PATCH", &format!("/v1/users/{maria_id}"), Some(json!({ "password": "another password 2" })));
    assert_eq!(status, 200, "{body}");
    assert_eq!(maria.get(&h, "/v1/calls?site=shop").0, 401);
    assert_eq!(try_login(&h, "maria", PW).0, 401);
    let maria = login(&h, "maria", "another password 2");
    // Made a marketer of every site, she sees the other site and no callers.
    let (status, body) =
        anna.send(&h, "PATCH", &format!("/v1/users/{maria_id}"), Some(json!({ "role": "marketer", "sites": null })));
    assert_eq!((status, body["role"].as_str(), &body["sites"]), (200, Some("marketer"), &Value::Null), "{body}");
    assert_eq!(maria.get(&h, "/v1/calls?site=other").0, 401, "her session ended with the change");
    let maria = login(&h, "maria", "another password 2");
    assert_eq!(maria.get(&h, "/v1/calls?site=other").1["calls"][0]["caller"], "+*********67");

    // Bad user input is a 400 that says what is wrong, never a 5xx.
    for (body, want) in [
        (json!({ "username": "x y", "role": "manager", "password": PW }), "user name"),
        (json!({ "username": "x", "role": "owner", "password": PW }), "role"),
        (json!({ "username": "x", "role": "admin", "sites": ["shop"], "password": PW }), "every site"),
        (json!({ "username": "x", "role": "manager", "sites": ["nowhere"], "password": PW }), "nowhere"),
        (json!({ "username": "x", "role": "manager", "password": "short" }), "at least 10"),
    ] {
        let (status, answer) = anna.send(&h, "POST", "/v1/users", Some(body));
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(want), "{want}: {answer}");
    }
    let (status, answer) =
        anna.send(&h, "POST", "/v1/users", Some(json!({ "username": "MARK", "role": "manager", "password": PW })));
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("user_exists")), "{answer}");
    // The last admin stays.
    let anna_id = anna.me["user"]["id"].as_i64().unwrap();
    let (status, answer) = anna.send(&h, "DELETE", &format!("/v1/users/{anna_id}"), None);
    assert_eq!((status, answer["error"]["code"].as_str()), (409, Some("last_admin")), "{answer}");

    // Sign-out ends the session on the server, not only in the browser.
    let resp = h
        .client
        .post(h.url("/v1/auth/logout"))
        .header("cookie", &anna.cookie)
        .header("x-csrf-token", &anna.csrf)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(anna.get(&h, "/v1/users").0, 401);
}

fn the_login_rate_limit_stops_guessing_on(backend: Backend) {
    let clock = Arc::new(ManualClock::new(T0));
    let Some(h) = start_people_clocked_on(backend, "the_login_rate_limit_stops_guessing", "", clock) else { return };
    add_user(&h, "mark", "marketer", None, PW);
    add_user(&h, "olga", "manager", None, PW);
    for _ in 0..5 {
        let (status, _, body) = try_login(&h, "mark", "a wrong guess 123");
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some("bad_credentials")), "{body}");
    }
    // The sixth try is refused before the password is looked at: the right
    // one too, so a guess that lands here tells nothing.
    let (status, headers, body) = try_login(&h, "mark", PW);
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("too_many_attempts")), "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // An unknown name fails like a wrong password; other users still sign in.
    assert_eq!(try_login(&h, "nobody", PW).0, 401);
    login(&h, "olga", PW);
    // One address gets 20 tries at once, whoever they are for.
    let mut statuses = Vec::new();
    for i in 0..20 {
        statuses.push(try_login(&h, &format!("guess{i}"), PW).0);
    }
    // Eight tries went before (mark's six, nobody's, olga's): twelve are
    // left, and no time passes to bring any back.
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 12, "{statuses:?}");
    assert!(statuses[12..].iter().all(|s| *s == 429), "{statuses:?}");
}

crate::on_both_backends! {
    users_from_the_command_line => users_from_the_command_line_on;
}

fn users_from_the_command_line_on(backend: Backend) {
    let Some(h) = start_people_on(backend, "users_from_the_command_line", "", "") else { return };
    let config = h.db.parent().unwrap().join("cli.toml");
    let mut text = site_toml(&h.db, &format!("admin_token = \"{TOKEN}\""), "", "");
    if let Some(url) = &h.pg {
        text = text.replace(&format!("database = \"{}\"", h.db.display()), &format!("database = \"{url}\""));
    }
    std::fs::write(&config, text).unwrap();
    let ringsource = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringsource"))
            .arg("user")
            .args(args)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = ringsource(
        &["add", "Vera", "--role", "manager", "--sites", "shop", "--password-stdin"],
        Some(&format!("{PW}\n")),
    );
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "added vera\tmanager\tshop");
    let vera = login(&h, "vera", PW);
    assert_eq!(vera.me["role"], "manager");
    // Without --password-stdin a password is made up and printed once.
    let (ok, out, err) = ringsource(&["add", "ivan", "--role", "admin"], None);
    assert!(ok, "{err}");
    let made_up = out.lines().find_map(|l| l.strip_prefix("password: ")).expect("the password").to_owned();
    login(&h, "ivan", &made_up);
    let (ok, out, _) = ringsource(&["list"], None);
    assert!(ok);
    assert_eq!(out, "ivan\tadmin\tevery site\nvera\tmanager\tshop\n");
    let (ok, _, err) = ringsource(&["add", "x", "--role", "admin", "--sites", "shop"], None);
    assert!(!ok && err.contains("every site"), "{err}");
    let (ok, out, err) = ringsource(&["passwd", "vera", "--password-stdin"], Some("the new password 9\n"));
    assert!(ok, "{err}");
    assert!(out.contains("sessions ended"), "{out}");
    assert_eq!(vera.get(&h, "/v1/calls?site=shop").0, 401);
    login(&h, "vera", "the new password 9");
    let (ok, _, _) = ringsource(&["remove", "vera"], None);
    assert!(ok);
    assert_eq!(try_login(&h, "vera", "the new password 9").0, 401);
    let (ok, _, err) = ringsource(&["remove", "vera"], None);
    assert!(!ok && err.contains("no user vera"), "{err}");
}

fn behind_a_proxy_the_login_limit_counts_the_address_the_proxy_saw_on(backend: Backend) {
    let clock = Arc::new(ManualClock::new(T0));
    let test = "behind_a_proxy_the_login_limit_counts_the_address_the_proxy_saw";
    let Some(h) = start_people_clocked_on(backend, test, "trust_forwarded_for = true", clock) else { return };
    let attempt = |forwarded_for: &str, i: usize| {
        h.client
            .post(h.url("/v1/auth/login"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({ "username": format!("guess{i}"), "password": PW }))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // One client that writes a new address of its own each time: the proxy
    // appends the one it saw, and that is the bucket.
    let statuses: Vec<u16> = (0..30).map(|i| attempt(&format!("198.51.100.{i}, 203.0.113.9"), i)).collect();
    assert!(statuses[..20].iter().all(|s| *s == 401) && statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // Another client behind the same proxy still gets its tries.
    assert_eq!(attempt("203.0.113.10", 99), 401);
}
