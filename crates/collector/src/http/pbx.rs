//! The PBX webhooks' routes (see [`crate::pbx`] for the adapters):
//! `POST /v1/sites/{site}/pbx/{adapter}`, Mango's
//! `POST …/pbx/mango/events/{event}` and Zadarma's URL check
//! `GET …/pbx/zadarma?zd_echo=X`. The route reads the body, the adapter
//! verifies and maps it, and the call sink stores it.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use ringsource_core::call::{CallPhase, CallStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::config::Site;
use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::{self, SitePath, blocking};
use crate::http::state::AppState;
use crate::pbx::{self, Adapter, Headers, Inbound, Mapped, PbxError, Verified};
use crate::services::calls::RecordOutcome;

/// Bodies above this are refused: a FreeSWITCH CDR with a long app log is the
/// largest report, and stays well under it.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

struct ActixHeaders<'a>(&'a HeaderMap);

impl Headers for ActixHeaders<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The answer to a verified report.
#[derive(Debug, Serialize, ToSchema)]
struct PbxAnswer<'a> {
    #[schema(schema_with = outcome_schema)]
    outcome: &'static str,
    /// The adapter.
    pbx: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pbx_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<CallPhase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CallStatus>)]
    status: Option<&'static str>,
    /// Why an authentic report was `ignored`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// The values of [`PbxAnswer::outcome`].
const OUTCOMES: [&str; 3] = ["recorded", "duplicate", "ignored"];

fn outcome_schema() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(OUTCOMES)).into()
}

/// Reads the body and runs the adapter on it.
async fn verified(
    state: &AppState,
    site: &Site,
    adapter: Adapter,
    event: Option<&str>,
    req: &HttpRequest,
    body: web::Payload,
) -> Result<Verified, ApiError> {
    let body = extract::body(body, MAX_BODY_BYTES).await?;
    let headers = ActixHeaders(req.headers());
    let inbound = Inbound { headers: &headers, body: &body, now_ms: state.clock.now_ms(), region: site.region };
    Ok(pbx::verify(&site.pbx, &site.id, adapter, event, &inbound)?)
}

#[utoipa::path(
    post,
    path = "/v1/sites/{site}/pbx/{adapter}",
    operation_id = "pbxEvent",
    tag = "pbx",
    summary = "A PBX reports a call event",
    description = "Each adapter checks its PBX's own authentication and maps its fields to one call event. `generic`: JSON, Standard Webhooks headers `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>` (timestamp within 300 s; a repeated webhook-id is answered `duplicate`); fields call_id, to, from, phase, status, started_at/answered_at/ended_at (RFC 3339), duration, talk_time (seconds), recording_url. `twilio`: status callback form, `X-Twilio-Signature` over the configured `pbx.twilio_url` plus the sorted parameters. `zadarma`: NOTIFY_START/ANSWER/END form, `Signature` = base64(hex HMAC-SHA1(secret, caller_id + called_did|destination + call_start)). `freeswitch`: mod_json_cdr CDR (JSON, or form field `cdr`), HTTP basic auth. `kamailio`: dialog event JSON {event, call_id, from, to, at, started_at?, answered_at?, sip_code?}, `Authorization: Bearer`. `mango` posts to /pbx/mango/events/{event} instead.",
    params(("site" = String, Path, description = "Site id from the configuration."), ("adapter" = String, Path, description = "generic, twilio, zadarma, freeswitch or kamailio")),
    request_body(description = "The PBX's own report, at most 256 KiB.", content(("application/json"), ("application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Verified. `recorded`: the sink stored something new; `duplicate`: seen before (webhook-id replay or a retried event); `ignored`: authentic but not about an incoming call to a tracking number (see `reason`).", body = PbxAnswer<'static>),
        (status = 404, description = "Unknown site (`unknown_site`), adapter (`unknown_adapter`), the adapter has no credentials for this site (`pbx_not_configured`), or Mango posted here (`wrong_route`)", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site", "unknown_adapter", "pbx_not_configured", "wrong_route"])))),
    )
)]
pub async fn post_event(
    state: web::Data<AppState>,
    SitePath(site): SitePath,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, name) = path.into_inner();
    let adapter = Adapter::from_name(&name).ok_or(PbxError::UnknownAdapter(name))?;
    if adapter == Adapter::Mango {
        // Answered before the body is read: Mango's reports go one level down.
        return Err(pbx::mango_route(&site.id).into());
    }
    let verified = verified(&state, &site, adapter, None, &req, body).await?;
    deliver(&state, &site, adapter, verified).await
}

#[utoipa::path(
    post,
    path = "/v1/sites/{site}/pbx/zadarma",
    operation_id = "pbxZadarma",
    tag = "pbx",
    summary = "Zadarma NOTIFY_* events (the URL that Zadarma's echo check reads)",
    description = "NOTIFY_START/ANSWER/END form, `Signature` = base64(hex HMAC-SHA1(secret, caller_id + called_did|destination + call_start)).",
    params(("site" = String, Path, description = "Site id from the configuration.")),
    request_body(description = "Zadarma's notification form, at most 256 KiB.", content(("application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Verified. `recorded`: the sink stored something new; `duplicate`: seen before (webhook-id replay or a retried event); `ignored`: authentic but not about an incoming call to a tracking number (see `reason`).", body = PbxAnswer<'static>),
    )
)]
pub async fn post_zadarma(
    state: web::Data<AppState>,
    SitePath(site): SitePath,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    site.pbx.zadarma.as_ref().ok_or_else(|| not_configured(&site, Adapter::Zadarma))?;
    let verified = verified(&state, &site, Adapter::Zadarma, None, &req, body).await?;
    deliver(&state, &site, Adapter::Zadarma, verified).await
}

