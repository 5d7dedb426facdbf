//! Money: advertising cost per day and source, and revenue the CRM posts
//! back for calls. Reports divide one by the other
//! (`GET /v1/reports/calls`: cost, revenue, cost per target call, ROI).
//!
//! - `POST /v1/costs`: JSON `[{site, date, source, medium?, campaign?, cost,
//!   currency?}]`, or CSV (`Content-Type: text/csv`, `?site=`) with the header
//!   `date,source,medium,campaign,cost` (`currency` may be added). Every row
//!   is checked first; one bad field and nothing is stored, and the answer
//!   names each bad line (CSV) or index (JSON) and field. Rows are upserted
//!   per (site, date, source, medium, campaign): uploading a day again
//!   replaces its numbers.
//! - `POST /v1/revenue`: `{site, call_id? | caller?, at?, window_secs?, amount,
//!   currency?, deal_id?}`. By caller, the revenue goes to the caller's latest
//!   call in the `window_secs` (default 30 days) before `at` (default now). A
//!   repeated `deal_id` updates its row instead of adding one.
//!
//! Source and medium are stored in lower case, as touches carry them, so a
//! cost row meets the calls of its source whatever case the ad platform's
//! export used. Amounts are summed as given: post one currency per site.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::{IntoParams, ToSchema};

use crate::config::Site;
use crate::dates;
use crate::http::error::ErrorBody;
use crate::http::error::{ApiError, RowIssue};
use crate::http::extract::{Admin, blocking, body as read_body, query};
use crate::http::state::AppState;
pub use crate::services::money::MAX_AMOUNT;
use crate::services::money::{CostRow, RevenuePost, RevenueRecorded, RevenueTarget};

/// A month of daily rows for a few hundred campaigns fits well under this.
const MAX_UPLOAD_BYTES: usize = 8 * 1024 * 1024;
const MAX_REVENUE_BYTES: usize = 4096;
const MAX_TEXT: usize = 200;
/// Revenue by caller looks this far back by default.
pub const DEFAULT_REVENUE_WINDOW_SECS: i64 = 30 * 86_400;
const MAX_REVENUE_WINDOW_SECS: i64 = 366 * 86_400;

// ------------------------------------------------------------ cost rows

/// Where a row came from, for its issues.
#[derive(Debug, Clone, Copy)]
enum At {
    Line(usize),
    Index(usize),
}

struct Issues(Vec<RowIssue>);

impl Issues {
    fn push(&mut self, at: At, field: &str, message: impl Into<String>) {
        let (line, index) = match at {
            At::Line(l) => (Some(l), None),
            At::Index(i) => (None, Some(i)),
        };
        self.0.push(RowIssue { line, index, field: field.to_owned(), message: message.into() });
    }
}

/// A cost row's fields as text, before validation.
#[derive(Default)]
struct RawCost<'a> {
    site: Option<&'a str>,
    date: Option<&'a str>,
    source: Option<&'a str>,
    medium: Option<&'a str>,
    campaign: Option<&'a str>,
    cost: Cost,
    currency: Option<&'a str>,
}

/// The cost field as read.
#[derive(Default)]
enum Cost {
    #[default]
    Missing,
    /// Not a number; already reported, the row's other fields are still checked.
    Unreadable,
    Number(f64),
}

fn text(at: At, field: &str, value: Option<&str>, required: bool, issues: &mut Issues) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty());
    match v {
        None if required => {
            issues.push(at, field, "is required");
            None
        }
        None => Some(String::new()),
        Some(v) if v.chars().count() > MAX_TEXT => {
            issues.push(at, field, format!("is longer than {MAX_TEXT} characters"));
            None
        }
        Some(v) => Some(v.to_owned()),
    }
}

/// An optional ISO 4217 code: three capital letters.
fn parse_currency(value: Option<&str>) -> Result<Option<String>, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => Ok(Some(c.to_owned())),
        Some(c) => Err(format!("{c:?} is not an ISO 4217 code such as \"EUR\"")),
    }
}

fn currency(at: At, value: Option<&str>, issues: &mut Issues) -> Option<Option<String>> {
    parse_currency(value).map_err(|reason| issues.push(at, "currency", reason)).ok()
}

