//! Harness for end-to-end tests: the real collector on a free port with a
//! fresh SQLite file and the built bundle, and headless Chromium visitors.
//!
//! Run through `cargo xtask test`, which builds the bundle first and passes
//! `RINGSOURCE_BUNDLE_DIR`, `CHROMEDRIVER` and `CHROMIUM`.

pub mod browser;
pub mod customer;
pub mod pbx;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ringsource_collector::clock::SystemClock;
use ringsource_collector::config::Config;
use ringsource_collector::server::{self, Spawned};

pub use browser::Browser;
pub use customer::CustomerSite;

/// A page of a customer site: the number in several formats, and the one
/// script tag a site owner adds, exactly as the README shows it (COLLECTOR is
/// the collector's origin; the page itself is on another one).
pub const SHOP_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<script type="application/ld+json">{"@type":"Store","telephone":"+7 495 123-45-67"}</script>
</head><body>
<header id="header">Call us: +7 (495) 123-45-67</header>
<a id="tel" href="tel:+74951234567">8 (495) <span>123-45-67</span></a>
<p id="promo">Your code: <b data-ringsource-promo>—</b></p>
<div id="show"><span class="phone">8 495 123 45 67</span></div>
<footer id="footer">Order 74951234567890 · 8 495 123 45 67</footer>
<script async src="COLLECTOR/ringsource.js" data-site="shop" SCRIPT_ATTRS></script>
</body></html>
"#;

/// [`SHOP_PAGE`] with its tag pointing at `collector` (an origin, no slash).
pub fn shop_page(collector: &str, script_attrs: &str) -> String {
    SHOP_PAGE.replace("COLLECTOR", collector).replace("SCRIPT_ATTRS", script_attrs)
}

fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// The built npm package; `cargo xtask test` builds it before these tests.
pub fn bundle_dir() -> PathBuf {
    let dir = std::env::var_os("RINGSOURCE_BUNDLE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target/pkg"));
    assert!(
        dir.join("ringsource_bg.wasm").exists() && dir.join("tag.js").exists(),
        "no bundle in {}: run these tests through `cargo xtask test`",
        dir.display()
    );
    dir
}

/// `www/dashboard` of the checkout (or of `RINGSOURCE_WWW_DIR`).
pub fn dashboard_dir() -> PathBuf {
    std::env::var_os("RINGSOURCE_WWW_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("www"))
        .join("dashboard")
}

pub struct Site {
    pub server: Spawned,
    /// The customer's own web server, whose origin the site allows.
    pub customer: CustomerSite,
    pub db: PathBuf,
    _dir: tempfile::TempDir,
}

impl Site {
    /// Starts the collector with one site "shop" (original +7 495 123-45-67,
    /// region RU) plus `site_extra` TOML for the `[[sites]]` table, and the
    /// customer's server, on another origin, with [`SHOP_PAGE`] at
    /// `/demo/shop.html` and `script_attrs` on its tag.
    pub fn start(site_extra: &str, script_attrs: &str) -> Site {
        Site::start_with("", site_extra, script_attrs)
    }

    /// [`Site::start`] plus `server_extra` TOML for the `[server]` table
    /// (e.g. `admin_token`).
    pub fn start_with(server_extra: &str, site_extra: &str, script_attrs: &str) -> Site {
        Site::start_filled(server_extra, site_extra, script_attrs, None)
    }

    /// [`Site::start_with`] on a database filled first with `days` days of
    /// `ringsource demo-data` (its calls, recordings, tags, notes and
    /// users, [`ringsource_collector::demo::DEMO_USERS`]).
    pub fn start_demo(server_extra: &str, site_extra: &str, days: u32) -> Site {
        Site::start_filled(server_extra, site_extra, "", Some(days))
    }

    fn start_filled(server_extra: &str, site_extra: &str, script_attrs: &str, demo_days: Option<u32>) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("ringsource.sqlite");
        let www = dir.path().join("www");
        std::fs::create_dir_all(&www).expect("www dir");
        let customer = CustomerSite::start();
        // The dashboard as shipped (with the vendor files `cargo xtask` copies in).
        std::os::unix::fs::symlink(dashboard_dir(), www.join("dashboard")).expect("link www/dashboard");
        let toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"
database = "{db}"
bundle_dir = "{bundle}"
www_dir = "{www}"
{server_extra}

[[sites]]
id = "shop"
allowed_origins = ["https://shop.example", "{customer}"]
# The dashboard's tests post visits from the collector's own pages.
allow_same_origin = true
region = "RU"
originals = ["+7 (495) 123-45-67"]
overflow_number = "+7 495 700-00-99"
{site_extra}
"#,
            db = db.display(),
            bundle = bundle_dir().display(),
            www = www.display(),
            customer = customer.origin(),
        );
        let config = Config::from_toml_str(&toml, Path::new("e2e.toml"), &HashMap::<String, String>::new())
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(days) = demo_days {
            let options = ringsource_collector::demo::DemoOptions { site: None, days, seed: 1 };
            // On a thread of its own: the demo waits for the storage's
            // answers, which a test's async runtime must not be blocked on.
            std::thread::scope(|s| {
                s.spawn(|| {
                    ringsource_collector::demo::fill(&config, &options).unwrap_or_else(|e| panic!("demo data: {e}"))
                })
                .join()
                .expect("demo data")
            });
        }
        let server = server::spawn(config, "127.0.0.1:0".parse().expect("addr"), Arc::new(SystemClock))
            .expect("collector starts");
        customer.put("/demo/shop.html", &shop_page(&server.url(""), script_attrs));
        Site { server, customer, db, _dir: dir }
    }

    /// A URL on the collector (API, dashboard, script tag).
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// A URL on the customer's site, where visitors land.
    pub fn page(&self, path: &str) -> String {
        self.customer.url(path)
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("open the collector's SQLite file")
    }

    /// The number each session holds in a live lease, per the database.
    pub fn live_leases(&self) -> Vec<(String, String)> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT session_id, number FROM leases WHERE ended_at_ms IS NULL ORDER BY id")
            .expect("leases query");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("leases").map(|r| r.expect("lease row")).collect()
    }

    pub fn lease_count(&self) -> i64 {
        self.db().query_row("SELECT count(*) FROM leases", [], |r| r.get(0)).expect("count")
    }

    /// `(policy, outcome, number)` of each pool exhaustion, from the counts
    /// kept per minute, in time order.
    pub fn pool_events(&self) -> Vec<(String, String, Option<String>)> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT policy, outcome, number, events FROM pool_exhaustions ORDER BY first_at_ms")
            .expect("query");
        stmt.query_map([], |r| {
            let number: String = r.get(2)?;
            let event = (r.get(0)?, r.get(1)?, (!number.is_empty()).then_some(number));
            Ok(std::iter::repeat_n(event, r.get::<_, u32>(3)? as usize))
        })
        .expect("pool events")
        .flat_map(|r| r.expect("event row"))
        .collect()
    }
}
