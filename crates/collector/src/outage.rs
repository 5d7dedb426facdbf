//! Server errors (the database failing, the disk full) as the operator
//! reads them: the first one in full, then one summary line per
//! [`SUMMARY_INTERVAL`] with how many more there were and the latest,
//! instead of a line for every request that met the same outage. A quiet
//! interval ends the summary; the next error is printed in full again.
//! These are `error` events of this module's target; the refused requests
//! also have their own lines ([`crate::http::requests`]), with the error's
//! code but not its text.

use std::fmt::Display;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// How often the count of repeated errors is printed during an outage.
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Window {
    /// An error was printed and the interval it opened has not been quiet.
    open: bool,
    /// Errors since the last line printed.
    more: u64,
    latest: String,
}

static WINDOW: Mutex<Window> = Mutex::new(Window { open: false, more: 0, latest: String::new() });
static SUMMARIES: OnceLock<()> = OnceLock::new();

/// Reports a server error: one a client was answered a 5xx for, or one the
/// storage threads retry (a checkpoint on a full disk).
pub fn server_error(what: &dyn Display) {
    let mut window = WINDOW.lock().unwrap_or_else(PoisonError::into_inner);
    if window.open {
        window.more += 1;
        window.latest = what.to_string();
        return;
    }
    window.open = true;
    drop(window);
    tracing::error!("{what}");
    SUMMARIES.get_or_init(|| {
        // One thread for the process; it sleeps between summaries.
        let spawned = std::thread::Builder::new().name("ringsource-outage".into()).spawn(|| {
            loop {
                std::thread::sleep(SUMMARY_INTERVAL);
                summarise();
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "repeated server errors will not be summarised: no thread");
        }
    });
}

fn summarise() {
    let mut window = WINDOW.lock().unwrap_or_else(PoisonError::into_inner);
    if window.more == 0 {
        window.open = false;
        return;
    }
    let (more, latest) = (window.more, std::mem::take(&mut window.latest));
    window.more = 0;
    drop(window);
    tracing::error!(
        more,
        "{more} more server error{} in the last {} s; the latest: {latest}",
        if more == 1 { "" } else { "s" },
        SUMMARY_INTERVAL.as_secs()
    );
}
