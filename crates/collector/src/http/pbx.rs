//! The PBX webhooks' routes (see [`crate::pbx`] for the adapters):
//! `POST /v1/sites/{site}/pbx/{adapter}`, Mango's
//! `POST …/pbx/mango/events/{event}` and Zadarma's URL check
//! `GET …/pbx/zadarma?zd_echo=X`. The route reads the body, the adapter
//! verifies and maps it, and the call sink stores it.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use ringsource_core::call::CallPhase;
use serde::{Deserialize, Serialize};

use crate::config::Site;
use crate::http::error::ApiError;
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
#[derive(Debug, Serialize)]
struct Answer<'a> {
    outcome: &'static str,
    pbx: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pbx_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase: Option<CallPhase>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
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
            return Ok(HttpResponse::Ok().json(Answer {
                outcome: "ignored",
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
    Ok(HttpResponse::Ok().json(Answer {
        outcome: match outcome {
            RecordOutcome::New => "recorded",
            RecordOutcome::Duplicate => "duplicate",
        },
        pbx,
        pbx_call_id: Some(&pbx_call_id),
        phase: Some(phase),
        status: Some(status.as_str()),
        reason: None,
    }))
}
