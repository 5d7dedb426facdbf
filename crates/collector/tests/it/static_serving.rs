//! Static files: the script tag, the wasm bundle and the www pages, with
//! their MIME types and cache headers; `serve` prints the bound address.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

fn write(path: &Path, body: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

#[test]
fn files_have_types_etags_and_cache_headers() {
    let h = start("", "", "");
    let root = h.db.parent().unwrap();
    write(&root.join("pkg/tag.js"), b"/* loader */");
    write(&root.join("pkg/ringsource_web_bg.wasm"), b"\0asm\x01\0\0\0");
    write(&root.join("www/demo/index.html"), b"<!doctype html><title>demo</title>");

    let js = h.client.get(h.url("/ringsource.js")).send().unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert_eq!(js.headers()["cache-control"], "public, max-age=300");
    let etag = js.headers()["etag"].clone();
    let revalidated = h.client.get(h.url("/ringsource.js")).header("if-none-match", etag).send().unwrap();
    assert_eq!(revalidated.status(), 304);

    let wasm = h.client.get(h.url("/pkg/ringsource_web_bg.wasm")).send().unwrap();
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    assert_eq!(wasm.headers()["cache-control"], "no-cache");
    assert!(wasm.headers().contains_key("etag"));

    let page = h.client.get(h.url("/demo/")).send().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));

    let no_redirect = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let root_resp = no_redirect.get(h.url("/")).send().unwrap();
    assert_eq!(root_resp.status(), 302);
    assert_eq!(root_resp.headers()["location"], "/demo/");
    let demo = no_redirect.get(h.url("/demo")).send().unwrap();
    assert_eq!(demo.headers()["location"], "/demo/");
}

#[test]
fn missing_bundle_is_a_json_404_that_says_what_to_do() {
    let h = start("", "", "");
    let resp = h.client.get(h.url("/ringsource.js")).send().unwrap();
    assert_eq!(resp.status(), 404);
    let err: serde_json::Value = resp.json().unwrap();
    assert_eq!(err["error"]["code"], "bundle_missing");
}

#[test]
fn serve_prints_the_bound_address() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, site_toml(&dir.path().join("db.sqlite"), "", "", "")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ringsource"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed on drop, so a failed assertion does not leave a server behind.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Kill(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}")).to_owned();
    assert!(!addr.ends_with(":0"), "the real port is printed: {addr}");
    let resp = reqwest::blocking::get(format!("http://{addr}/v1/sites/shop/config")).unwrap();
    assert_eq!(resp.status(), 200);
}
