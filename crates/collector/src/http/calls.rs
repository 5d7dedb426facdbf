//! The calls admin API, behind `Authorization: Bearer <admin_token>`:
//!
//! - `GET /v1/calls` list and filter, `GET /v1/calls.csv` the same as CSV;
//! - `GET /v1/calls/{id}` one call with its visitor's path and attribution;
//! - `POST /v1/calls/{id}/promo` `{ "code" }`: the manager names a promo code;
//! - `GET /v1/reports/calls` calls per group per day of the site's time
//!   zone, by credit;
//! - `GET /v1/promo/{code}?site=` who a promo code was issued to.
//!
//! Errors are `{ "error": { "code", "message" } }`; 401 without the token (or
//! when no token is configured: the admin API is then off).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use jiff::tz::TimeZone;
use ringsource_core::call::CallStatus;
use ringsource_core::promo::PromoCode;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

use crate::config::Site;
use crate::dates;
use crate::dates::time_bound_schema;
use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{Admin, blocking, query, time_bound};
use crate::http::state::AppState;
use crate::http::visitor_facts::{Device, Place};
use crate::services::calls::{
    CallDetail, CallFilter, CallSummary, CallsError, GroupBy, PromoLookup, ReportQuery, ReportRow, StatusFilter,
};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;
/// The CSV export is for spreadsheets: a larger page, still bounded so one
/// request cannot hold the database for long.
const CSV_DEFAULT_LIMIT: u32 = 10_000;
const CSV_MAX_LIMIT: u32 = 100_000;
/// Reports without `from` cover the 30 days before `to`.
const DEFAULT_REPORT_DAYS: i64 = 30;
/// At most this many days in one report (ten years and some).
const MAX_REPORT_DAYS: i64 = 3700;
const MAX_BODY_BYTES: usize = 4096;

fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, ApiError> {
    text.parse().map_err(|_| ApiError::bad_request(format!("{name}={text:?} is not a valid number")))
}

fn call_id(text: &str) -> Result<i64, ApiError> {
    number::<i64>("call id", text)
}

/// The filters of the list and the CSV export. Read as text, so that a bad
/// value is a 400 that names it.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Site id.
    site: Option<String>,
    /// Ring time lower bound (inclusive): Unix ms, or a YYYY-MM-DD day of the
    /// site's time zone (UTC without site).
    #[param(schema_with = time_bound_schema)]
    from: Option<String>,
    /// Ring time upper bound (exclusive): Unix ms, or a YYYY-MM-DD day of the
    /// site's time zone (UTC without site), that whole day included.
    #[param(schema_with = time_bound_schema)]
    to: Option<String>,
    /// The call's headline touch channel, e.g. "Paid Search" (ASCII case ignored).
    channel: Option<String>,
    /// Headline touch source (ASCII case ignored).
    source: Option<String>,
    /// Headline touch campaign (ASCII case ignored).
    campaign: Option<String>,
    /// A call status, or "missed" for any missed status.
    #[param(schema_with = status_filter)]
    status: Option<String>,
    /// Only target (true) or non-target (false) calls.
    #[param(value_type = Option<bool>)]
    target: Option<String>,
    /// A call tag: only calls with it (case and spaces folded as tags are stored).
    tag: Option<String>,
    /// CSV only: 1 writes `;` between cells, for Excel where a comma writes
    /// decimals (read by [`excel`]).
    #[serde(rename = "excel")]
    #[param(value_type = Option<bool>)]
    _excel: Option<String>,
    /// Page size: 1-1000, default 50 (CSV: 1-100000, default 10000).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100000)]
    limit: Option<String>,
    /// Calls to skip.
    #[param(value_type = Option<u32>)]
    offset: Option<String>,
}

/// `status=`: `missed`, or one of core's call statuses.
fn status_filter() -> Schema {
    let names = std::iter::once("missed").chain(CallStatus::ALL.iter().map(|s| s.as_str()));
    let about = "A call status, or \"missed\" for any missed status.";
    ObjectBuilder::new().schema_type(Type::String).description(Some(about)).enum_values(Some(names)).into()
}

