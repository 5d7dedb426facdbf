//! `GET /v1/reports/pools?site=&from=&to=`: pool health for the dashboard
//! (see [`crate::services::pools`]), behind the admin token.

use actix_web::{HttpRequest, HttpResponse, web};
use ringsource_core::lease::UTILISATION_WARNING;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

use crate::dates;
use crate::dates::time_bound_schema;
use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Admin, blocking, query, time_bound};
use crate::http::state::AppState;
use crate::services::pools::{HOUR_MS, PoolHealth};

/// Without `from`, the report covers the 7 days before `to`.
const DEFAULT_DAYS: i64 = 7;
/// At most this many hours in one report (93 days).
const MAX_HOURS: i64 = 93 * 24;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct Params {
    /// Site id (required).
    #[param(required = true, min_length = 1)]
    site: Option<String>,
    /// Lower bound (inclusive), rounded down to the hour of the site's
    /// clock: Unix ms, or a YYYY-MM-DD day of the site's time zone. Default:
    /// 7 days before `to`.
    #[param(schema_with = time_bound_schema)]
    from: Option<String>,
    /// Upper bound (exclusive): Unix ms, or a YYYY-MM-DD day of the site's
    /// time zone (that whole day included). Default: now. At most 93 days
    /// after `from`.
    #[param(schema_with = time_bound_schema)]
    to: Option<String>,
}

/// `GET /v1/reports/pools`.
#[derive(Debug, Serialize, ToSchema)]
struct PoolsReport {
    site: String,
    /// The site's IANA time zone: hours start on its clock, and the
    /// dashboard shows times in it.
    time_zone: String,
    currency: Option<String>,
    locale: Option<String>,
    from_ms: i64,
    to_ms: i64,
    #[schema(schema_with = hour)]
    interval: &'static str,
    now_ms: i64,
    /// The share of busy numbers at which a pool is flagged.
    warning_utilisation: f64,
    pools: Vec<PoolHealth>,
}

fn hour() -> Schema {
    let about = "Hours of the site's clock, the one interval.";
    ObjectBuilder::new().schema_type(Type::String).description(Some(about)).enum_values(Some(["hour"])).into()
}

#[utoipa::path(
    get,
    path = "/v1/reports/pools",
    operation_id = "poolsReport",
    tag = "pools",
    summary = "Pool health per hour: numbers live at once over pool size, new sessions, exhaustions, and the recommended pool size",
    description = "Hours start on the site's clock. recommended_size = peak new sessions per hour × (mean renewed time + hold + cooldown) minutes ÷ 60 × 1.3, rounded up; sizing holds each input (the renewed time is measured from the leases started in the window). A number is busy while it is live or cooling down. warning is true when the peak share of busy numbers (or the current utilisation) is at least warning_utilisation (0.75). A session counts as new in the hour it first asked the pool for a number (its first lease or refusal). Refusals and first asks are stored as counts per minute, so a window that starts or ends inside a minute counts that minute whole. The window is at most 93 days (400 otherwise); the default is the last 7 days.",
    security(("adminToken" = [])),
    params(Params),
    responses(
        (status = 200, description = "The report", body = PoolsReport),
        (status = 400, description = "Bad parameter", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown site", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site"])))),
    )
)]
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
    Ok(HttpResponse::Ok().json(PoolsReport {
        site: site_id,
        time_zone: site.time_zone_name().to_owned(),
        currency: site.currency.clone(),
        locale: site.locale.clone(),
        from_ms,
        to_ms,
        interval: "hour",
        now_ms,
        warning_utilisation: UTILISATION_WARNING,
        pools,
    }))
}
