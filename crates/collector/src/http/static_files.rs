//! Static files served by the collector: the script-tag loader, the wasm
//! bundle and the pages under `www/` (demo site, bench, dashboard).
//!
//! The loader and the bundle are loaded by customer pages on other origins,
//! so they are public: any origin may read them (`Access-Control-Allow-Origin:
//! *`, which the loader's cross-origin `import()` of the glue needs) and
//! embed them (`Cross-Origin-Resource-Policy: cross-origin`, which pages that
//! isolate themselves with COEP need).
//!
//! Caching: `/ringsource.js` is the one URL that site owners paste into their
//! pages, so it cannot carry a content hash. It is served with a short
//! `max-age` (a release reaches visitors within minutes) and a day of
//! `stale-while-revalidate`, so a returning visitor's browser runs its copy at
//! once instead of waiting a round trip to revalidate it. It names the glue
//! and the wasm by content hash (`/pkg/ringsource.<hash>.js`), and those are
//! served `immutable` for a year: a returning visitor fetches nothing.
//! Everything is gzipped once, when it is loaded, not per request.
//!
//! A loader cached before a release names hashes that are gone after it. Each
//! version loaded since the collector started stays servable, and a hash
//! that was never seen gets the current file, uncached: glue and wasm then
//! both come from the current build, so they still match each other.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use actix_files::Files;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

/// `Cache-Control` of the script-tag loader.
pub const LOADER_CACHE_CONTROL: &str = "public, max-age=300, stale-while-revalidate=86400";
/// `Cache-Control` of the content-hashed glue and wasm.
pub const HASHED_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else served from disk.
pub const FILES_CACHE_CONTROL: &str = "no-cache";

/// The loader, as the bundle ships it (the npm package's `tag.js`).
const LOADER_FILE: &str = "tag.js";
/// The bundle's files that the loader fetches, by the names the loader uses
/// for them, and the content type each is served with.
const LOADED_FILES: [(&str, &str); 2] =
    [("ringsource.js", "text/javascript; charset=utf-8"), ("ringsource_bg.wasm", "application/wasm")];

/// How many earlier versions of the bundle stay servable by hash.
const KEPT_VERSIONS: usize = 4;

/// The folders the static routes read from.
#[derive(Debug, Clone)]
pub struct StaticDirs {
    pub bundle_dir: PathBuf,
    pub www_dir: PathBuf,
}

/// The `www/` sub-folders published under their own name (`/demo/…` → `www/demo/…`).
pub const WWW_SECTIONS: &[&str] = &["demo", "bench", "dashboard"];

/// Why the loader cannot be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BundleError {
    #[error(
        "cannot read {path}: {reason}; build the web bundle first (cargo xtask bundle) or point [server].bundle_dir at it"
    )]
    Missing { path: PathBuf, reason: String },
    #[error(
        "{path} does not name '{name}', so it cannot be pointed at the hashed file; rebuild the bundle (cargo xtask bundle)"
    )]
    LoaderMismatch { path: PathBuf, name: &'static str },
}

/// One file held in memory, with its gzip form.
struct Asset {
    body: Bytes,
    gzip: Bytes,
    content_type: &'static str,
    etag: String,
}

