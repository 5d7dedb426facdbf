//! Pool health for the dashboard: `GET /v1/reports/pools?site=&from=&to=`,
//! behind the admin token like the calls API.
//!
//! Per pool of the site: its size, per hour the most numbers live at once
//! (from the `leases` table) over the size, and the most busy at once (live
//! or cooling down: what a new visitor cannot get), the exhaustions (counted
//! per minute in `pool_exhaustions`), and the recommended size with its inputs
//! ([`lease::pool_sizing`]: peak new sessions per hour × (mean renewed
//! time, hold and cooldown added up) minutes ÷ 60 × 1.3, rounded up; the
//! renewed time is measured from the window's leases). Hours start on the
//! site's clock. `warning` is set from [`lease::UTILISATION_WARNING`] (75%)
//! of numbers busy on.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use jiff::tz::TimeZone;
use ringsource_core::lease::{self, SIZING_MARGIN, SizingInputs, UTILISATION_WARNING};
use ringsource_core::pool_usage::{self, Buckets};
use ringsource_core::wire::{ErrorBody, ErrorDetail};
use serde::{Deserialize, Serialize};

use crate::calls::api::Admin;
use crate::calls::dates;
use crate::clock::Clock;
use crate::config::Site;
use crate::storage::StorageError;
use crate::storage::pools::{ExhaustionView, LeaseSpan, PoolActivity, PoolReportStore};

/// The route this module registers, for `api::ROUTES` and `openapi.json`.
pub const ROUTES: &[(&str, &str)] = &[("GET", "/v1/reports/pools")];

const HOUR_MS: i64 = 3_600_000;
/// Without `from`, the report covers the 7 days before `to`.
const DEFAULT_DAYS: i64 = 7;
/// At most this many hours in one report (93 days).
const MAX_HOURS: i64 = 93 * 24;
/// The newest rows of refusals (per minute and kind) listed per pool (all
/// are counted).
const MAX_LISTED_EXHAUSTIONS: usize = 100;

/// The report's shared state.
pub struct PoolsReportApi {
    pub store: Arc<dyn PoolReportStore>,
    pub sites: HashMap<String, Arc<Site>>,
    pub clock: Arc<dyn Clock>,
}

impl PoolsReportApi {
    pub fn new(store: Arc<dyn PoolReportStore>, sites: &[Site], clock: Arc<dyn Clock>) -> Self {
        let sites = sites.iter().map(|s| (s.id.clone(), Arc::new(s.clone()))).collect();
        Self { store, sites, clock }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolsReportError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("no site {0:?} is configured")]
    UnknownSite(String),
    #[error("storage failed: {0}")]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ResponseError for PoolsReportError {
    fn status_code(&self) -> StatusCode {
        match self {
            PoolsReportError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PoolsReportError::UnknownSite(_) => StatusCode::NOT_FOUND,
            PoolsReportError::Storage(_) | PoolsReportError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.status_code().is_server_error() {
            crate::outage::server_error(self);
        }
        let code = match self {
            PoolsReportError::BadRequest(_) => "bad_request",
            PoolsReportError::UnknownSite(_) => "unknown_site",
            PoolsReportError::Storage(_) => "storage_error",
            PoolsReportError::Internal(_) => "internal_error",
        };
        HttpResponse::build(self.status_code())
            .json(ErrorBody { error: ErrorDetail { code: code.to_owned(), message: self.to_string() } })
    }
}

/// Registers the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/reports/pools", web::get().to(report));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    site: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// One hour of one pool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourRow {
    pub hour_ms: i64,
    /// The most numbers live at the same instant.
    pub max_live: u32,
    /// The most numbers live or cooling down at the same instant: at the
    /// size, a new visitor finds the pool exhausted.
    pub max_busy: u32,
    /// `max_live / size`, 0..=1.
    pub utilisation: f64,
    pub new_sessions: u32,
    pub exhaustions: u32,
}

/// One pool's health over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolHealth {
    pub pool_id: String,
    pub size: u32,
    pub hold_secs: u32,
    pub on_exhaustion: &'static str,
    pub live_now: u32,
    pub utilisation_now: f64,
    pub peak_live: u32,
    pub peak_utilisation: f64,
    pub peak_new_sessions_per_hour: u32,
    pub cooldown_secs: u32,
    /// The most numbers busy (live or cooling down) at once, and its share
    /// of the size.
    pub peak_busy: u32,
    pub peak_busy_share: f64,
    /// `sizing.recommended_size`.
    pub recommended_size: u32,
    /// The formula's inputs and steps, for the dashboard to show.
    pub sizing: SizingView,
    /// Peak busy share (or current utilisation) at or over the warning line.
    pub warning: bool,
    /// Visitors refused because no number was free.
    pub exhaustion_count: u32,
    /// Visitors refused a free number because their network was flooding
    /// the pool and already held its share.
    pub over_share_count: u32,
    /// The newest refusals, counted per minute and kind, oldest first.
    pub exhaustions: Vec<ExhaustionView>,
    pub hours: Vec<HourRow>,
}

