//! Static files served by the collector: the script-tag loader, the wasm
//! bundle and the pages under `www/` (demo site, bench, dashboard).
//!
//! Caching: `/ringsource.js` is the one URL that site owners paste into their
//! pages, so it cannot carry a content hash; it gets a short `max-age` so a
//! new release reaches visitors within minutes. The bundle and the pages are
//! not content-hashed either, so they are served `no-cache`: browsers keep
//! them but revalidate with the ETag / Last-Modified that actix-files sends,
//! which costs a 304 instead of a download.

use std::path::{Path, PathBuf};

use actix_files::{Files, NamedFile};
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};

/// `Cache-Control` of the script-tag loader.
pub const LOADER_CACHE_CONTROL: &str = "public, max-age=300";
/// `Cache-Control` of everything else served from disk.
pub const FILES_CACHE_CONTROL: &str = "no-cache";

/// The folders the static routes read from.
#[derive(Debug, Clone)]
pub struct StaticDirs {
    pub bundle_dir: PathBuf,
    pub www_dir: PathBuf,
}

/// The `www/` sub-folders published under their own name (`/demo/…` → `www/demo/…`).
pub const WWW_SECTIONS: &[&str] = &["demo", "bench", "dashboard"];

/// Registers the static routes on an app or scope.
pub fn configure(dirs: &StaticDirs, cfg: &mut web::ServiceConfig) {
    let tag = dirs.bundle_dir.join("tag.js");
    cfg.route("/ringsource.js", web::get().to(move |req: HttpRequest| loader(req, tag.clone())));
    cfg.route("/", web::get().to(|| async { redirect("/demo/") }));
    for section in WWW_SECTIONS {
        let mount = format!("/{section}");
        let dir = dirs.www_dir.join(section);
        // `/demo` without the slash would break the pages' relative links.
        let slash = format!("/{section}/");
        cfg.route(
            &mount,
            web::get().to(move || {
                let to = slash.clone();
                async move { redirect(&to) }
            }),
        );
        cfg.service(web::scope(&mount).wrap(no_cache()).service(Files::new("", dir).index_file("index.html")));
    }
    cfg.service(web::scope("/pkg").wrap(no_cache()).service(Files::new("", dirs.bundle_dir.clone())));
}

fn no_cache() -> DefaultHeaders {
    DefaultHeaders::new().add((CACHE_CONTROL, FILES_CACHE_CONTROL))
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::Found().insert_header(("Location", to)).finish()
}

async fn loader(req: HttpRequest, tag: PathBuf) -> HttpResponse {
    match NamedFile::open_async(&tag).await {
        Ok(file) => {
            let mut resp = file.into_response(&req);
            resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(LOADER_CACHE_CONTROL));
            resp
        }
        Err(e) => missing_bundle(&tag, &e),
    }
}

fn missing_bundle(tag: &Path, e: &std::io::Error) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": {
            "code": "bundle_missing",
            "message": format!(
                "cannot open {}: {e}; build the web bundle first (cargo xtask) or point [server].bundle_dir at it",
                tag.display()
            ),
        }
    }))
}
