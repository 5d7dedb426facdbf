//! The limits of every string the browser routes accept (visits,
//! heartbeats, page views), checked before anything is stored. A field over
//! its limit is a 400 that names it (`touch.source`, `first_touch.term`).
//!
//! The touch's tags come from the landing URL's query (`utm_*`, click ids),
//! which the browser sends at most 4 KiB of (`page.url`): 1 KiB per tag is
//! above what ad platforms put there (Google Analytics itself cut campaign
//! names at 100 bytes and terms at 500), and keeps a visit's rows small. A
//! 30 KB `source` was once stored whole.
//!
//! `openapi.json` declares the same numbers as `maxLength` (a test reads
//! them from there and posts one byte more than each).

use ringsource_core::touch::Touch;
use ringsource_core::wire::{HeartbeatRequest, PageViewRequest, VisitRequest};

/// Bytes of `page.url`, `url` (page views), `referrer` and `touch.landing_path`.
pub const MAX_URL_BYTES: usize = 4096;
/// Bytes of a page title.
pub const MAX_TITLE_BYTES: usize = 1024;
/// Bytes of `client_id` (GA's `_ga`) and `ym_uid` (Metrica's `_ym_uid`).
pub const MAX_VISITOR_ID_BYTES: usize = 128;
/// Bytes of each of a touch's source, medium, campaign, term, content,
/// utm_id and click id value.
pub const MAX_TAG_BYTES: usize = 1024;
/// Bytes of a touch's `referrer_host`: the longest DNS name.
pub const MAX_HOST_BYTES: usize = 253;
/// Session ids: the collector's own, or a browser's that outlived a database reset.
pub const SESSION_ID_BYTES: std::ops::RangeInclusive<usize> = 8..=64;

/// A field the request may not carry as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("{field} is {len} bytes long; at most {max} are accepted")]
    TooLong { field: String, len: usize, max: usize },
    #[error("{field} {value:?} must be 8-64 characters of A-Z, a-z, 0-9, '-' or '_'")]
    BadSessionId { field: &'static str, value: String },
}

impl FieldError {
    /// The path of the field in the request body.
    pub fn field(&self) -> &str {
        match self {
            FieldError::TooLong { field, .. } => field,
            FieldError::BadSessionId { field, .. } => field,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            FieldError::TooLong { .. } => "field_too_long",
            FieldError::BadSessionId { .. } => "bad_request",
        }
    }
}

fn at_most(field: &str, value: Option<&str>, max: usize) -> Result<(), FieldError> {
    match value {
        Some(v) if v.len() > max => Err(FieldError::TooLong { field: field.to_owned(), len: v.len(), max }),
        _ => Ok(()),
    }
}

pub fn session_id(field: &'static str, id: &str) -> Result<(), FieldError> {
    let ok =
        SESSION_ID_BYTES.contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    // A megabyte of garbage is not echoed back whole.
    let shown = || id.chars().take(80).collect();
    if ok { Ok(()) } else { Err(FieldError::BadSessionId { field, value: shown() }) }
}

fn touch(name: &str, t: &Touch) -> Result<(), FieldError> {
    let field = |f: &str| format!("{name}.{f}");
    for (f, v) in [
        ("source", Some(t.source.as_str())),
        ("medium", Some(t.medium.as_str())),
        ("campaign", t.campaign.as_deref()),
        ("term", t.term.as_deref()),
        ("content", t.content.as_deref()),
        ("utm_id", t.utm_id.as_deref()),
        ("click_id.value", t.click_id.as_ref().map(|c| c.value.as_str())),
    ] {
        at_most(&field(f), v, MAX_TAG_BYTES)?;
    }
    at_most(&field("landing_path"), Some(&t.landing_path), MAX_URL_BYTES)?;
    at_most(&field("referrer_host"), t.referrer_host.as_deref(), MAX_HOST_BYTES)
}

/// Every string of a visit, in the order the body lists them.
pub fn visit(v: &VisitRequest) -> Result<(), FieldError> {
    if let Some(id) = &v.session_id {
        session_id("session_id", id)?;
    }
    at_most("client_id", v.client_id.as_deref(), MAX_VISITOR_ID_BYTES)?;
    at_most("ym_uid", v.ym_uid.as_deref(), MAX_VISITOR_ID_BYTES)?;
    touch("touch", &v.touch)?;
    if let Some(first) = &v.first_touch {
        touch("first_touch", first)?;
    }
    at_most("page.url", Some(&v.page.url), MAX_URL_BYTES)?;
    at_most("page.title", v.page.title.as_deref(), MAX_TITLE_BYTES)?;
    at_most("referrer", v.referrer.as_deref(), MAX_URL_BYTES)
}

pub fn heartbeat(h: &HeartbeatRequest) -> Result<(), FieldError> {
    session_id("session_id", &h.session_id)
}

pub fn page_view(p: &PageViewRequest) -> Result<(), FieldError> {
    session_id("session_id", &p.session_id)?;
    at_most("url", Some(&p.url), MAX_URL_BYTES)?;
    at_most("title", p.title.as_deref(), MAX_TITLE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_tag_is_named_by_its_path() {
        let mut t = ringsource_core::touch::classify(
            &ringsource_core::visit::Visit::new(
                ringsource_core::visit::UrlParts { host: "shop.example", path: "/", query: "utm_source=x" },
                None,
                "",
            ),
            0,
        );
        assert_eq!(touch("touch", &t), Ok(()));
        t.term = Some("é".repeat(513));
        assert_eq!(
            touch("first_touch", &t),
            Err(FieldError::TooLong { field: "first_touch.term".into(), len: 1026, max: 1024 })
        );
    }

    #[test]
    fn session_ids_are_checked_and_not_echoed_whole() {
        assert_eq!(session_id("session_id", "abcdefgh"), Ok(()));
        let e = session_id("session_id", &"x!".repeat(10_000)).unwrap_err();
        assert_eq!(e.field(), "session_id");
        assert!(e.to_string().len() < 200, "{e}");
    }
}