/// The recommended size and what it was computed from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizingView {
    pub peak_new_sessions_per_hour: u32,
    pub hold_secs: u32,
    pub cooldown_secs: u32,
    /// Mean time the window's leases were renewed beyond their first hold.
    pub mean_renewed_secs: f64,
    /// Leases started in the window, which the mean is over.
    pub leases_measured: u32,
    /// Renewed time + hold + cooldown.
    pub occupancy_secs: f64,
    /// Peak new sessions per hour × occupancy hours.
    pub busy_at_peak: f64,
    pub margin: f64,
    pub recommended_size: u32,
}

/// Parses a time bound: Unix ms, or a `YYYY-MM-DD` day of the site's time
/// zone (as an upper bound, the whole day is included).
fn time_bound(zone: &TimeZone, name: &str, text: &str, upper: bool) -> Result<i64, PoolsReportError> {
    dates::time_bound(zone, text, upper).map_err(|e| PoolsReportError::BadRequest(format!("{name}={e}")))
}

/// Builds the per-pool health from the stored activity. Hours start on the
/// hour of the site's clock; `from_ms` is rounded down to one.
pub fn build(site: &Site, activity: &PoolActivity, from_ms: i64, to_ms: i64) -> Vec<PoolHealth> {
    // The bounds were checked by the handler; an instant the calendar cannot
    // place falls back to the UTC hour.
    let first_hour =
        dates::local_hour_start_ms(&site.time_zone, from_ms).unwrap_or(from_ms - from_ms.rem_euclid(HOUR_MS));
    let buckets = Buckets::new(first_hour, to_ms, HOUR_MS);
    site.pools
        .iter()
        .map(|pool| {
            let size = u32::try_from(pool.numbers.len()).unwrap_or(u32::MAX);
            let leases: Vec<&LeaseSpan> = activity.leases.iter().filter(|l| l.pool_id == pool.id).collect();
            let spans: Vec<(i64, i64)> = leases.iter().map(|l| (l.started_at_ms, l.ended_at_ms)).collect();
            let by_number: Vec<(&str, i64, i64)> =
                leases.iter().map(|l| (l.number.as_str(), l.started_at_ms, l.ended_at_ms)).collect();
            let cooldown_ms = i64::from(pool.cooldown_secs) * 1000;
            let busy = pool_usage::peak_concurrency(&pool_usage::busy_spans(&by_number, cooldown_ms), buckets);
            let started_here: Vec<(i64, i64)> =
                spans.iter().copied().filter(|&(start, _)| start >= from_ms && start < to_ms).collect();
            let mean_renewed_ms = pool_usage::mean_renewed_ms(&started_here, i64::from(pool.hold_secs) * 1000);
            let asks: Vec<(i64, u32)> =
                activity.first_asks.iter().filter(|a| a.pool_id == pool.id).map(|a| (a.at_ms, a.sessions)).collect();
            let exhaustions: Vec<&ExhaustionView> =
                activity.exhaustions.iter().filter(|e| e.pool_id == pool.id).collect();
            let peaks = pool_usage::peak_concurrency(&spans, buckets);
            let news = pool_usage::counts(&asks, buckets);
            let exhausted: Vec<(i64, u32)> =
                exhaustions.iter().filter(|e| e.exhausted()).map(|e| (e.at_ms, e.count)).collect();
            let exhaustion_count = exhausted.iter().fold(0u32, |sum, (_, n)| sum.saturating_add(*n));
            let over_share_count =
                exhaustions.iter().filter(|e| !e.exhausted()).fold(0u32, |sum, e| sum.saturating_add(e.count));
            let exhausted = pool_usage::counts(&exhausted, buckets);
            let hours: Vec<HourRow> = (0..buckets.len())
                .map(|i| HourRow {
                    hour_ms: buckets.start(i),
                    max_live: peaks[i],
                    max_busy: busy[i],
                    utilisation: lease::utilisation(peaks[i] as usize, size as usize),
                    new_sessions: news[i],
                    exhaustions: exhausted[i],
                })
                .collect();
            let live_now = activity.live_now.iter().find(|(id, _)| *id == pool.id).map_or(0, |(_, n)| *n);
            let peak_live = peaks.iter().copied().max().unwrap_or(0);
            let peak_new = news.iter().copied().max().unwrap_or(0);
            let peak_utilisation = lease::utilisation(peak_live as usize, size as usize);
            let utilisation_now = lease::utilisation(live_now as usize, size as usize);
            let peak_busy = busy.iter().copied().max().unwrap_or(0);
            let peak_busy_share = lease::utilisation(peak_busy as usize, size as usize);
            let inputs = SizingInputs {
                peak_new_sessions_per_hour: peak_new,
                hold_secs: pool.hold_secs,
                cooldown_secs: pool.cooldown_secs,
                mean_renewed_secs: mean_renewed_ms / 1000.0,
                reveal_share: 1.0,
            };
            let sized = lease::pool_sizing(&inputs);
            let sizing = SizingView {
                peak_new_sessions_per_hour: peak_new,
                hold_secs: pool.hold_secs,
                cooldown_secs: pool.cooldown_secs,
                mean_renewed_secs: inputs.mean_renewed_secs,
                leases_measured: u32::try_from(started_here.len()).unwrap_or(u32::MAX),
                occupancy_secs: sized.occupancy_secs,
                busy_at_peak: sized.busy_at_peak,
                margin: SIZING_MARGIN,
                recommended_size: sized.recommended,
            };
            let skip = exhaustions.len().saturating_sub(MAX_LISTED_EXHAUSTIONS);
            PoolHealth {
                pool_id: pool.id.clone(),
                size,
                hold_secs: pool.hold_secs,
                on_exhaustion: pool.on_exhaustion.as_str(),
                live_now,
                utilisation_now,
                peak_live,
                peak_utilisation,
                peak_new_sessions_per_hour: peak_new,
                cooldown_secs: pool.cooldown_secs,
                peak_busy,
                peak_busy_share,
                recommended_size: sized.recommended,
                sizing,
                // Busy counts the live numbers too, so this covers the peak
                // utilisation.
                warning: peak_busy_share.max(utilisation_now) >= UTILISATION_WARNING,
                exhaustion_count,
                over_share_count,
                exhaustions: exhaustions.into_iter().skip(skip).cloned().collect(),
                hours,
            }
        })
        .collect()
}