/// `GET /v1/calls`: one page of calls.
#[derive(Debug, Serialize, ToSchema)]
struct CallList<'a> {
    calls: Vec<ListedCall>,
    /// How many calls match the filter.
    total: u64,
    limit: u32,
    offset: u32,
    /// The time zone of the `site=` filter, for showing the times (null
    /// across sites).
    time_zone: Option<&'a str>,
    /// The site's currency and locale, for writing amounts (null across sites).
    currency: Option<&'a str>,
    locale: Option<&'a str>,
    /// The site holds rows written by `ringsource demo-data` (false across
    /// sites): the dashboard says so on every page.
    demo_data: bool,
}

impl ListQuery {
    /// `zone` reads `from` and `to` days: the site's with `site=`, else UTC.
    fn filter(self, zone: &TimeZone, default_limit: u32, max_limit: u32) -> Result<CallFilter, ApiError> {
        let status = match self.status.as_deref() {
            None => None,
            Some("missed") => Some(StatusFilter::Missed),
            Some(s) => Some(StatusFilter::Is(CallStatus::from_name(s).ok_or_else(|| {
                let names: Vec<_> = CallStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(format!("status={s:?}: expected missed or one of {}", names.join(", ")))
            })?)),
        };
        let target = match self.target.as_deref() {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(t) => return Err(ApiError::bad_request(format!("target={t:?}: expected true or false"))),
        };
        let limit = match &self.limit {
            Some(l) => number::<u32>("limit", l)?,
            None => default_limit,
        };
        if limit == 0 || limit > max_limit {
            return Err(ApiError::bad_request(format!("limit must be between 1 and {max_limit}")));
        }
        let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
        Ok(CallFilter {
            site: nonempty(self.site),
            from_ms: self.from.as_deref().map(|t| time_bound(zone, "from", t, false)).transpose()?,
            to_ms: self.to.as_deref().map(|t| time_bound(zone, "to", t, true)).transpose()?,
            channel: nonempty(self.channel),
            source: nonempty(self.source),
            campaign: nonempty(self.campaign),
            status,
            target,
            tag: tag_filter(self.tag)?,
            limit,
            offset: self.offset.as_deref().map(|o| number::<u32>("offset", o)).transpose()?.unwrap_or(0),
        })
    }
}

/// The list's filter, and the time zone of its `site=` (`None` without one).
fn list_filter(
    state: &AppState,
    req: &HttpRequest,
    default_limit: u32,
    max_limit: u32,
) -> Result<(CallFilter, Option<Arc<Site>>), ApiError> {
    let q = query::<ListQuery>(req)?;
    let site = match q.site.as_deref().filter(|s| !s.is_empty()) {
        Some(id) => Some(Arc::clone(state.calls.site(id)?)),
        None => None,
    };
    let zone = site.as_ref().map_or(TimeZone::UTC, |s| s.time_zone.clone());
    Ok((q.filter(&zone, default_limit, max_limit)?, site))
}

