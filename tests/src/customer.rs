//! A customer's own web server: pages on another origin than the collector,
//! as every real site that adds the script tag has. A green suite once loaded
//! the tag only from the collector's origin and missed that the browser
//! blocked it everywhere else.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Default)]
struct Content {
    /// Exact path (without the query) → body.
    pages: HashMap<String, String>,
    /// A folder served at the root for paths no page claims (a built app).
    dir: Option<PathBuf>,
}

pub struct CustomerSite {
    pub addr: SocketAddr,
    content: Arc<Mutex<Content>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CustomerSite {
    /// Listens on 127.0.0.1 on a port of its own.
    pub fn start() -> CustomerSite {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the customer site");
        let addr = listener.local_addr().expect("local address");
        let content = Arc::new(Mutex::new(Content::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (content, stop) = (content.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let content = content.clone();
                    std::thread::spawn(move || serve(stream, &content));
                }
            })
        };
        CustomerSite { addr, content, stop, thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`, what goes into the collector's `allowed_origins`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// Serves `body` at `path`, typed by the path's extension (HTML without one).
    pub fn put(&self, path: &str, body: &str) {
        self.content.lock().expect("content").pages.insert(path.to_owned(), body.to_owned());
    }

    /// Serves the files of `dir` (a built single-page app) at the root.
    pub fn serve_dir(&self, dir: &Path) {
        self.content.lock().expect("content").dir = Some(dir.to_owned());
    }
}

impl Drop for CustomerSite {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js" | "mjs") => "text/javascript",
        Some("css") => "text/css",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        _ => "text/html; charset=utf-8",
    }
}

fn serve(stream: TcpStream, content: &Mutex<Content>) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Headers are read and dropped: the answer depends on the path only.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let (status, kind, body) = {
        let content = content.lock().expect("content");
        if let Some(html) = content.pages.get(path) {
            ("200 OK", content_type(path), html.clone().into_bytes())
        } else if let Some(file) = content.dir.as_ref().and_then(|d| file_in(d, path)) {
            match std::fs::read(&file) {
                Ok(bytes) => ("200 OK", content_type(&file.to_string_lossy()), bytes),
                Err(_) => ("404 Not Found", "text/plain", b"not found".to_vec()),
            }
        } else {
            ("404 Not Found", "text/plain", b"not found".to_vec())
        }
    };
    let mut out = &stream;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = out.write_all(head.as_bytes()).and_then(|()| out.write_all(&body));
}

/// The file for `path` under `dir`; `index.html` for a folder (and for the
/// client-side routes of a single-page app, which have no file of their own).
fn file_in(dir: &Path, path: &str) -> Option<PathBuf> {
    if path.split('/').any(|part| part == "..") {
        return None;
    }
    let file = dir.join(path.trim_start_matches('/'));
    if file.is_file() {
        Some(file)
    } else if path.rsplit('/').next().is_some_and(|last| !last.contains('.')) {
        Some(dir.join("index.html")).filter(|f| f.is_file())
    } else {
        None
    }
}
