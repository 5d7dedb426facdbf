//! Headless Chromium driven over WebDriver (chromedriver + fantoccini).
//! Each `Browser` is a fresh profile, i.e. a different visitor.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    _slot: Slot,
}

/// How many browsers the tests of one binary run at once. The end-to-end
/// tests share one binary and run in parallel; on CI's two cores more
/// Chromiums than this only slow each other past their deadlines.
const MAX_BROWSERS: usize = 3;

static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// One of the [`MAX_BROWSERS`] places, held for a browser's lifetime.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= MAX_BROWSERS {
            running = FREED.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        FREED.notify_one();
    }
}

fn tool(env: &str, default: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| default.to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A desktop Chrome's User-Agent, which the browsers of these tests send.
pub const DESKTOP_CHROME_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile,
    /// sending [`DESKTOP_CHROME_UA`].
    pub async fn launch() -> Browser {
        Browser::launch_as(None).await
    }

    /// [`Browser::launch`] with another User-Agent (a crawler's, say).
    pub async fn launch_as(user_agent: Option<&str>) -> Browser {
        // Each test has a runtime of its own, so waiting here blocks only this test.
        let slot = Slot::take();
        let chromedriver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = tool("CHROMIUM", "/usr/bin/chromium");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {chromedriver} (run `cargo xtask provision`): {e}"));
        let profile = tempfile::tempdir().expect("a temp dir for the browser profile");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-quic".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        // Headless Chromium names itself `HeadlessChrome`, and the collector
        // gives no pool number to headless browsers: unless a test says
        // otherwise, these visitors stand for people.
        args.push(format!("--user-agent={}", user_agent.unwrap_or(DESKTOP_CHROME_UA)));
        let caps = json!({ "goog:chromeOptions": { "binary": chromium, "args": args } });
        let caps = match caps {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("capabilities are an object"),
        };
        // Two rustls crypto providers are compiled in (ring via reqwest, aws-lc-rs via
        // hyper-rustls), so rustls cannot pick one by itself: name it once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::rustls().expect("tls").capabilities(caps.clone()).connect(&url).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver at {url} did not accept a session: {e}"),
            }
        };
        Browser { client, driver, _profile: profile, _slot: slot }
    }

    /// Waits until `script` (a JS expression) is truthy and returns its value.
    pub async fn wait_for(&self, script: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value =
                self.client.execute(&format!("return ({script});"), vec![]).await.unwrap_or(serde_json::Value::Null);
            let truthy = !matches!(&value, serde_json::Value::Null | serde_json::Value::Bool(false))
                && value != json!("")
                && value != json!(0);
            if truthy {
                return value;
            }
            if Instant::now() >= deadline {
                let page = self
                    .client
                    .execute("return location.href + ' | ' + document.title + ' | ringsource=' + typeof window.ringsource + ' | ' + document.body.innerText.slice(0, 300)", vec![])
                    .await
                    .unwrap_or_default();
                panic!("timed out waiting for `{script}`; the page: {page}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