#[utoipa::path(
    get,
    path = "/v1/calls",
    operation_id = "listCalls",
    tag = "calls",
    summary = "List calls, newest first",
    security(("adminToken" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Calls", body = CallList),
        (status = 400, description = "Bad filter", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown site", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site"])))),
    )
)]
pub async fn list(_: Admin, state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if excel(&req)? {
        return Err(ApiError::bad_request("excel= is for /v1/calls.csv"));
    }
    let (filter, site) = list_filter(&state, &req, DEFAULT_LIMIT, MAX_LIMIT)?;
    let (limit, offset) = (filter.limit, filter.offset);
    let service = Arc::clone(&state.calls);
    let demo_site = site.as_ref().map(|s| s.id.clone());
    let ((calls, total), demo_data) = blocking(move || {
        let demo = demo_site.map(|s| service.has_demo_data(&s)).transpose()?.unwrap_or(false);
        Ok::<_, ApiError>((service.list(&filter)?, demo))
    })
    .await?;
    // The zone the dashboard shows the times in, and the currency and
    // locale it writes amounts in (null across sites).
    let time_zone = site.as_ref().map(|s| s.time_zone_name());
    let currency = site.as_ref().and_then(|s| s.currency.as_deref());
    let locale = site.as_ref().and_then(|s| s.locale.as_deref());
    let extras = extras(&state, calls.iter().map(|c| (c.id, c.session_id.clone())).collect()).await?;
    let calls = calls.into_iter().zip(extras).map(|(call, extras)| ListedCall { call, extras }).collect();
    Ok(HttpResponse::Ok().json(CallList { calls, total, limit, offset, time_zone, currency, locale, demo_data }))
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `ring_at` is the ring time on the site's clock, with its UTC offset.
const CSV_HEADER: [&str; 26] = [
    "id",
    "site",
    "ring_at",
    "ring_at_ms",
    "caller",
    "dialled",
    "number_kind",
    "status",
    "target",
    "missed",
    "caller_kind",
    "duration_secs",
    "talk_secs",
    "channel",
    "source",
    "medium",
    "campaign",
    "term",
    "session_id",
    "confidence",
    "reason",
    "model",
    "promo_code",
    "pbx",
    "pbx_call_id",
    "recording_url",
];

/// A cell a spreadsheet will not run as a formula (OWASP, "CSV Injection").
///
/// Callers, campaigns, terms and PBX ids come from outside (a spoofed caller
/// id, a crafted `utm_campaign`), and Excel, LibreOffice and Google Sheets
/// evaluate a cell that starts with `=`, `+`, `-` or `@`, or with a tab or
/// carriage return before one of those. Such a cell is written after a
/// single quote, which the spreadsheet shows as text. A cell that is a plain
/// number (`+74951234567`, `-3`, `1.5`) is no formula and is left alone, so
/// phone numbers keep their `+`.
pub fn spreadsheet_safe(cell: String) -> String {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !is_plain_number(&cell) { format!("'{cell}") } else { cell }
}

/// An optional sign, digits, and at most one decimal point between digits.
fn is_plain_number(cell: &str) -> bool {
    let digits = cell.strip_prefix(['+', '-']).unwrap_or(cell);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && all_digits(fraction)
}

fn csv_record(c: &CallSummary, zone: &TimeZone) -> [String; 26] {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    [
        c.id.to_string(),
        c.site.clone(),
        dates::format_local_ms(zone, c.ring_at_ms),
        c.ring_at_ms.to_string(),
        opt(&c.caller),
        c.dialled.clone(),
        c.number_kind.as_str().to_owned(),
        c.status.as_str().to_owned(),
        c.target.to_string(),
        c.missed.to_string(),
        c.caller_kind.as_str().to_owned(),
        num(c.duration_secs),
        num(c.talk_secs),
        c.channel.clone(),
        c.source.clone(),
        c.medium.clone(),
        opt(&c.campaign),
        opt(&c.term),
        opt(&c.session_id),
        c.confidence.as_str().to_owned(),
        c.reason.clone(),
        c.model.as_str().to_owned(),
        opt(&c.promo_code),
        c.pbx.clone(),
        c.pbx_call_id.clone(),
        opt(&c.recording_url),
    ]
}

#[utoipa::path(
    get,
    path = "/v1/calls.csv",
    operation_id = "exportCalls",
    tag = "calls",
    summary = "Export calls as CSV (same filters as the list)",
    security(("adminToken" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "CSV with a header row, after a UTF-8 byte order mark. `ring_at` is the ring time on the call's site's clock, RFC 3339 with its offset (Z for UTC).", body = String, content_type = "text/csv", headers(("X-Total-Count" = u64, description = "How many calls match the filter (the file holds at most `limit`)"))),
        (status = 400, description = "Bad filter", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown site", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site"])))),
    )
)]
pub async fn csv_export(_: Admin, state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (filter, _) = list_filter(&state, &req, CSV_DEFAULT_LIMIT, CSV_MAX_LIMIT)?;
    // Excel splits a CSV on its locale's list separator, which is `;`
    // wherever a comma writes decimals (Russia, most of Europe): there a
    // comma-separated file opens as one column. `excel=1` writes `;`.
    let delimiter = if excel(&req)? { b';' } else { b',' };
    let service = Arc::clone(&state.calls);
    let (calls, total) = blocking(move || service.list(&filter)).await?;
    // A UTF-8 byte order mark first: without it Excel reads the file in the
    // machine's legacy code page and garbles Cyrillic keywords and titles.
    let mut out = csv::WriterBuilder::new().delimiter(delimiter).from_writer(UTF8_BOM.to_vec());
    let csv_err = |e: csv::Error| ApiError::internal(format!("writing CSV: {e}"));
    out.write_record(CSV_HEADER).map_err(csv_err)?;
    for c in &calls {
        // Each call on its own site's clock; a site no longer configured in UTC.
        let zone = state.calls.site(&c.site).map_or(TimeZone::UTC, |s| s.time_zone.clone());
        out.write_record(csv_record(c, &zone).map(spreadsheet_safe)).map_err(csv_err)?;
    }
    let body = out.into_inner().map_err(|e| ApiError::internal(format!("writing CSV: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CONTENT_DISPOSITION, "attachment; filename=\"calls.csv\""))
        // The export may be cut by the limit; the header tells a script.
        .insert_header(("x-total-count", total.to_string()))
        .body(body))
}

