//! Reading where the visitor came from. URL splitting uses the browser's own
//! `URL` so the bundle carries no URL parser; everything after that is core.

use ringsource_core::visit::{UrlParts, Visit};
use web_sys::Url;

use crate::error::WebError;
use crate::js::get_string;

/// The parts of a URL that visit parsing reads, owned so they outlive the `Url`.
struct SplitUrl {
    host: String,
    path: String,
    query: String,
}

impl SplitUrl {
    fn parse(what: &'static str, input: &str) -> Result<SplitUrl, WebError> {
        let url = Url::new(input).map_err(|_| WebError::Url { what, input: input.to_owned() })?;
        // Read through Reflect (`js::get_string`): one shared import rather
        // than a getter import and glue function per part.
        let part = |name| get_string(&url, name).unwrap_or_default();
        let search = part("search");
        Ok(SplitUrl {
            host: part("hostname"),
            path: part("pathname"),
            query: search.strip_prefix('?').unwrap_or(&search).to_owned(),
        })
    }

    fn parts(&self) -> UrlParts<'_> {
        UrlParts { host: &self.host, path: &self.path, query: &self.query }
    }
}

/// An empty referrer is the browser's way of saying "none" (typed URL,
/// bookmark, or a referrer policy that strips it), so it is not an error; nor
/// is a referrer that is not a URL, which says nothing about the visit's
/// origin either and is read as none. Only the page URL must be one.
pub fn read(page_url: &str, referrer: &str, cookies: &str) -> Result<Visit, WebError> {
    let page = SplitUrl::parse("page URL", page_url)?;
    let referrer = match referrer.trim() {
        "" => None,
        r => SplitUrl::parse("referrer", r).ok(),
    };
    Ok(Visit::new(page.parts(), referrer.as_ref().map(SplitUrl::parts), cookies))
}