#[utoipa::path(
    post,
    path = "/v1/sites/{site}/pbx/mango/events/{event}",
    operation_id = "pbxMangoEvent",
    tag = "pbx",
    summary = "Mango Office posts a VPBX event",
    description = "Give Mango `/v1/sites/{site}/pbx/mango` as the address; it appends `/events/call`, `/events/summary`, …. Form fields `vpbx_api_key`, `sign` = hex SHA-256(api_key + json + api_salt), `json`. `call` (Appeared → start, Connected → answer) and `summary` (the end, with times and result) are mapped; other events are `ignored`.",
    params(("site" = String, Path, description = "Site id from the configuration."), ("event" = String, Path, description = "call, summary, or another Mango event (ignored)")),
    request_body(description = "Form fields `vpbx_api_key`, `sign` and `json`, at most 256 KiB.", content(("application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "Verified. `recorded`: the sink stored something new; `duplicate`: seen before (webhook-id replay or a retried event); `ignored`: authentic but not about an incoming call to a tracking number (see `reason`).", body = PbxAnswer<'static>),
    )
)]
pub async fn post_mango(
    state: web::Data<AppState>,
    SitePath(site): SitePath,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, event) = path.into_inner();
    site.pbx.mango.as_ref().ok_or_else(|| not_configured(&site, Adapter::Mango))?;
    let verified = verified(&state, &site, Adapter::Mango, Some(&event), &req, body).await?;
    deliver(&state, &site, Adapter::Mango, verified).await
}

fn not_configured(site: &Site, adapter: Adapter) -> PbxError {
    PbxError::NotConfigured { site: site.id.clone(), adapter: adapter.name() }
}

#[derive(Deserialize)]
struct EchoQuery {
    zd_echo: Option<String>,
}

/// Zadarma checks a notification URL by GETting it with `?zd_echo=X` and
/// expecting `X` back. Unsigned by Zadarma's design; it reveals nothing but
/// that the adapter is on for the site.
#[utoipa::path(
    get,
    path = "/v1/sites/{site}/pbx/zadarma",
    operation_id = "pbxZadarmaEcho",
    tag = "pbx",
    summary = "Zadarma's check of the notification URL",
    description = "Zadarma GETs the URL with `?zd_echo=X` when it is saved and expects `X` back as plain text.",
    params(("site" = String, Path, description = "Site id from the configuration."), ("zd_echo" = String, Query, max_length = 256, description = "The value to answer")),
    responses(
        (status = 200, description = "The echo value", body = String, content_type = "text/plain"),
        (status = 400, description = "zd_echo missing or too long", body = ErrorBody, extensions(("x-error-codes" = json!(["bad_request"])))),
        (status = 404, description = "Unknown site, or Zadarma is not configured for it", body = ErrorBody, extensions(("x-error-codes" = json!(["unknown_site", "pbx_not_configured"])))),
    )
)]
pub async fn zadarma_echo(SitePath(site): SitePath, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    site.pbx.zadarma.as_ref().ok_or_else(|| not_configured(&site, Adapter::Zadarma))?;
    let query: EchoQuery = extract::query(&req)?;
    let echo = query.zd_echo.ok_or_else(|| ApiError::bad_request("zd_echo is missing from the query"))?;
    if echo.len() > 256 {
        return Err(ApiError::bad_request("zd_echo is longer than 256 bytes"));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(echo))
}

/// Hands the event to the sink and answers with what it did. A delivery's
/// id goes with the event: the sink decides whether it is a duplicate, in the
/// transaction that stores the event.
async fn deliver(
    state: &AppState,
    site: &Site,
    adapter: Adapter,
    verified: Verified,
) -> Result<HttpResponse, ApiError> {
    let pbx = adapter.name();
    let event = match verified.mapped {
        Mapped::Ignored(reason) => {
            return Ok(HttpResponse::Ok().json(PbxAnswer {
                outcome: OUTCOMES[2],
                pbx,
                pbx_call_id: None,
                phase: None,
                status: None,
                reason: Some(&reason),
            }));
        }
        Mapped::Event(event) => event,
    };
    let sink = state
        .call_sink
        .as_ref()
        .map(Arc::clone)
        .ok_or_else(|| ApiError::internal("no call sink is registered; calls cannot be stored"))?;
    let (pbx_call_id, phase, status) = (event.pbx_call_id.clone(), event.phase, event.status);
    let site_id = site.id.clone();
    let delivery = verified.delivery;
    let outcome = blocking(move || sink.record(&site_id, delivery.as_ref(), event)).await?;
    Ok(HttpResponse::Ok().json(PbxAnswer {
        outcome: match outcome {
            RecordOutcome::New => OUTCOMES[0],
            RecordOutcome::Duplicate => OUTCOMES[1],
        },
        pbx,
        pbx_call_id: Some(&pbx_call_id),
        phase: Some(phase),
        status: Some(status.as_str()),
        reason: None,
    }))
}