async fn report(
    _: Admin,
    state: web::Data<PoolsReportApi>,
    req: HttpRequest,
) -> Result<HttpResponse, PoolsReportError> {
    let p = web::Query::<Params>::from_query(req.query_string())
        .map_err(|e| PoolsReportError::BadRequest(format!("query string: {e}")))?
        .into_inner();
    let site_id =
        p.site.filter(|s| !s.is_empty()).ok_or_else(|| PoolsReportError::BadRequest("site is required".into()))?;
    let site = state.sites.get(&site_id).cloned().ok_or_else(|| PoolsReportError::UnknownSite(site_id.clone()))?;
    let now_ms = state.clock.now_ms();
    let zone = &site.time_zone;
    let to_ms = p.to.as_deref().map(|t| time_bound(zone, "to", t, true)).transpose()?.unwrap_or(now_ms);
    let from_ms = p
        .from
        .as_deref()
        .map(|f| time_bound(zone, "from", f, false))
        .transpose()?
        .unwrap_or(to_ms - DEFAULT_DAYS * 24 * HOUR_MS);
    dates::in_range(from_ms).map_err(|e| PoolsReportError::BadRequest(format!("from: {e}")))?;
    if from_ms >= to_ms {
        return Err(PoolsReportError::BadRequest("from must be before to".into()));
    }
    if (to_ms - from_ms) / HOUR_MS > MAX_HOURS {
        return Err(PoolsReportError::BadRequest(format!("the window is longer than {} days", MAX_HOURS / 24)));
    }
    let store = Arc::clone(&state.store);
    let id = site_id.clone();
    let max_cooldown_ms = site.pools.iter().map(|p| i64::from(p.cooldown_secs) * 1000).max().unwrap_or(0);
    let activity = web::block(move || store.pool_activity(&id, from_ms, to_ms, now_ms, max_cooldown_ms))
        .await
        .map_err(|e| PoolsReportError::Internal(format!("the blocking pool failed: {e}")))??;
    let pools = build(&site, &activity, from_ms, to_ms);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "site": site_id,
        // Hours start on this zone's clock; the dashboard shows times in it.
        "time_zone": site.time_zone_name(),
        "currency": site.currency,
        "locale": site.locale,
        "from_ms": from_ms,
        "to_ms": to_ms,
        "interval": "hour",
        "now_ms": now_ms,
        "warning_utilisation": UTILISATION_WARNING,
        "pools": pools,
    })))
}
