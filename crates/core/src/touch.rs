//! Touches: a visit classified into the fields reports group by, and the
//! first/last touch history a visitor carries between visits.

use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::sources::SourceKind;
use crate::visit::{ClickId, Origin, Visit};

/// One visit as attribution sees it.
///
/// The string limits in the schema (bytes of UTF-8) are the collector's: it
/// answers 400 `field_too_long` naming a longer field (`touch.source`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Touch {
    pub channel: Channel,
    /// `google`, `yandex`, `instagram`…, the referrer host for a referral,
    /// `(direct)` for a direct visit, `(not set)` for tags without a source.
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub source: String,
    /// `cpc`, `organic`, `referral`, `(none)` for a direct visit, `(not set)`
    /// for a tagged source without a medium.
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub medium: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub campaign: Option<String>,
    /// `utm_term`, or else the search the referrer carried.
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub term: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub content: Option<String>,
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub utm_id: Option<String>,
    pub click_id: Option<ClickId>,
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub landing_path: String,
    /// The longest DNS name is 253 bytes.
    #[cfg_attr(feature = "openapi", schema(max_length = 253))]
    pub referrer_host: Option<String>,
    /// When the visit happened, in milliseconds since the Unix epoch. The
    /// caller supplies it: core has no clock.
    pub at_ms: u64,
}

impl Touch {
    pub fn is_direct(&self) -> bool {
        self.channel == Channel::Direct
    }
}

const DIRECT_SOURCE: &str = "(direct)";
const NO_MEDIUM: &str = "(none)";
const NOT_SET: &str = "(not set)";

/// Classifies a visit into a touch at `at_ms`.
pub fn classify(visit: &Visit, at_ms: u64) -> Touch {
    let origin = visit.origin();
    let source = match origin {
        Some(origin) => origin.name(),
        None if visit.is_tagged() => NOT_SET.to_owned(),
        None => DIRECT_SOURCE.to_owned(),
    };
    let utm = &visit.utm;
    let referrer = visit.referrer.as_ref();
    Touch {
        channel: Channel::of(visit),
        source,
        medium: medium(visit, origin),
        campaign: utm.campaign.clone(),
        term: utm.term.clone().or_else(|| referrer.and_then(|r| r.search_term.clone())),
        content: utm.content.clone(),
        utm_id: utm.id.clone(),
        click_id: visit.click_id.clone(),
        landing_path: visit.landing_path.clone(),
        referrer_host: referrer.map(|r| r.host.clone()),
        at_ms,
    }
}

/// The medium as written (lower case, so `CPC` and `cpc` group together);
/// otherwise what the visit's origin implies, named as GA4 names it.
fn medium(visit: &Visit, origin: Option<Origin<'_>>) -> String {
    if let Some(medium) = &visit.utm.medium {
        return medium.to_ascii_lowercase();
    }
    let implied = match origin {
        None if visit.is_tagged() => NOT_SET,
        None => NO_MEDIUM,
        Some(Origin::ClickId(kind)) if kind.is_paid() => "cpc",
        Some(Origin::ClickId(_)) => "referral",
        Some(Origin::Tagged(_)) if visit.click_id.as_ref().is_some_and(|c| c.kind.is_paid()) => "cpc",
        Some(Origin::Tagged(_)) => NOT_SET,
        Some(Origin::Referrer(referrer)) => match referrer.source().map(|source| source.kind) {
            Some(SourceKind::Search) => "organic",
            Some(SourceKind::SearchAds) => "cpc",
            _ => "referral",
        },
    };
    implied.to_owned()
}

/// A visitor's first touch and last non-direct touch.
///
/// Direct visits are mostly people returning to a site they found through a
/// campaign, so a direct touch never replaces a campaign as the last touch;
/// it is only recorded as last when there is no other. The first touch is
/// the first ever recorded, direct or not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchHistory {
    pub first: Option<Touch>,
    pub last: Option<Touch>,
}

impl TouchHistory {
    /// Records a touch with no campaign expiry: a non-direct last touch is
    /// kept until another non-direct touch replaces it.
    pub fn record(&mut self, touch: Touch) {
        self.record_with_expiry(touch, u64::MAX);
    }

    /// Records a touch, letting a non-direct last touch older than
    /// `campaign_expiry_ms` (compared with the new touch's `at_ms`) be
    /// replaced by a direct one. Past that window the visitor is treated as
    /// having come back on their own, as analytics tools do with their
    /// campaign timeout. A clock that went backwards never expires a touch.
    pub fn record_with_expiry(&mut self, touch: Touch, campaign_expiry_ms: u64) {
        if self.first.is_none() {
            self.first = Some(touch.clone());
        }
        let keep_last = self.last.as_ref().is_some_and(|last| {
            touch.is_direct() && !last.is_direct() && touch.at_ms.saturating_sub(last.at_ms) <= campaign_expiry_ms
        });
        if !keep_last {
            self.last = Some(touch);
        }
    }
}
