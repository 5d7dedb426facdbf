//! The outbox worker: a task on the server's runtime that delivers due
//! rows, one at a time, and records each attempt.
//!
//! At-least-once: a row is claimed (its attempt counted, its next attempt
//! pushed past the request timeout) before it is sent, and finished after.
//! If the process dies in between, the row falls due again and is resent
//! with the same `webhook-id`, which the receiver deduplicates.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::Exports;
use crate::clock::Clock;
use crate::config::Site;
use crate::storage::money::{Claimed, ExportKind, Finish, OutboxStore};

/// Rows taken per round: one. A claim lasts the request timeout plus a
/// margin, and rows are sent one after another, so a row claimed with
/// others could wait past its claim behind slow deliveries, and another
/// instance (or process on the same file) would then claim it and send it
/// at the same moment. One claim per row costs one short write per delivery.
const BATCH: u32 = 1;
/// The longest the worker sleeps before looking again: new rows are written
/// by other requests (and other processes on the same file) without telling it.
const IDLE_POLL: Duration = Duration::from_millis(250);
/// Shown in the receiver's logs.
const USER_AGENT: &str = concat!("ringsource-exports/", env!("CARGO_PKG_VERSION"));

/// What the worker needs.
pub struct Worker {
    pub store: Arc<dyn OutboxStore>,
    pub sites: HashMap<String, Arc<Site>>,
    pub clock: Arc<dyn Clock>,
}

/// Starts the worker on the current runtime (the server's) when any site exports;
/// it ends with the runtime.
pub fn start(worker: Worker) {
    if worker.sites.values().all(|s| s.exports.is_empty()) {
        return;
    }
    tokio::task::spawn_local(worker.run());
}

/// How one attempt went, before the retry policy decides what follows.
enum Attempt {
    Delivered,
    /// Worth trying again later.
    Failed(String),
    /// The receiver refused it for good (or it can no longer be sent).
    Refused(String),
}

impl Worker {
    async fn run(self) {
        let client = match reqwest::Client::builder().user_agent(USER_AGENT).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "exports are off: no HTTP client");
                return;
            }
        };
        loop {
            let store = Arc::clone(&self.store);
            let clock = Arc::clone(&self.clock);
            // Claimed rows are not due again before the slowest site's
            // timeout has passed, so a slow receiver is not sent a row twice.
            let claim_ms = self.claim_ms();
            let due = tokio::task::spawn_blocking(move || store.claim_due(BATCH, claim_ms, clock.as_ref())).await;
            let due = match due {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => {
                    crate::outage::server_error(&format_args!("exports: cannot read the outbox: {e}"));
                    Vec::new()
                }
                Err(e) => {
                    crate::outage::server_error(&format_args!("exports: the blocking pool failed: {e}"));
                    Vec::new()
                }
            };
            if due.is_empty() {
                tokio::time::sleep(self.idle_wait().await).await;
                continue;
            }
            for row in due {
                let finish = self.attempt(&client, &row).await;
                let store = Arc::clone(&self.store);
                let clock = Arc::clone(&self.clock);
                let id = row.id;
                match tokio::task::spawn_blocking(move || store.finish(id, &finish, clock.as_ref())).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => crate::outage::server_error(&format_args!(
                        "exports: cannot record the attempt on row {id}: {e}"
                    )),
                    Err(e) => crate::outage::server_error(&format_args!("exports: the blocking pool failed: {e}")),
                }
            }
        }
    }

    fn claim_ms(&self) -> i64 {
        let secs = self
            .sites
            .values()
            .filter(|s| !s.exports.is_empty())
            .map(|s| s.exports.retry.timeout_secs)
            .max()
            .unwrap_or(10);
        i64::try_from(secs).unwrap_or(300) * 1000 + 5000
    }

    /// Until the next row falls due, at most [`IDLE_POLL`].
    async fn idle_wait(&self) -> Duration {
        let store = Arc::clone(&self.store);
        let next = tokio::task::spawn_blocking(move || store.next_due_ms()).await.ok().and_then(Result::ok).flatten();
        match next {
            Some(at) => {
                let wait = u64::try_from(at - self.clock.now_ms()).unwrap_or(0);
                Duration::from_millis(wait.max(10)).min(IDLE_POLL)
            }
            None => IDLE_POLL,
        }
    }

    async fn attempt(&self, client: &reqwest::Client, row: &Claimed) -> Finish {
        let Some(site) = self.sites.get(&row.site) else {
            let finish = Finish::Dead { error: format!("site {:?} is no longer configured", row.site) };
            log_finish(row, &finish, self.clock.now_ms());
            return finish;
        };
        let policy = site.exports.retry;
        let finish = match send(client, &site.exports, row, self.clock.now_ms()).await {
            Attempt::Delivered => Finish::Sent,
            Attempt::Refused(error) => Finish::Dead { error },
            Attempt::Failed(error) if row.attempts >= policy.max_attempts => {
                Finish::Dead { error: format!("{error} (gave up after {} attempts)", row.attempts) }
            }
            Attempt::Failed(error) => {
                Finish::Retry { at_ms: self.clock.now_ms() + policy.backoff_ms(row.attempts), error }
            }
        };
        log_finish(row, &finish, self.clock.now_ms());
        finish
    }
}