#[utoipa::path(
    get,
    path = "/v1/calls/{id}",
    operation_id = "getCall",
    tag = "calls",
    summary = "One call with its attribution and its visitor's path",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "Call id.")),
    responses(
        (status = 200, description = "The call", body = CallAnswer),
        (status = 400, description = "Bad id", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown call", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_call"])))),
    )
)]
pub async fn get_call(_: Admin, state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = call_id(&id)?;
    let service = Arc::clone(&state.calls);
    let detail = blocking(move || service.get(id)).await?;
    let key = (detail.call.id, detail.call.session_id.clone());
    let extras = extras(&state, vec![key]).await?.pop().unwrap_or_default();
    Ok(HttpResponse::Ok().json(CallAnswer { detail, extras }))
}

/// What the calls API adds to a stored call: a manager's tags, and where
/// and on what the visitor came.
#[derive(Debug, Default, Serialize, ToSchema)]
struct CallExtras {
    /// The call's tags (`POST /v1/calls/{id}/tags`), sorted.
    tags: Vec<String>,
    /// `null` for a call without a session, or a session without it.
    place: Option<Place>,
    /// `null` for a call without a session, or a session without it.
    device: Option<Device>,
}

/// One call of `GET /v1/calls`.
#[derive(Debug, Serialize, ToSchema)]
struct ListedCall {
    #[serde(flatten)]
    call: CallSummary,
    #[serde(flatten)]
    extras: CallExtras,
}

/// `GET /v1/calls/{id}`.
#[derive(Debug, Serialize, ToSchema)]
struct CallAnswer {
    #[serde(flatten)]
    detail: CallDetail,
    #[serde(flatten)]
    extras: CallExtras,
}

/// The extras of calls given as (id, credited session), in their order,
/// read in one hop to the blocking pool.
async fn extras(state: &AppState, keys: Vec<(i64, Option<String>)>) -> Result<Vec<CallExtras>, ApiError> {
    let (notes, facts) = (Arc::clone(&state.notes), Arc::clone(&state.visitor_facts));
    blocking(move || {
        let ids: Vec<i64> = keys.iter().map(|(id, _)| *id).collect();
        let sessions: Vec<String> = keys.iter().filter_map(|(_, s)| s.clone()).collect();
        let mut tags = notes.tags_of_calls(&ids)?;
        let found = facts.of_sessions(&sessions)?;
        let extras = keys.into_iter().map(|(id, session)| {
            let f = session.and_then(|s| found.get(&s));
            CallExtras {
                tags: tags.remove(&id).unwrap_or_default(),
                place: f.and_then(Place::of),
                device: f.and_then(Device::of),
            }
        });
        Ok::<_, ApiError>(extras.collect())
    })
    .await
}