impl Asset {
    fn new(body: Vec<u8>, content_type: &'static str) -> Asset {
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex(&digest[..8]));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing into a Vec cannot fail.
        let _ = gz.write_all(&body);
        let gzip = gz.finish().unwrap_or_default();
        Asset { body: body.into(), gzip: gzip.into(), content_type, etag }
    }

    fn hash(&self) -> &str {
        self.etag.trim_matches('"')
    }

    /// The response for `req`: 304 when it already has this version, gzip when accepted.
    fn respond(&self, req: &HttpRequest, cache_control: &'static str) -> HttpResponse {
        let unchanged = if_none_match(req, &self.etag);
        let mut resp = if unchanged { HttpResponse::NotModified() } else { HttpResponse::Ok() };
        resp.insert_header((header::CACHE_CONTROL, cache_control))
            .insert_header((header::ETAG, self.etag.as_str()))
            .insert_header((header::VARY, "Accept-Encoding"));
        public(&mut resp);
        if unchanged {
            return resp.finish();
        }
        resp.content_type(self.content_type);
        if accepts_gzip(req) && self.gzip.len() < self.body.len() {
            resp.insert_header((header::CONTENT_ENCODING, "gzip"));
            resp.body(self.gzip.clone())
        } else {
            resp.body(self.body.clone())
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn if_none_match(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip")))
}

/// Any page may read and embed what is served here.
fn public(resp: &mut actix_web::HttpResponseBuilder) {
    resp.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .insert_header((header::CROSS_ORIGIN_RESOURCE_POLICY, "cross-origin"));
}

/// The loader and the files it loads, as read from the bundle folder at one moment.
struct Version {
    /// Modification time and length of each source file, to notice a rebuild.
    stamp: Vec<(SystemTime, u64)>,
    loader: Asset,
    /// Hashed name (`ringsource.<hash>.js`) → file.
    files: Vec<(String, Arc<Asset>)>,
}

/// The bundle as served, reloaded when `cargo xtask bundle` rewrites it.
pub struct Bundle {
    dir: PathBuf,
    current: RwLock<Option<Arc<Version>>>,
    /// Files of earlier versions, newest first, still servable by hash.
    earlier: RwLock<Vec<(String, Arc<Asset>)>>,
}

fn sources(dir: &Path) -> Vec<PathBuf> {
    std::iter::once(LOADER_FILE).chain(LOADED_FILES.iter().map(|(n, _)| *n)).map(|n| dir.join(n)).collect()
}

fn stamp(dir: &Path) -> Result<Vec<(SystemTime, u64)>, BundleError> {
    sources(dir)
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path)
                .map_err(|e| BundleError::Missing { path: path.clone(), reason: e.to_string() })?;
            Ok((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()))
        })
        .collect()
}

fn read(path: &Path) -> Result<Vec<u8>, BundleError> {
    std::fs::read(path).map_err(|e| BundleError::Missing { path: path.to_owned(), reason: e.to_string() })
}