/// Where a row stands after an attempt; why it failed is logged by [`send`]
/// and kept in the row.
fn log_finish(row: &Claimed, finish: &Finish, now_ms: i64) {
    let (site, export, kind, attempts) = (row.site.as_str(), row.id, row.kind.as_str(), row.attempts);
    match finish {
        Finish::Sent => tracing::debug!(site, export, kind, attempts, "export delivered"),
        Finish::Retry { at_ms, .. } => {
            let retry_in_s = (at_ms - now_ms).max(0) / 1000;
            tracing::info!(site, export, kind, attempts, retry_in_s, "export will be retried");
        }
        Finish::Dead { .. } => {
            tracing::warn!(site, export, kind, attempts, "export given up: it waits in the dead letter for a retry");
        }
    }
}

/// One HTTP attempt.
async fn send(client: &reqwest::Client, exports: &Exports, row: &Claimed, now_ms: i64) -> Attempt {
    let timeout = Duration::from_secs(exports.retry.timeout_secs);
    let request = match row.kind {
        ExportKind::Ga4 => {
            let Some(ga4) = &exports.ga4 else {
                return Attempt::Refused("the site no longer configures exports.ga4".to_owned());
            };
            client.post(ga4.url.clone())
        }
        ExportKind::Crm => {
            let Some(crm) = &exports.crm else {
                return Attempt::Refused("the site no longer configures exports.crm".to_owned());
            };
            let timestamp = now_ms.div_euclid(1000);
            let signature =
                crate::pbx::generic::sign(crm.key.expose(), &row.webhook_id, timestamp, row.body.as_bytes());
            client
                .post(crm.url.clone())
                .header("webhook-id", &row.webhook_id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
        }
    };
    let response =
        request.header("content-type", "application/json").timeout(timeout).body(row.body.clone()).send().await;
    let (site, export, kind) = (row.site.as_str(), row.id, row.kind.as_str());
    match response {
        Ok(r) if r.status().is_success() => Attempt::Delivered,
        Ok(r) => {
            let status = r.status();
            // Not the answer's text, which the outbox row keeps: a receiver
            // may echo the payload, and the payload names the caller.
            tracing::warn!(site, export, kind, status = status.as_u16(), "export answered with an error");
            let text: String = r.text().await.unwrap_or_default().chars().take(200).collect();
            let error = format!("HTTP {status}: {text}");
            // 408, 425 and 429 are "later"; any other 4xx will not change by
            // resending the same bytes, so the row goes to the dead letter
            // at once for a person to look at and retry.
            if status.is_client_error() && !matches!(status.as_u16(), 408 | 425 | 429) {
                Attempt::Refused(error)
            } else {
                Attempt::Failed(error)
            }
        }
        Err(e) if e.is_timeout() => {
            tracing::warn!(site, export, kind, timeout_s = timeout.as_secs(), "export not answered in time");
            Attempt::Failed(format!("no answer within {} s", timeout.as_secs()))
        }
        Err(e) => {
            let error = format!("cannot deliver: {e}");
            // GA4's address carries its API secret in the query.
            tracing::warn!(site, export, kind, error = %e.without_url(), "export not delivered");
            Attempt::Failed(error)
        }
    }
}