/// `excel=1|true|0|false` (absent: false).
fn excel(req: &HttpRequest) -> Result<bool, ApiError> {
    let q = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|e| ApiError::bad_request(format!("query string: {e}")))?;
    match q.iter().find(|(k, _)| k == "excel").map(|(_, v)| v.as_str()) {
        None | Some("" | "0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(v) => Err(ApiError::bad_request(format!("excel={v:?}: expected 1 or 0"))),
    }
}

/// `tag=`: a call tag, folded as tags are stored.
fn tag_filter(tag: Option<String>) -> Result<Option<String>, ApiError> {
    tag.filter(|t| !t.trim().is_empty())
        .map(|t| crate::services::call_notes::tag(&t).map_err(|e| ApiError::bad_request(format!("tag={t:?}: {e}"))))
        .transpose()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PromoBody {
    /// 4 to 8 characters of the codes' alphabet; case, spaces and hyphens
    /// are ignored.
    code: String,
}

fn promo_code(text: &str) -> Result<PromoCode, ApiError> {
    PromoCode::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

#[utoipa::path(
    post,
    path = "/v1/calls/{id}/promo",
    operation_id = "attachPromo",
    tag = "calls",
    summary = "Attach the promo code the caller named: the call goes to that code's session with high confidence",
    security(("adminToken" = [])),
    params(("id" = i64, Path, description = "Call id.")),
    request_body(description = "At most 4096 bytes (400 beyond).", content((PromoBody = "application/json"))),
    responses(
        (status = 200, description = "The re-attributed call", body = CallDetail),
        (status = 400, description = "Bad body (or larger than 4096 bytes) or malformed code", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown call, or a code never issued on the call's site", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_call", "unknown_site", "unknown_promo_code"])))),
        (status = 409, description = "Conflict", body = ErrorBody, extensions(("x-error-codes" = json!(["conflict"])))),
    )
)]
pub async fn attach_promo(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = call_id(&id)?;
    // Too large is a 400 here, as `openapi.json` says of this route.
    let bytes = crate::http::extract::body(body, MAX_BODY_BYTES).await.map_err(|e| {
        if e.code == "payload_too_large" {
            ApiError::bad_request(format!("the body is larger than {MAX_BODY_BYTES} bytes"))
        } else {
            e
        }
    })?;
    let body: PromoBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not {{\"code\": \"…\"}}: {e}")))?;
    let code = promo_code(&body.code)?;
    let service = Arc::clone(&state.calls);
    Ok(HttpResponse::Ok().json(blocking(move || service.attach_promo(id, &code)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReportParams {
    /// Site id (required).
    #[param(required = true, min_length = 1)]
    site: Option<String>,
    /// Ring time lower bound (inclusive): Unix ms, or a YYYY-MM-DD day of the
    /// site's time zone. Default: 30 days before `to`.
    #[param(schema_with = time_bound_schema)]
    from: Option<String>,
    /// Upper bound (exclusive): Unix ms, or a YYYY-MM-DD day of the site's
    /// time zone (that whole day included). Default: now.
    #[param(schema_with = time_bound_schema)]
    to: Option<String>,
    /// Default channel.
    #[param(schema_with = group_by)]
    group_by: Option<String>,
    /// Only day.
    #[param(schema_with = day)]
    interval: Option<String>,
    tag: Option<String>,
}

fn group_by() -> Schema {
    let about = "What the rows are grouped by (the request's default: channel).";
    let names = GroupBy::ALL.map(GroupBy::column);
    ObjectBuilder::new().schema_type(Type::String).description(Some(about)).enum_values(Some(names)).into()
}

fn day() -> Schema {
    let about = "Days of the site's time zone, the one interval.";
    ObjectBuilder::new().schema_type(Type::String).description(Some(about)).enum_values(Some(["day"])).into()
}

/// `GET /v1/reports/calls`. Counts are sums of attribution credit:
/// fractional under the linear model.
#[derive(Debug, Serialize, ToSchema)]
struct CallsReport {
    site: String,
    model: ringsource_core::attribution::Model,
    #[schema(schema_with = group_by)]
    group_by: &'static str,
    #[schema(schema_with = day)]
    interval: &'static str,
    /// The site's IANA time zone: report days run from its midnight to the
    /// next, and the dashboard shows times on its clock.
    time_zone: String,
    /// What the dashboard writes cost and revenue in.
    currency: Option<String>,
    locale: Option<String>,
    from_ms: i64,
    to_ms: i64,
    /// The `tag=` filter as tags are stored; `null` without it.
    tag: Option<String>,
    rows: Vec<ReportRow>,
    totals: ReportTotals,
    /// The site holds rows written by `ringsource demo-data`.
    demo_data: bool,
}

/// The report's rows added up; the ratios follow the rows' rules.
#[derive(Debug, Serialize, ToSchema)]
struct ReportTotals {
    calls: f64,
    target_calls: f64,
    missed_calls: f64,
    first_time_callers: f64,
    revenue: f64,
    /// `null` for `group_by=term`.
    cost: Option<f64>,
    cost_per_target_call: Option<f64>,
    roi: Option<f64>,
}

#[utoipa::path(
    get,
    path = "/v1/reports/calls",
    operation_id = "callsReport",
    tag = "calls",
    summary = "Calls, target calls, missed calls and first-time callers per group per day of the site's time zone",
    description = "The window is at most 3700 days (400 otherwise); from defaults to 30 days before to, to to now.",
    security(("adminToken" = [])),
    params(ReportParams),
    responses(
        (status = 200, description = "The report", body = CallsReport),
        (status = 400, description = "Bad parameter", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown site", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site"])))),
    )
)]
pub async fn report(_: Admin, state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let p: ReportParams = query(&req)?;
    let site = p.site.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::bad_request("site is required"))?;
    let group = p.group_by.as_deref().unwrap_or("channel");
    let group_by = GroupBy::parse(group).ok_or_else(|| {
        ApiError::bad_request(format!("group_by={group:?}: expected channel, source, medium, campaign or term"))
    })?;
    match p.interval.as_deref() {
        None | Some("day") => {}
        Some(other) => return Err(ApiError::bad_request(format!("interval={other:?}: only \"day\" is supported"))),
    }
    let site_config = Arc::clone(state.calls.site(&site)?);
    let zone = &site_config.time_zone;
    let to_ms = match &p.to {
        Some(t) => time_bound(zone, "to", t, true)?,
        None => state.calls.now_ms(),
    };
    let from_ms = match &p.from {
        Some(f) => time_bound(zone, "from", f, false)?,
        None => dates::in_range(to_ms - DEFAULT_REPORT_DAYS * dates::day_ms())
            .map_err(|e| ApiError::bad_request(format!("from (30 days before to): {e}")))?,
    };
    if from_ms >= to_ms {
        return Err(ApiError::bad_request("from must be before to"));
    }
    if to_ms - from_ms > MAX_REPORT_DAYS * dates::day_ms() {
        return Err(ApiError::bad_request(format!("the window is longer than {MAX_REPORT_DAYS} days")));
    }
    let model = site_config.attribution_model;
    let time_zone = site_config.time_zone_name().to_owned();
    let (currency, locale) = (site_config.currency.clone(), site_config.locale.clone());
    let tag = tag_filter(p.tag)?;
    let query = ReportQuery { site: site_config, from_ms, to_ms, group_by, tag: tag.clone() };
    let service = Arc::clone(&state.calls);
    let demo_site = site.clone();
    let (rows, demo_data) =
        blocking(move || Ok::<_, CallsError>((service.report(&query)?, service.has_demo_data(&demo_site)?))).await?;
    // Folded from 0.0: `Sum` for floats starts at -0.0, so a report without
    // rows would total "-0.0" in the JSON.
    let sum = |f: fn(&ReportRow) -> f64| rows.iter().map(f).fold(0.0, |a, b| a + b);
    // Totals are built like a row, so their ratios follow the same rules.
    let all = ReportRow {
        day: String::new(),
        group: String::new(),
        calls: sum(|r| r.calls),
        target_calls: sum(|r| r.target_calls),
        missed_calls: sum(|r| r.missed_calls),
        first_time_callers: sum(|r| r.first_time_callers),
        revenue: sum(|r| r.revenue),
        cost: (group_by != GroupBy::Term).then(|| sum(|r| r.cost.unwrap_or(0.0))),
        cost_per_target_call: None,
        roi: None,
    }
    .with_ratios();
    let totals = ReportTotals {
        calls: all.calls,
        target_calls: all.target_calls,
        missed_calls: all.missed_calls,
        first_time_callers: all.first_time_callers,
        revenue: all.revenue,
        cost: all.cost,
        cost_per_target_call: all.cost_per_target_call,
        roi: all.roi,
    };
    Ok(HttpResponse::Ok().json(CallsReport {
        site,
        model,
        group_by: group_by.column(),
        interval: "day",
        time_zone,
        currency,
        locale,
        from_ms,
        to_ms,
        tag,
        rows,
        totals,
        demo_data,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PromoQuery {
    /// Site id (required).
    #[param(required = true, min_length = 1)]
    site: Option<String>,
}

/// `GET /v1/promo/{code}`: the look-up, with the site's clock and money
/// settings for showing it.
#[derive(Debug, Serialize, ToSchema)]
struct PromoAnswer {
    #[serde(flatten)]
    lookup: PromoLookup,
    /// The site's IANA time zone, for showing the times.
    time_zone: String,
    currency: Option<String>,
    locale: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/promo/{code}",
    operation_id = "promoLookup",
    tag = "calls",
    summary = "Who a promo code was issued to",
    security(("adminToken" = [])),
    params(("code" = String, Path, description = "The code (case, spaces and hyphens ignored)."), PromoQuery),
    responses(
        (status = 200, description = "The code's session and its visitor's path", body = PromoAnswer),
        (status = 400, description = "Malformed code or missing site", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown site or code", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site", "unknown_promo_code"])))),
    )
)]
pub async fn promo_lookup(
    _: Admin,
    state: web::Data<AppState>,
    code: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: PromoQuery = query(&req)?;
    let site = q.site.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::bad_request("site is required"))?;
    let code = promo_code(&code)?;
    let site_config = Arc::clone(state.calls.site(&site)?);
    let service = Arc::clone(&state.calls);
    let lookup = blocking(move || service.promo_lookup(&site, &code)).await?;
    Ok(HttpResponse::Ok().json(PromoAnswer {
        lookup,
        time_zone: site_config.time_zone_name().to_owned(),
        currency: site_config.currency.clone(),
        locale: site_config.locale.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn formula_cells_are_written_as_text() {
        let safe = |s: &str| spreadsheet_safe(s.to_owned());
        assert_eq!(safe("=HYPERLINK(\"https://evil.example\",\"x\")"), "'=HYPERLINK(\"https://evil.example\",\"x\")");
        assert_eq!(safe("+1-800-FLOWERS"), "'+1-800-FLOWERS");
        assert_eq!(safe("-2+3+cmd|' /C calc'!A0"), "'-2+3+cmd|' /C calc'!A0");
        assert_eq!(safe("@SUM(A1:A9)"), "'@SUM(A1:A9)");
        assert_eq!(safe("\t=1+1"), "'\t=1+1");
        assert_eq!(safe("\r=1+1"), "'\r=1+1");
        assert_eq!(safe("+."), "'+.");
        assert_eq!(safe("-"), "'-");
        // Numbers stay numbers, and ordinary text stays as it is.
        for kept in ["+74951234567", "-3", "1.5", "-0.25", "google", "(not set)", "", "a=b"] {
            assert_eq!(safe(kept), kept);
        }
    }
}