/// `ringsource.js` → `ringsource.<hash>.js`.
fn hashed_name(name: &str, hash: &str) -> String {
    match name.split_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

impl Version {
    fn load(dir: &Path, stamp: Vec<(SystemTime, u64)>) -> Result<Version, BundleError> {
        let loader_path = dir.join(LOADER_FILE);
        let mut loader = String::from_utf8_lossy(&read(&loader_path)?).into_owned();
        let mut files = Vec::new();
        for (name, content_type) in LOADED_FILES {
            let asset = Asset::new(read(&dir.join(name))?, content_type);
            let hashed = hashed_name(name, asset.hash());
            // The loader names each file as one quoted literal; it resolves
            // names against its own URL, and is served from the root.
            let literal = format!("'{name}'");
            if !loader.contains(&literal) {
                return Err(BundleError::LoaderMismatch { path: loader_path, name });
            }
            loader = loader.replace(&literal, &format!("'pkg/{hashed}'"));
            files.push((hashed, Arc::new(asset)));
        }
        Ok(Version { stamp, loader: Asset::new(loader.into_bytes(), "text/javascript; charset=utf-8"), files })
    }
}

impl Bundle {
    pub fn new(dir: PathBuf) -> Bundle {
        Bundle { dir, current: RwLock::new(None), earlier: RwLock::new(Vec::new()) }
    }

    /// The current version, reloaded first if the files changed on disk.
    fn version(&self) -> Result<Arc<Version>, BundleError> {
        let stamp = stamp(&self.dir)?;
        if let Some(v) = self.current.read().unwrap_or_else(|e| e.into_inner()).as_ref()
            && v.stamp == stamp
        {
            return Ok(Arc::clone(v));
        }
        let fresh = Arc::new(Version::load(&self.dir, stamp)?);
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = current.replace(Arc::clone(&fresh)) {
            let mut earlier = self.earlier.write().unwrap_or_else(|e| e.into_inner());
            for file in old.files.iter().rev() {
                earlier.insert(0, file.clone());
            }
            earlier.truncate(KEPT_VERSIONS * LOADED_FILES.len());
        }
        log_version(&fresh);
        Ok(fresh)
    }

    fn loader(&self, req: &HttpRequest) -> HttpResponse {
        match self.version() {
            Ok(v) => v.loader.respond(req, LOADER_CACHE_CONTROL),
            Err(e) => bundle_error(&e),
        }
    }

    fn hashed(&self, req: &HttpRequest, name: &str) -> Option<HttpResponse> {
        let version = self.version().ok()?;
        if let Some((_, asset)) = version.files.iter().find(|(n, _)| n == name) {
            return Some(asset.respond(req, HASHED_CACHE_CONTROL));
        }
        let earlier = self.earlier.read().unwrap_or_else(|e| e.into_inner());
        if let Some((_, asset)) = earlier.iter().find(|(n, _)| n == name) {
            return Some(asset.respond(req, HASHED_CACHE_CONTROL));
        }
        // A hash never seen: the current file of that name, not cached under it.
        let (stem, ext) = (name.split('.').next()?, name.rsplit('.').next()?);
        let (_, asset) = version.files.iter().find(|(n, _)| n.starts_with(&format!("{stem}.")) && n.ends_with(ext))?;
        Some(asset.respond(req, FILES_CACHE_CONTROL))
    }
}

/// One line per bundle version, so an operator sees which build is served.
fn log_version(version: &Version) {
    let names: Vec<&str> = version.files.iter().map(|(n, _)| n.as_str()).collect();
    tracing::info!(files = %names.join(", "), "serving the bundle");
}

/// Registers the static routes on an app or scope.
pub fn configure(dirs: &StaticDirs, cfg: &mut web::ServiceConfig) {
    let bundle = web::Data::new(Bundle::new(dirs.bundle_dir.clone()));
    let loader_bundle = bundle.clone();
    cfg.route(
        "/ringsource.js",
        web::get().to(move |req: HttpRequest| {
            let bundle = loader_bundle.clone();
            async move { bundle.loader(&req) }
        }),
    );
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
    let hashed_bundle = bundle.clone();
    cfg.service(
        web::scope("/pkg")
            .route(
                "/{name:[A-Za-z0-9_]+\\.[0-9a-f]{16}\\.[a-z]+}",
                web::get().to(move |req: HttpRequest, name: web::Path<String>| {
                    let bundle = hashed_bundle.clone();
                    async move { bundle.hashed(&req, &name).unwrap_or_else(|| unknown_file(&req)) }
                }),
            )
            .service(
                web::scope("")
                    .wrap(no_cache())
                    .wrap(
                        DefaultHeaders::new()
                            .add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                            .add((header::CROSS_ORIGIN_RESOURCE_POLICY, "cross-origin")),
                    )
                    .service(Files::new("", dirs.bundle_dir.clone())),
            ),
    );
}

fn unknown_file(req: &HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": { "code": "not_found", "message": format!("no such bundle file: {}", req.path()) }
    }))
}

fn no_cache() -> DefaultHeaders {
    DefaultHeaders::new().add((header::CACHE_CONTROL, HeaderValue::from_static(FILES_CACHE_CONTROL)))
}

fn redirect(to: &str) -> HttpResponse {
    HttpResponse::Found().insert_header(("Location", to)).finish()
}

fn bundle_error(e: &BundleError) -> HttpResponse {
    let code = match e {
        BundleError::Missing { .. } => "bundle_missing",
        BundleError::LoaderMismatch { .. } => "bundle_invalid",
    };
    HttpResponse::NotFound().json(serde_json::json!({ "error": { "code": code, "message": e.to_string() } }))
}
