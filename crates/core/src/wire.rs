//! Wire types between the browser and the collector (`/v1/sites/{site}/…`).
//!
//! The browser posts these with `Content-Type: text/plain` so that no CORS
//! preflight is needed; the body is still JSON.

use serde::{Deserialize, Serialize};

use crate::phone::PhoneNumber;
use crate::touch::Touch;

/// `GET /v1/sites/{site}/config`: what the browser needs before it asks for a number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SiteConfigPublic {
    pub site: String,
    /// The site's own numbers, to find on the page and replace.
    pub originals: Vec<PhoneNumber>,
    /// Ask for consent before storing anything or taking a lease.
    pub consent_required: bool,
    /// The show-number button, when the site hides its number behind one
    /// (`null` otherwise: always present).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub show_number: Option<ShowNumber>,
    /// How often to renew a lease while the page is visible.
    pub heartbeat_secs: u32,
    /// How long a lease lasts without renewal.
    pub hold_secs: u32,
}

/// The show-number button: the number stays hidden behind `selector` until a
/// click, and only then is a lease taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShowNumber {
    pub selector: String,
    pub label: String,
}

/// The page a request comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page {
    /// With `referrer`, an absolute URL (400 otherwise).
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub title: Option<String>,
}

/// `POST /v1/sites/{site}/visits`: start or continue a visit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VisitRequest {
    /// The session id the collector returned before, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 64, pattern = "^[A-Za-z0-9_-]+$"))]
    pub session_id: Option<String>,
    /// Google Analytics client id (from the `_ga` cookie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub client_id: Option<String>,
    /// Yandex Metrica user id (the `_ym_uid` cookie).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub ym_uid: Option<String>,
    /// This visit's touch (the last touch).
    pub touch: Touch,
    /// The visitor's first touch, when it differs from `touch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_touch: Option<Touch>,
    pub page: Page,
    /// `document.referrer` as the browser reported it (empty for none). When
    /// present, the collector classifies the visit again from `page.url` and
    /// this referrer with its full source table, routes and stores that touch
    /// instead of `touch`, and answers it in [`VisitResponse::touch`]; a direct
    /// page view keeps a non-direct `touch` (last-non-direct rule). A referrer
    /// that is not a URL counts as none; `page.url` must then be a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub referrer: Option<String>,
    /// The visitor clicked the show-number button.
    #[serde(default)]
    pub reveal: bool,
    /// The visitor has consented (the site's banner, or `grantConsent()`).
    /// Without it, a site that requires consent stores nothing of this
    /// request and answers only its [`SiteConfigPublic`].
    #[serde(default)]
    pub consent: bool,
}

/// What the visitor is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum NumberKind {
    /// A dynamic pool number leased to this session (or the overflow number).
    Lease,
    /// A static number of the visit's source.
    Static,
    /// A promo code instead of a number.
    Promo,
    /// Keep the site's original number.
    Original,
}

/// The answer to a [`VisitRequest`]. It carries the site's public config, so
/// that a page needs one round trip, not two, before it can swap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VisitResponse {
    /// Absent when nothing was stored: the site requires consent and the
    /// request did not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub kind: NumberKind,
    /// The number to show (absent for `original`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<PhoneNumber>,
    /// When the lease ends unless renewed (only for a real lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    pub heartbeat_secs: u32,
    /// The pool was exhausted and this is the site's overflow number.
    pub overflow: bool,
    /// The code to show for `kind: promo` (the page keeps its original number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promo_code: Option<String>,
    /// What `GET /config` answers: the originals to find, consent, show-number.
    pub site: SiteConfigPublic,
    /// The touch the collector decided, when the request sent its
    /// `referrer`: what the browser should remember as this visit's touch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touch: Option<Touch>,
}

/// `POST /v1/sites/{site}/heartbeat`: renew the session's lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 64, pattern = "^[A-Za-z0-9_-]+$"))]
    pub session_id: String,
}

/// The renewed lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatResponse {
    pub number: PhoneNumber,
    pub expires_at_ms: i64,
}

/// `POST /v1/sites/{site}/pageviews`: a page seen during the session (204).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PageViewRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 64, pattern = "^[A-Za-z0-9_-]+$"))]
    pub session_id: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub title: Option<String>,
}

/// Every error body: `{ "error": { "code", "message" } }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`unknown_site`, `bad_request`, `lease_gone`…).
    pub code: String,
    pub message: String,
}
