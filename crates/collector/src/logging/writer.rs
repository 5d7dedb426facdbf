//! stderr behind a buffer that a thread of its own writes out every
//! [`FLUSH_EVERY`], or sooner when it fills up, and at once after a warning
//! or an error.
//!
//! Measured with a line per lease (`cargo xtask bench collector`'s load,
//! CPU time of the collector per request, runs interleaved on the 2-core
//! bench machine): written straight to stderr, a `write` call per line,
//! 26 % more than without logs; handed to a writer thread
//! (tracing-appender), 35 to 48 % more, the wake-ups costing more than the
//! calls saved; through this buffer, 21 %. A line becomes a copy under an
//! uncontended lock and a `write` per 64 KiB. The price: an info or debug
//! line reaches the file up to [`FLUSH_EVERY`] late, and a killed process
//! loses that much.

use std::io::{self, BufWriter, Stderr, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The longest an info or debug line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
const CAPACITY: usize = 64 * 1024;

/// The process's stderr, buffered; clones share the buffer.
#[derive(Clone)]
pub struct BufferedStderr {
    out: Arc<Mutex<BufWriter<Stderr>>>,
}

impl BufferedStderr {
    /// The buffer and the thread that writes it out; the thread ends once
    /// every clone is gone.
    pub fn start() -> io::Result<Self> {
        let out = Arc::new(Mutex::new(BufWriter::with_capacity(CAPACITY, io::stderr())));
        let weak = Arc::downgrade(&out);
        std::thread::Builder::new().name("ringsource-log".into()).spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                let Some(out) = weak.upgrade() else { return };
                let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
                if !out.buffer().is_empty() {
                    let _ = out.flush();
                }
            }
        })?;
        Ok(Self { out })
    }

    /// Writes out what the buffer holds.
    pub fn flush(&self) {
        let _ = self.lock().flush();
    }

    fn lock(&self) -> MutexGuard<'_, BufWriter<Stderr>> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One event's line; warnings and errors are written out when it is dropped.
pub struct Line<'a> {
    out: MutexGuard<'a, BufWriter<Stderr>>,
    flush: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.flush {
            let _ = self.out.flush();
        }
    }
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line { out: self.lock(), flush: true }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        // Levels order by verbosity: ERROR < WARN < INFO.
        Line { out: self.lock(), flush: *meta.level() <= Level::WARN }
    }
}
