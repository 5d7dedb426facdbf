//! The HTTP edge: what a hostile or broken client meets before any route.
//!
//! - **Deadlines.** A request head must be complete within [`HEAD_TIMEOUT`]
//!   of its first byte, on every request of a connection. actix-web's own
//!   head timer (`client_request_timeout`) covers only the first request of
//!   a connection: a client that sent one quick request and then the next
//!   head a byte a second held its connection for good. [`Deadlined`] wraps
//!   each connection's stream and ends it when a head overruns. A request
//!   body must arrive within [`BODY_TIMEOUT`] plus a second per
//!   [`BODY_MIN_BYTES_PER_SEC`] bytes received (Apache's mod_reqtimeout
//!   measures bodies so too): a slow upload that keeps moving is fine, a
//!   trickle is answered 408 and the connection is closed. An idle
//!   keep-alive connection is closed after [`KEEP_ALIVE`]. While more than
//!   half of the connection cap is open, a head gets
//!   [`HEAD_TIMEOUT_UNDER_PRESSURE`] from the moment its connection is
//!   accepted and a body [`BODY_TIMEOUT_UNDER_PRESSURE`] (plus a second per
//!   8 KiB), so a slowloris that fills the server turns over in a second
//!   or two and the visitors queued behind it are served.
//! - **Connections.** At most [`max_connections`] at once: what the
//!   process's open-file limit leaves after [`FD_RESERVE`] descriptors for
//!   SQLite, the static files and the export worker's sockets. Past it the
//!   server stops accepting, and new clients wait in the kernel's backlog
//!   until a deadline frees a slot, instead of the process running out of
//!   descriptors (which fails SQLite and file reads, not only sockets).
//! - **Headers.** The API and the dashboard forbid framing and sniffing and
//!   send no referrer ([`Policy`]); the dashboard runs under a
//!   content security policy that allows only its own files. The loader and
//!   the bundle stay public (see `static_files`).
//! - **405.** A known path asked with a method it does not take answers 405
//!   with `Allow` and the JSON error body, whichever module owns the route.

use std::cell::Cell;
use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::rt::net::TcpStream;
use actix_web::rt::time::{Instant, Sleep, sleep, sleep_until};
use actix_web::web::Bytes;
use actix_web::{HttpMessage as _, HttpResponse, error::PayloadError};
use ringsource_core::wire::{ErrorBody, ErrorDetail};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A request head must be whole this long after its first byte (actix-web's
/// default for the first request, kept for all of them).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A request body must be whole this long after its head, plus a second
/// for every [`BODY_MIN_BYTES_PER_SEC`] bytes it has delivered: a visit
/// (under 4 KiB) has 10 s, an 8 MiB cost upload that moves at 1 KiB/s or
/// faster is never cut.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// See [`BODY_TIMEOUT`].
pub const BODY_MIN_BYTES_PER_SEC: u64 = 1024;
/// A body's deadline while more than half of [`max_connections`] are open:
/// this long, plus a second per [`BODY_MIN_BYTES_PER_SEC_UNDER_PRESSURE`]
/// bytes received. Connections that trickle bodies would otherwise hold
/// the cap for tens of seconds each; a visit's body is one packet.
pub const BODY_TIMEOUT_UNDER_PRESSURE: Duration = Duration::from_secs(1);
/// See [`BODY_TIMEOUT_UNDER_PRESSURE`].
pub const BODY_MIN_BYTES_PER_SEC_UNDER_PRESSURE: u64 = 8 * 1024;
/// The head deadline while more than half of [`max_connections`] are open:
/// a slowloris that fills the server then loses each connection within a
/// second or two, so the clients queued behind it wait that long and not
/// [`HEAD_TIMEOUT`]. A head that is one packet, as browsers send it, is
/// never near it.
pub const HEAD_TIMEOUT_UNDER_PRESSURE: Duration = Duration::from_secs(1);
/// An idle keep-alive connection is closed after this (actix-web's default).
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How long a closing connection may take to flush (actix-web's default).
pub const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Open files kept for everything but client connections: stdio, the
/// runtime's epoll and wakers per worker, SQLite's database, WAL and
/// shared-memory files for each of its connections, static files being
/// served, the export worker's sockets. A running collector with four
/// workers holds about 40.
pub const FD_RESERVE: u64 = 64;
/// The fewest connections the cap allows, whatever the limit says.
const MIN_CONNECTIONS: u64 = 16;
/// Pending connections the kernel queues while the cap is reached.
pub const BACKLOG: u32 = 2048;

/// How many client connections the server holds at once: the open-file
/// limit (after raising the soft limit to the hard one, as Go's runtime does
/// at start) less [`FD_RESERVE`].
pub fn max_connections() -> usize {
    let limit = open_file_limit().unwrap_or(1024);
    usize::try_from(limit.saturating_sub(FD_RESERVE).max(MIN_CONNECTIONS)).unwrap_or(usize::MAX)
}

#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        // Raising the soft limit needs no privilege; when it fails the old one stands.
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum.or(Some(u64::MAX));
        }
    }
    Some(limit.current.unwrap_or(u64::MAX))
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