fn validate_cost(at: At, raw: RawCost<'_>, sites: &HashMap<String, Arc<Site>>, issues: &mut Issues) -> Option<CostRow> {
    let before = issues.0.len();
    let site = text(at, "site", raw.site, true, issues);
    if let Some(s) = &site
        && !sites.contains_key(s)
    {
        issues.push(at, "site", format!("no site {s:?} is configured"));
    }
    let day = text(at, "date", raw.date, true, issues);
    if let Some(d) = &day
        && dates::parse_date_ms(d).is_none()
    {
        issues.push(at, "date", format!("{d:?} is not a YYYY-MM-DD date"));
    }
    let source = text(at, "source", raw.source, true, issues);
    let medium = text(at, "medium", raw.medium, false, issues);
    let campaign = text(at, "campaign", raw.campaign, false, issues);
    let cost = match raw.cost {
        Cost::Missing => {
            issues.push(at, "cost", "is required (a number, 0 or more)");
            None
        }
        Cost::Unreadable => None,
        Cost::Number(c) if !c.is_finite() || c < 0.0 => {
            issues.push(at, "cost", format!("{c} must be a number, 0 or more"));
            None
        }
        Cost::Number(c) if c > MAX_AMOUNT => {
            issues.push(at, "cost", format!("{c} is more than {MAX_AMOUNT:e}, the largest amount one row may carry"));
            None
        }
        Cost::Number(c) => Some(c),
    };
    let currency = currency(at, raw.currency, issues);
    if issues.0.len() != before {
        return None;
    }
    Some(CostRow {
        site: site?,
        day: day?,
        source: source?.to_lowercase(),
        medium: medium?.to_lowercase(),
        campaign: campaign?,
        cost: cost?,
        currency: currency?,
    })
}

/// Rows of a JSON upload; `default_site` from `?site=` for rows without one.
fn json_costs(
    bytes: &[u8],
    default_site: Option<&str>,
    sites: &HashMap<String, Arc<Site>>,
) -> Result<Vec<(At, CostRow)>, ApiError> {
    let items: Vec<Value> = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not a JSON array of cost rows: {e}")))?;
    let mut issues = Issues(Vec::new());
    let mut rows = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = At::Index(i);
        let Some(obj) = item.as_object() else {
            issues.push(at, "", "is not an object");
            continue;
        };
        let known = ["site", "date", "source", "medium", "campaign", "cost", "currency"];
        for k in obj.keys().filter(|k| !known.contains(&k.as_str())) {
            issues.push(at, k, format!("unknown field; expected {}", known.join(", ")));
        }
        let str_field = |name: &str, issues: &mut Issues| -> Option<&str> {
            match obj.get(name) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => {
                    issues.push(at, name, "must be a string");
                    None
                }
            }
        };
        let raw = RawCost {
            site: str_field("site", &mut issues).or(default_site),
            date: str_field("date", &mut issues),
            source: str_field("source", &mut issues),
            medium: str_field("medium", &mut issues),
            campaign: str_field("campaign", &mut issues),
            cost: match obj.get("cost") {
                None | Some(Value::Null) => Cost::Missing,
                Some(Value::Number(n)) => n.as_f64().map_or(Cost::Missing, Cost::Number),
                Some(_) => {
                    issues.push(at, "cost", "must be a number");
                    Cost::Unreadable
                }
            },
            currency: str_field("currency", &mut issues),
        };
        if let Some(row) = validate_cost(at, raw, sites, &mut issues) {
            rows.push((at, row));
        }
    }
    if issues.0.is_empty() { Ok(rows) } else { Err(ApiError::invalid_rows(issues.0)) }
}

