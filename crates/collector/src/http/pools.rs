//! `GET /v1/reports/pools?site=&from=&to=`: pool health for the dashboard
//! (see [`crate::services::pools`]), behind the admin token.

use actix_web::{HttpRequest, HttpResponse, web};
use ringsource_core::lease::UTILISATION_WARNING;
use serde::Deserialize;

use crate::dates;
use crate::http::error::ApiError;
use crate::http::extract::{Admin, blocking, query, time_bound};
use crate::http::state::AppState;
use crate::services::pools::HOUR_MS;

/// Without `from`, the report covers the 7 days before `to`.
const DEFAULT_DAYS: i64 = 7;
/// At most this many hours in one report (93 days).
const MAX_HOURS: i64 = 93 * 24;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    site: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn report(_: Admin, state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let p: Params = query(&req)?;
    let site_id = p.site.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::bad_request("site is required"))?;
    let site = state.site(&site_id)?;
    let now_ms = state.clock.now_ms();
    let zone = &site.time_zone;
    let to_ms = p.to.as_deref().map(|t| time_bound(zone, "to", t, true)).transpose()?.unwrap_or(now_ms);
    let from_ms = p
        .from
        .as_deref()
        .map(|f| time_bound(zone, "from", f, false))
        .transpose()?
        .unwrap_or(to_ms - DEFAULT_DAYS * 24 * HOUR_MS);
    dates::in_range(from_ms).map_err(|e| ApiError::bad_request(format!("from: {e}")))?;
    if from_ms >= to_ms {
        return Err(ApiError::bad_request("from must be before to"));
    }
    if (to_ms - from_ms) / HOUR_MS > MAX_HOURS {
        return Err(ApiError::bad_request(format!("the window is longer than {} days", MAX_HOURS / 24)));
    }
    let (service, of) = (state.pools.clone(), site.clone());
    let pools = blocking(move || service.report(&of, from_ms, to_ms, now_ms)).await?;
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