// ------------------------------------------------------------ connections

/// The server's count of open connections, against its cap.
#[derive(Debug)]
pub struct Gate {
    open: std::sync::atomic::AtomicUsize,
    cap: usize,
}

impl Gate {
    pub fn new(cap: usize) -> Arc<Gate> {
        Arc::new(Gate { open: 0.into(), cap })
    }

    /// How long the next request head may take.
    fn head_timeout(&self) -> Duration {
        if self.under_pressure() { HEAD_TIMEOUT_UNDER_PRESSURE } else { HEAD_TIMEOUT }
    }

    fn under_pressure(&self) -> bool {
        self.open.load(std::sync::atomic::Ordering::Relaxed) > self.cap / 2
    }

    /// A new connection: its stream behind the head deadline, and its peer.
    pub fn accept(self: &Arc<Self>, io: TcpStream) -> (Deadlined, Option<SocketAddr>) {
        let peer = io.peer_addr().ok();
        let local = io.local_addr().ok();
        self.open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let conn = Rc::new(ConnState { gate: Arc::clone(self), heads: Cell::new(0), in_request: Cell::new(false) });
        let mut stream = Deadlined { io, local, conn, head_clock: None, gate: Arc::clone(self) };
        // Under pressure a connection that sends nothing is not left to
        // actix-web's timer of the first head.
        if self.under_pressure() {
            stream.head_clock = Some((Box::pin(sleep(HEAD_TIMEOUT_UNDER_PRESSURE)), 0));
        }
        (stream, peer)
    }
}

/// What the requests of one connection tell its stream, and the server's
/// count of connections they read the pressure from.
#[derive(Debug)]
pub struct ConnState {
    gate: Arc<Gate>,
    /// Heads parsed on this connection so far.
    heads: Cell<u64>,
    /// A request is being handled: bytes that arrive now are its body.
    in_request: Cell<bool>,
}

impl ConnState {
    fn head_done(&self) {
        self.heads.set(self.heads.get() + 1);
        self.in_request.set(true);
    }

    fn request_done(&self) {
        self.in_request.set(false);
    }
}

/// A connection's stream with the head deadline: the first byte read while
/// no request is in hand starts a [`HEAD_TIMEOUT`] clock, which the next
/// parsed head stops. Past it, reads fail and the connection is dropped.
pub struct Deadlined {
    io: TcpStream,
    /// The address the connection arrived at.
    local: Option<SocketAddr>,
    conn: Rc<ConnState>,
    /// The running clock and the head count when it started.
    head_clock: Option<(Pin<Box<Sleep>>, u64)>,
    gate: Arc<Gate>,
}

impl Deadlined {
    pub fn conn(&self) -> Rc<ConnState> {
        Rc::clone(&self.conn)
    }

    /// The address the connection arrived at (on a listener bound to a
    /// wildcard address, one of the machine's own).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }
}

impl Drop for Deadlined {
    fn drop(&mut self) {
        self.gate.open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl AsyncRead for Deadlined {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A head was parsed since the clock started: it made it in time.
        if this.head_clock.as_ref().is_some_and(|(_, heads)| *heads != this.conn.heads.get()) {
            this.head_clock = None;
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        match &read {
            Poll::Ready(Ok(()))
                if buf.filled().len() > before && this.head_clock.is_none() && !this.conn.in_request.get() =>
            {
                this.head_clock = Some((Box::pin(sleep(this.gate.head_timeout())), this.conn.heads.get()));
            }
            Poll::Pending => {
                if let Some((clock, _)) = &mut this.head_clock
                    && clock.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request head did not arrive in time",
                    )));
                }
            }
            _ => {}
        }
        read
    }
}

impl AsyncWrite for Deadlined {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

// ------------------------------------------------------------ request bodies

/// How long a body may take: a base, and a second more per so many bytes.
#[derive(Debug, Clone, Copy)]
struct BodyPace {
    base: Duration,
    bytes_per_sec: u64,
}

impl BodyPace {
    const CALM: BodyPace = BodyPace { base: BODY_TIMEOUT, bytes_per_sec: BODY_MIN_BYTES_PER_SEC };
    const PRESSED: BodyPace =
        BodyPace { base: BODY_TIMEOUT_UNDER_PRESSURE, bytes_per_sec: BODY_MIN_BYTES_PER_SEC_UNDER_PRESSURE };
}

/// The request's body with its deadline; `expired` is set when it passes.
struct BodyDeadline {
    inner: Payload,
    clock: Pin<Box<Sleep>>,
    started: Instant,
    received: u64,
    pace: BodyPace,
    expired: Rc<Cell<bool>>,
}

impl BodyDeadline {
    fn new(inner: Payload, pace: BodyPace, expired: Rc<Cell<bool>>) -> Self {
        let started = Instant::now();
        let clock = Box::pin(sleep_until(started + pace.base));
        BodyDeadline { inner, clock, started, received: 0, pace, expired }
    }