/// Rows of a CSV upload for `site`.
fn csv_costs(bytes: &[u8], site: &str, sites: &HashMap<String, Arc<Site>>) -> Result<Vec<(At, CostRow)>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(bytes);
    let header = reader.headers().map_err(|e| ApiError::bad_request(format!("the CSV header cannot be read: {e}")))?;
    let mut cols: HashMap<&str, usize> = HashMap::new();
    let known = ["date", "source", "medium", "campaign", "cost", "currency"];
    let mut issues = Issues(Vec::new());
    for (i, name) in header.iter().enumerate() {
        let name = name.to_ascii_lowercase();
        match known.iter().find(|k| **k == name) {
            Some(k) => {
                cols.insert(k, i);
            }
            None => issues.push(At::Line(1), &name, format!("unknown column; expected {}", known.join(","))),
        }
    }
    for required in ["date", "source", "cost"] {
        if !cols.contains_key(required) {
            issues.push(At::Line(1), required, "the header lacks this column (date,source,medium,campaign,cost)");
        }
    }
    if !issues.0.is_empty() {
        return Err(ApiError::invalid_rows(issues.0));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
                issues.push(At::Line(line), "", format!("not a CSV row: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
        let at = At::Line(line);
        let get = |name: &str| cols.get(name).and_then(|&i| record.get(i));
        let cost = match get("cost").map(str::trim).filter(|c| !c.is_empty()) {
            None => Cost::Missing,
            Some(c) => match c.parse::<f64>() {
                Ok(v) => Cost::Number(v),
                Err(_) => {
                    issues.push(at, "cost", format!("{c:?} is not a number (use '.' for decimals)"));
                    Cost::Unreadable
                }
            },
        };
        let raw = RawCost {
            site: Some(site),
            date: get("date"),
            source: get("source"),
            medium: get("medium"),
            campaign: get("campaign"),
            cost,
            currency: get("currency"),
        };
        if let Some(row) = validate_cost(at, raw, sites, &mut issues) {
            rows.push((at, row));
        }
    }
    if issues.0.is_empty() { Ok(rows) } else { Err(ApiError::invalid_rows(issues.0)) }
}

/// A key given twice in one upload is a mistake in the file, not an update.
fn no_duplicates(rows: &[(At, CostRow)]) -> Result<(), ApiError> {
    let mut seen: HashMap<(&str, &str, &str, &str, &str), At> = HashMap::new();
    let mut issues = Issues(Vec::new());
    for (at, r) in rows {
        let key = (r.site.as_str(), r.day.as_str(), r.source.as_str(), r.medium.as_str(), r.campaign.as_str());
        if let Some(first) = seen.insert(key, *at) {
            let where_ = match first {
                At::Line(l) => format!("line {l}"),
                At::Index(i) => format!("index {i}"),
            };
            issues.push(*at, "date", format!("the same date/source/medium/campaign as {where_}"));
        }
    }
    if issues.0.is_empty() { Ok(()) } else { Err(ApiError::invalid_rows(issues.0)) }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CostsQuery {
    /// Required for CSV; the default site of JSON rows.
    site: Option<String>,
}

// What `json_costs` reads from each JSON value, field by field so that
// every bad field of every row is reported at once.
/// One row of a JSON cost upload.
#[derive(ToSchema)]
#[schema(as = CostRow)]
#[allow(dead_code, reason = "the schema of what json_costs reads from a JSON value")]
struct CostRowSchema {
    /// Required unless `?site=` is given.
    #[schema(min_length = 1)]
    site: Option<String>,
    /// `YYYY-MM-DD`, a day of the site's time zone.
    #[schema(format = Date)]
    date: String,
    /// `utm_source`; stored lower case; at most 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    source: String,
    /// `utm_medium`; stored lower case; empty = not split by medium; at most
    /// 200 characters.
    #[schema(max_length = 200)]
    medium: Option<String>,
    /// At most 200 characters.
    #[schema(max_length = 200)]
    campaign: Option<String>,
    /// 0 to 1e12 (a trillion units of the currency: larger amounts are
    /// refused, so that no report sum overflows).
    #[schema(minimum = 0, maximum = 1e12)]
    cost: f64,
    /// ISO 4217, e.g. EUR.
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
}

/// What a cost upload stored.
#[derive(Debug, Serialize, ToSchema)]
struct CostsStored {
    /// Rows inserted or replaced.
    upserted: usize,
}

#[utoipa::path(
    post,
    path = "/v1/costs",
    operation_id = "postCosts",
    tag = "money",
    summary = "Upload advertising cost per day and source (upsert per site, date, source, medium, campaign; all rows or none)",
    security(("adminToken" = [])),
    params(CostsQuery),
    request_body(
        description = "JSON rows, or text/csv with ?site= and the header date,source,medium,campaign,cost (+ currency); at most 8 MiB (413 otherwise).",
        content((Vec<CostRowSchema> = "application/json"), (String = "text/csv"))
    ),
    responses(
        (status = 200, description = "Stored", body = CostsStored),
        (status = 400, description = "Bad input: invalid_rows names every bad field by CSV line or JSON index (error.rows), and nothing is stored; bad_request for a body that is not rows at all", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request", "invalid_rows"])))),
        (status = 413, description = "Body larger than 8 MiB", body = ErrorBody, extensions(("x-error-codes" = json!(["payload_too_large"])))),
    )
)]
pub async fn post_costs(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let q: CostsQuery = query(&req)?;
    let is_csv = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv")));
    let bytes = read_body(body, MAX_UPLOAD_BYTES).await?;
    let rows = if is_csv {
        let site =
            q.site.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
                ApiError::bad_request("a CSV upload names its site in the query: POST /v1/costs?site=…")
            })?;
        csv_costs(&bytes, site, state.sites.as_ref())?
    } else {
        json_costs(&bytes, q.site.as_deref(), state.sites.as_ref())?
    };
    if rows.is_empty() {
        return Err(ApiError::bad_request("no cost rows in the body"));
    }
    no_duplicates(&rows)?;
    let rows: Vec<CostRow> = rows.into_iter().map(|(_, r)| r).collect();
    let money = state.money.clone();
    let stored = blocking(move || money.upsert_costs(&rows)).await?;
    Ok(HttpResponse::Ok().json(CostsStored { upserted: stored }))
}

