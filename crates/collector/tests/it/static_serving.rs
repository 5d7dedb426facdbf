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

/// A bundle as `cargo xtask bundle` lays it out: the loader names its two
/// neighbours as quoted literals.
const LOADER: &str = "import('ringsource.js'); fetch('ringsource_bg.wasm');";
/// Long and repetitive enough that gzip pays, as it does on the real glue.
const GLUE: &[u8] = b"export default function init() {}\nexport function start() {}\nexport function start() {}\n\
export function start() {}\nexport function start() {}\nexport function start() {}\nexport function start() {}\n";
const WASM: &[u8] = b"\0asm\x01\0\0\0";

fn write_bundle(root: &Path, glue: &[u8]) {
    write(&root.join("pkg/tag.js"), LOADER.as_bytes());
    write(&root.join("pkg/ringsource.js"), glue);
    write(&root.join("pkg/ringsource_bg.wasm"), WASM);
}

/// The loader as served, and the two hashed paths it names.
fn loader(h: &Harness) -> (String, String, String) {
    let resp = h.client.get(h.url("/ringsource.js")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().unwrap();
    let path = |stem: &str| {
        let at = text.find(&format!("'pkg/{stem}.")).unwrap_or_else(|| panic!("{stem} in {text}"));
        text[at + 1..].split('\'').next().unwrap().to_owned()
    };
    let (glue, wasm) = (path("ringsource"), path("ringsource_bg"));
    (text, glue, wasm)
}

#[test]
fn the_loader_names_content_hashed_files_that_any_origin_may_load() {
    let h = start("", "", "");
    let root = h.db.parent().unwrap();
    write_bundle(root, GLUE);
    write(&root.join("www/demo/index.html"), b"<!doctype html><title>demo</title>");

    let js = h.client.get(h.url("/ringsource.js")).header("origin", "https://customer.example").send().unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert_eq!(js.headers()["cache-control"], "public, max-age=300, stale-while-revalidate=86400");
    assert_eq!(js.headers()["access-control-allow-origin"], "*");
    assert_eq!(js.headers()["cross-origin-resource-policy"], "cross-origin");
    let etag = js.headers()["etag"].clone();
    let revalidated = h.client.get(h.url("/ringsource.js")).header("if-none-match", etag).send().unwrap();
    assert_eq!(revalidated.status(), 304);

    let (text, glue, wasm) = loader(&h);
    assert!(
        glue.starts_with("pkg/ringsource.") && glue.ends_with(".js") && glue.len() == "pkg/ringsource..js".len() + 16
    );
    assert!(wasm.starts_with("pkg/ringsource_bg.") && wasm.ends_with(".wasm"), "{text}");

    let resp = h.client.get(h.url(&format!("/{glue}"))).header("accept-encoding", "gzip").send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert_eq!(resp.headers()["cross-origin-resource-policy"], "cross-origin");
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    // reqwest is built without gzip here, so the body is what went over the wire.
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&resp.bytes().unwrap()[..]), &mut unzipped).unwrap();
    assert_eq!(unzipped, GLUE);

    let resp = h.client.get(h.url(&format!("/{wasm}"))).send().unwrap();
    assert_eq!(resp.headers()["content-type"], "application/wasm");
    assert!(resp.headers().get("content-encoding").is_none(), "no gzip unless asked for");
    assert_eq!(&resp.bytes().unwrap()[..], WASM);

    // The package's other files stay reachable under their own names, uncached.
    let plain = h.client.get(h.url("/pkg/ringsource_bg.wasm")).send().unwrap();
    assert_eq!(plain.headers()["content-type"], "application/wasm");
    assert_eq!(plain.headers()["cache-control"], "no-cache");
    assert_eq!(plain.headers()["access-control-allow-origin"], "*");

    let page = h.client.get(h.url("/demo/")).send().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));

    let no_redirect =
        crate::common::http::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let root_resp = no_redirect.get(h.url("/")).send().unwrap();
    assert_eq!(root_resp.status(), 302);
    assert_eq!(root_resp.headers()["location"], "/demo/");
    let demo = no_redirect.get(h.url("/demo")).send().unwrap();
    assert_eq!(demo.headers()["location"], "/demo/");
}

#[test]
fn a_rebuilt_bundle_is_served_at_once_and_the_old_hashes_keep_working() {
    let h = start("", "", "");
    let root = h.db.parent().unwrap();
    write_bundle(root, GLUE);
    let (_, old_glue, _) = loader(&h);

    // Same length, so only the content (and the clock) tells the rebuild apart.
    let mut rebuilt = GLUE.to_vec();
    rebuilt[0] = b'E';
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_bundle(root, &rebuilt);
    let (_, new_glue, _) = loader(&h);
    assert_ne!(old_glue, new_glue, "a new build gets a new name");

    let new = h.client.get(h.url(&format!("/{new_glue}"))).send().unwrap();
    assert_eq!(&new.bytes().unwrap()[..], &rebuilt[..]);
    // A visitor whose cached loader predates the rebuild still gets the files it names.
    let old = h.client.get(h.url(&format!("/{old_glue}"))).send().unwrap();
    assert_eq!(old.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(&old.bytes().unwrap()[..], GLUE);
    // A hash this collector never served (it restarted since): the current
    // file, not cached under a name that does not match it.
    let unknown = h.client.get(h.url("/pkg/ringsource.0123456789abcdef.js")).send().unwrap();
    assert_eq!(unknown.status(), 200);
    assert_eq!(unknown.headers()["cache-control"], "no-cache");
    assert_eq!(&unknown.bytes().unwrap()[..], &rebuilt[..]);
}

#[test]
fn a_loader_that_does_not_name_its_files_is_refused_with_the_fix() {
    let h = start("", "", "");
    let root = h.db.parent().unwrap();
    write_bundle(root, GLUE);
    write(&root.join("pkg/tag.js"), b"import('elsewhere.js')");
    let resp = h.client.get(h.url("/ringsource.js")).send().unwrap();
    assert_eq!(resp.status(), 404);
    let err: serde_json::Value = resp.json().unwrap();
    assert_eq!(err["error"]["code"], "bundle_invalid");
    assert!(err["error"]["message"].as_str().unwrap().contains("cargo xtask bundle"), "{err}");
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
    let resp = crate::common::http::get(format!("http://{addr}/v1/sites/shop/config")).unwrap();
    assert_eq!(resp.status(), 200);
}