    fn deadline(&self) -> Instant {
        self.started + self.pace.base + Duration::from_secs(self.received / self.pace.bytes_per_sec)
    }
}

impl futures_core::Stream for BodyDeadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received += chunk.len() as u64;
                let deadline = this.deadline();
                this.clock.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Pending if this.clock.as_mut().poll(cx).is_ready() => {
                this.expired.set(true);
                Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))))
            }
            other => other,
        }
    }
}

// ------------------------------------------------------------ middleware

/// The edge's middleware, outermost on the app: the body deadline, the
/// connection's head clock, 405 answers and the security headers.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let conn = req.conn_data::<Rc<ConnState>>().cloned();
    if let Some(conn) = &conn {
        conn.head_done();
    }
    let expired = match req.take_payload() {
        // No body (a GET): nothing to wait for, and no timer to make.
        Payload::None => None,
        payload => {
            let pace = match &conn {
                Some(conn) if conn.gate.under_pressure() => BodyPace::PRESSED,
                _ => BodyPace::CALM,
            };
            let expired = Rc::new(Cell::new(false));
            let body = BodyDeadline::new(payload, pace, Rc::clone(&expired));
            req.set_payload(Payload::from(Box::pin(body) as Pin<Box<dyn futures_core::Stream<Item = _>>>));
            Some(expired)
        }
    };
    let answer = next.call(req).await;
    if let Some(conn) = &conn {
        conn.request_done();
    }
    let mut res = answer?.map_into_boxed_body();
    if expired.is_some_and(|e| e.get()) {
        res = res.into_response(body_timeout());
    } else if res.status() == StatusCode::METHOD_NOT_ALLOWED && !res.headers().contains_key(header::ALLOW) {
        // A static file's route (actix-files answers 405 in text).
        let allow =
            crate::http::routes::allowed_methods(res.request().path()).unwrap_or_else(|| "GET, HEAD".to_owned());
        let method = res.request().method().to_string();
        let path = res.request().path().to_owned();
        res = res.into_response(crate::http::routes::method_not_allowed(&method, &path, &allow));
    }
    let policy = Policy::of(res.request().path());
    policy.apply(res.headers_mut());
    Ok(res)
}

fn error_json(status: StatusCode, code: &str, message: String) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody { error: ErrorDetail { code: code.to_owned(), message } })
}

fn body_timeout() -> HttpResponse {
    let mut resp = error_json(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body did not arrive in time ({} s, plus 1 s per {BODY_MIN_BYTES_PER_SEC} bytes received; \
             {} s plus 1 s per {BODY_MIN_BYTES_PER_SEC_UNDER_PRESSURE} bytes while the server is busy)",
            BODY_TIMEOUT.as_secs(),
            BODY_TIMEOUT_UNDER_PRESSURE.as_secs()
        ),
    );
    // The rest of a trickled body is not waited for.
    resp.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
    resp
}

// ------------------------------------------------------------ headers

/// The dashboard's policy: its own scripts, styles and API only. uPlot draws
/// on a canvas and sets styles through the DOM, which a policy does not
/// govern; the CSV download is a `blob:` link, which it does not either.
/// Call recordings play from the collector's own API (`media-src 'self'`).
pub const DASHBOARD_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     media-src 'self'; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
/// The API's policy: a JSON answer opened in a browser loads nothing and
/// is framed by no page.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; sandbox";

/// The security headers of a path: the API and the dashboard get a
/// content security policy, `nosniff` and no referrer; everything else
/// served gets `nosniff` (each file is sent with its real type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    csp: Option<&'static str>,
}

impl Policy {
    pub fn of(path: &str) -> Policy {
        let csp = if path.starts_with("/v1/") {
            Some(API_CSP)
        } else if path == "/dashboard" || path.starts_with("/dashboard/") {
            Some(DASHBOARD_CSP)
        } else {
            None
        };
        Policy { csp }
    }

    /// Sets the headers, keeping any a route set itself.
    pub fn apply(self, headers: &mut header::HeaderMap) {
        let mut set = |name: header::HeaderName, value: &'static str| {
            if !headers.contains_key(&name) {
                headers.insert(name, HeaderValue::from_static(value));
            }
        };
        set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        if let Some(csp) = self.csp {
            set(header::CONTENT_SECURITY_POLICY, csp);
            set(header::REFERRER_POLICY, "no-referrer");
        }
    }
}