// ------------------------------------------------------------ revenue

/// Revenue for one call: by `call_id`, or by `caller` (exactly one of them).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RevenuePost)]
struct RevenueBody {
    site: String,
    /// The collector's call id; or give `caller`.
    #[serde(default)]
    call_id: Option<i64>,
    /// The caller's number: the revenue goes to their latest call in
    /// `window_secs` before `at`.
    #[serde(default)]
    #[schema(min_length = 1)]
    caller: Option<String>,
    /// When the deal happened: Unix ms or RFC 3339; default now.
    #[serde(default)]
    #[schema(schema_with = instant)]
    at: Option<Value>,
    /// With `caller`; default 2592000 (30 days).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31622400)]
    window_secs: Option<i64>,
    /// 0 to 1e12 (a trillion units of the currency: larger amounts are
    /// refused, so that no report sum overflows).
    #[schema(minimum = 0, maximum = 1e12)]
    amount: f64,
    /// ISO 4217, e.g. EUR.
    #[serde(default)]
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
    /// Posting the same deal again updates it (idempotent).
    #[serde(default)]
    #[schema(max_length = 200)]
    deal_id: Option<String>,
}

/// Unix ms, or an RFC 3339 time.
fn instant() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new().schema_type(Type::Integer).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .into()
}

fn time_ms(field: &str, v: &Value) -> Result<i64, ApiError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| ApiError::bad_request(format!("{field} must be whole Unix ms"))),
        Value::String(s) => {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| ApiError::bad_request(format!("{field} {s:?} is not an RFC 3339 time: {e}")))?;
            i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
                .map_err(|_| ApiError::bad_request(format!("{field} {s:?} is out of range")))
        }
        _ => Err(ApiError::bad_request(format!("{field} must be Unix ms or an RFC 3339 string"))),
    }
}

/// Checks a revenue post against the site's settings.
fn revenue_post(body: RevenueBody, site: &Site, now_ms: i64) -> Result<RevenuePost, ApiError> {
    let bad = |m: String| ApiError::bad_request(m);
    if !body.amount.is_finite() || body.amount < 0.0 {
        return Err(bad(format!("amount {} must be a number, 0 or more", body.amount)));
    }
    if body.amount > MAX_AMOUNT {
        return Err(bad(format!(
            "amount {} is more than {MAX_AMOUNT:e}, the largest amount one deal may carry",
            body.amount
        )));
    }
    let currency = parse_currency(body.currency.as_deref()).map_err(|reason| bad(format!("currency: {reason}")))?;
    let deal_id = body.deal_id.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    if deal_id.as_ref().is_some_and(|d| d.len() > MAX_TEXT) {
        return Err(bad(format!("deal_id is longer than {MAX_TEXT} bytes")));
    }
    let at_ms = body.at.as_ref().map(|v| time_ms("at", v)).transpose()?;
    let target = match (body.call_id, body.caller.as_deref()) {
        (Some(id), None) => RevenueTarget::Call(id),
        (None, Some(caller)) => {
            let window = body.window_secs.unwrap_or(DEFAULT_REVENUE_WINDOW_SECS);
            if !(1..=MAX_REVENUE_WINDOW_SECS).contains(&window) {
                return Err(bad(format!("window_secs must be between 1 and {MAX_REVENUE_WINDOW_SECS}")));
            }
            // The same normalisation the PBX adapters give `from`, so the
            // number meets the calls' caller key in any written form.
            let key =
                crate::pbx::caller(Some(caller), site.region).ok_or_else(|| bad("caller must not be empty".into()))?;
            RevenueTarget::Caller { key, at_ms: at_ms.unwrap_or(now_ms), window_ms: window * 1000 }
        }
        (Some(_), Some(_)) => return Err(bad("give call_id or caller, not both".into())),
        (None, None) => return Err(bad("give call_id, or caller (with at and window_secs if needed)".into())),
    };
    if body.window_secs.is_some() && matches!(target, RevenueTarget::Call(_)) {
        return Err(bad("window_secs only applies with caller".into()));
    }
    Ok(RevenuePost { site: site.id.clone(), target, amount: body.amount, currency, deal_id, at_ms })
}

