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

use std::sync::Arc;

use ringsource_core::lease::{self, SIZING_MARGIN, SizingInputs, UTILISATION_WARNING};
use ringsource_core::pool_usage::{self, Buckets};
use serde::Serialize;

use crate::config::Site;
use crate::dates;
pub use crate::storage::StorageError;
use crate::storage::pools::{ExhaustionView, LeaseSpan, PoolActivity, PoolReportStore};

pub const HOUR_MS: i64 = 3_600_000;
/// The newest rows of refusals (per minute and kind) listed per pool (all
/// are counted).
const MAX_LISTED_EXHAUSTIONS: usize = 100;

/// Pool health over the stored leases and exhaustions.
#[derive(Clone)]
pub struct PoolsService {
    store: Arc<dyn PoolReportStore>,
}

impl PoolsService {
    pub fn new(store: Arc<dyn PoolReportStore>) -> Self {
        Self { store }
    }

    /// The health of each of the site's pools in `[from_ms, to_ms)`. Blocking.
    pub fn report(&self, site: &Site, from_ms: i64, to_ms: i64, now_ms: i64) -> Result<Vec<PoolHealth>, StorageError> {
        let max_cooldown_ms = site.pools.iter().map(|p| i64::from(p.cooldown_secs) * 1000).max().unwrap_or(0);
        let activity = self.store.pool_activity(&site.id, from_ms, to_ms, now_ms, max_cooldown_ms)?;
        Ok(build(site, &activity, from_ms, to_ms))
    }
}

/// One hour of one pool.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PoolHealth {
    pub pool_id: String,
    pub size: u32,
    pub hold_secs: u32,
    #[schema(value_type = ringsource_core::lease::ExhaustionPolicy)]
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
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