#[utoipa::path(
    post,
    path = "/v1/revenue",
    operation_id = "postRevenue",
    tag = "money",
    summary = "Revenue from the CRM for a call (by call id, or by caller within a time window); idempotent per deal_id",
    security(("adminToken" = [])),
    request_body(description = "At most 4096 bytes (413 otherwise).", content((RevenueBody = "application/json"))),
    responses(
        (status = 200, description = "A deal posted before, updated or unchanged", body = RevenueRecorded),
        (status = 201, description = "A new revenue row", body = RevenueRecorded),
        (status = 400, description = "Bad body", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "unknown_site, unknown_call, or no_matching_call (no call from the caller in the window)", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site", "unknown_call", "no_matching_call"])))),
        (status = 413, description = "Body too large", body = ErrorBody, extensions(("x-error-codes" = json!(["payload_too_large"])))),
    )
)]
pub async fn post_revenue(_: Admin, state: web::Data<AppState>, body: web::Payload) -> Result<HttpResponse, ApiError> {
    let bytes = read_body(body, MAX_REVENUE_BYTES).await?;
    let body: RevenueBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not a revenue post: {e}")))?;
    let site = state.site(&body.site)?;
    let post = revenue_post(body, &site, state.clock.now_ms())?;
    let money = state.money.clone();
    let recorded = blocking(move || money.record_revenue(&post)).await?;
    let mut status = if recorded.outcome == "recorded" { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(status.json(recorded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites() -> HashMap<String, Arc<Site>> {
        let text = "[[sites]]\nid = \"shop\"\noriginals = [\"+7 495 123-45-67\"]\n";
        let cfg = crate::config::Config::from_toml_str(
            text,
            std::path::Path::new("t.toml"),
            &HashMap::<String, String>::new(),
        )
        .unwrap();
        cfg.sites.into_iter().map(|s| (s.id.clone(), Arc::new(s))).collect()
    }

    fn issues(e: ApiError) -> Vec<String> {
        assert_eq!(e.code, "invalid_rows", "{e}");
        e.details["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| serde_json::from_value::<RowIssue>(r.clone()).unwrap().to_string())
            .collect()
    }

    #[test]
    fn csv_rows_are_checked_line_by_line() {
        let csv = "date,source,medium,campaign,cost\n2027-01-01,Google,CPC,brand,10.5\n2027-02-30,google,cpc,,x\n,google,cpc,,-1\n";
        let found = issues(csv_costs(csv.as_bytes(), "shop", &sites()).unwrap_err());
        assert_eq!(
            found,
            [
                "line 3, cost: \"x\" is not a number (use '.' for decimals)",
                "line 3, date: \"2027-02-30\" is not a YYYY-MM-DD date",
                "line 4, date: is required",
                "line 4, cost: -1 must be a number, 0 or more",
            ]
        );
        let ok = csv_costs(b"date,source,cost\n2027-01-01,Google,3\n", "shop", &sites()).unwrap();
        assert_eq!((ok[0].1.source.as_str(), ok[0].1.medium.as_str(), ok[0].1.cost), ("google", "", 3.0));
    }

    #[test]
    fn json_rows_name_index_and_field() {
        let body = br#"[{"site":"shop","date":"2027-01-01","source":"google","cost":1},
                        {"site":"nope","date":"2027-01-01","source":"google","cost":"1","extra":1}]"#;
        let found = issues(json_costs(body, None, &sites()).unwrap_err());
        assert_eq!(
            found,
            [
                "[1].extra: unknown field; expected site, date, source, medium, campaign, cost, currency",
                "[1].cost: must be a number",
                "[1].site: no site \"nope\" is configured",
            ]
        );
        let dup = json_costs(
            br#"[{"site":"shop","date":"2027-01-01","source":"google","cost":1},{"site":"shop","date":"2027-01-01","source":"Google","cost":2}]"#,
            None,
            &sites(),
        )
        .unwrap();
        assert_eq!(
            issues(no_duplicates(&dup).unwrap_err()),
            ["[1].date: the same date/source/medium/campaign as index 0"]
        );
    }
}
