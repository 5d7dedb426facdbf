//! Marketing channels, and the rules that put a visit in one.
//!
//! The rules follow Google Analytics 4's default channel group, so reports
//! read the same as the analytics a site already has. They are checked in
//! this order and the first that applies decides:
//!
//! 1. **Direct**: no UTM tag, no click id and no external referrer; or the
//!    tags literally say source `(direct)` with medium `(none)`/`(not set)`.
//! 2. Channels that GA4 reads from either tag:
//!    - **Email**: the medium or the tagged source is `email` (also written
//!      `e-mail`, `e_mail`, `e mail`, any case) or `newsletter`;
//!    - **SMS**: the medium or the tagged source is `sms`;
//!    - **Mobile Push Notifications**: the tagged source is `firebase`.
//! 3. A medium the marketer wrote decides next, because it is the most
//!    explicit statement of intent (separators and case do not matter):
//!
//!    | `utm_medium` | channel |
//!    |---|---|
//!    | `affiliate`, `affiliates` | Affiliates |
//!    | `display`, `banner`, `expandable`, `interstitial` | Display |
//!    | `audio`, `podcast` | Audio |
//!    | contains `cp` (`cpc`, `cpm`, `cpv`, `cpa`), `ppc`, `retargeting`, starts with `paid` (`paid`, `paidsearch`, `paid_social`) | the paid channel below |
//!    | `social`, `social-network`, `social-media`, `sm` | Organic Social |
//!    | `organic` | Organic Search |
//!    | mentions `video` | Organic Video |
//!    | `referral`, `app`, `link` | Referral |
//!    | ends with `push` (`push`, `web-push`), mentions `mobile` or `notification` | Mobile Push Notifications |
//!
//! 4. A paid click id (`gclid`, `gbraid`, `wbraid`, `yclid`, `msclkid`,
//!    `ttclid`) without a recognised medium → the paid channel. `fbclid` is
//!    not paid on its own: Meta adds it to organic links too.
//! 5. The kind of the visit's known source (the tagged `utm_source`, else the
//!    click id's network, else the referrer, see [`Visit::origin`]): a search
//!    engine → **Organic Search**; a social network → **Organic Social**; a
//!    video site → **Organic Video**; webmail → **Email**; an AI assistant →
//!    **AI Assistants**; an ad network → **Display**; a search engine's ad
//!    click redirector (googleadservices.com) → **Paid Search**; an affiliate network →
//!    **Affiliates**; a listing (maps aside, which are search: classifieds,
//!    marketplaces, directories) → **Referral**.
//! 6. Any other external referrer, when `utm_source` does not override it →
//!    **Referral**.
//! 7. Tags that fit none of the above → **Unassigned**.
//!
//! The paid channel is **Paid Social** when the medium mentions `social` or
//! the source is a social network, **Paid Video** when the medium mentions
//! `video` or the source is a video site, **Paid Search** for a search engine,
//! **Display** for an ad network and **Affiliates** for an affiliate network;
//! for any other source a `cpm` medium means **Display** and anything else
//! **Paid Search** (a `cpc` link is almost always a search ad; GA4 calls it
//! Paid Other). So Yandex Direct (`yclid`, `utm_source=yandex&utm_medium=cpc`,
//! or an `_openstat` tag) and Google Ads (`gclid`) are Paid Search, and
//! `utm_source=instagram&utm_medium=cpc` is Paid Social.
//!
//! Where this differs from GA4, on purpose:
//! - a medium the marketer wrote is never overridden by the source:
//!   `utm_source=google&utm_medium=email` is Email, not Organic Search;
//! - **AI Assistants** is a channel of its own (GA4 files chatgpt.com and the
//!   like under Referral), as Matomo reports them;
//! - webmail referrers are Email (GA4: Referral), `newsletter`, `affiliates`
//!   and `podcast` are read as media;
//! - there are no shopping channels (Organic/Paid Shopping), Cross-network
//!   or Paid Other: they need campaign-name rules and a shopping site list
//!   this crate does not have.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sources::SourceKind;
use crate::visit::{Origin, Visit};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Direct,
    OrganicSearch,
    PaidSearch,
    OrganicSocial,
    PaidSocial,
    Email,
    Referral,
    Display,
    Affiliates,
    OrganicVideo,
    PaidVideo,
    AiAssistants,
    Sms,
    MobilePush,
    Audio,
    Unassigned,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?} (expected a name such as \"Organic Search\" or \"Paid Social\")")]
pub struct UnknownChannel(pub String);

impl Channel {
    pub const ALL: [Channel; 16] = [
        Channel::Direct,
        Channel::OrganicSearch,
        Channel::PaidSearch,
        Channel::OrganicSocial,
        Channel::PaidSocial,
        Channel::Email,
        Channel::Referral,
        Channel::Display,
        Channel::Affiliates,
        Channel::OrganicVideo,
        Channel::PaidVideo,
        Channel::AiAssistants,
        Channel::Sms,
        Channel::MobilePush,
        Channel::Audio,
        Channel::Unassigned,
    ];

    /// The display name, which is also the serialized and configured name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Direct => "Direct",
            Channel::OrganicSearch => "Organic Search",
            Channel::PaidSearch => "Paid Search",
            Channel::OrganicSocial => "Organic Social",
            Channel::PaidSocial => "Paid Social",
            Channel::Email => "Email",
            Channel::Referral => "Referral",
            Channel::Display => "Display",
            Channel::Affiliates => "Affiliates",
            Channel::OrganicVideo => "Organic Video",
            Channel::PaidVideo => "Paid Video",
            Channel::AiAssistants => "AI Assistants",
            Channel::Sms => "SMS",
            Channel::MobilePush => "Mobile Push Notifications",
            Channel::Audio => "Audio",
            Channel::Unassigned => "Unassigned",
        }
    }

    /// The channel whose display name is exactly `name`: how a stored or
    /// serialised touch names its channel. [`FromStr`] also forgives case
    /// and surrounding spaces, for hand-written configuration.
    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|channel| channel.as_str() == name)
    }

    /// Puts a visit in a channel by the rules in the module doc.
    pub fn of(visit: &Visit) -> Channel {
        let origin = visit.origin();
        let source_kind = origin.and_then(Origin::known).map(|source| source.kind);
        let tagged_source = visit.utm.source.as_deref();
        let medium = visit.utm.medium.as_deref();

        if origin.is_none() && !visit.is_tagged() {
            return Channel::Direct;
        }
        if tagged_source == Some("(direct)") && medium.is_none_or(|m| m == "(none)" || m == "(not set)") {
            return Channel::Direct;
        }
        if let Some(channel) = by_either_tag(tagged_source, medium) {
            return channel;
        }
        if let Some(channel) = medium.and_then(|m| by_medium(m, source_kind)) {
            return channel;
        }
        if visit.click_id.as_ref().is_some_and(|click| click.kind.is_paid()) {
            return paid(medium.unwrap_or_default(), source_kind);
        }
        match (source_kind, origin) {
            (Some(SourceKind::Search), _) => Channel::OrganicSearch,
            (Some(SourceKind::Social), _) => Channel::OrganicSocial,
            (Some(SourceKind::Video), _) => Channel::OrganicVideo,
            (Some(SourceKind::Email), _) => Channel::Email,
            (Some(SourceKind::AiAssistant), _) => Channel::AiAssistants,
            (Some(SourceKind::Display), _) => Channel::Display,
            (Some(SourceKind::SearchAds), _) => paid(medium.unwrap_or_default(), source_kind),
            (Some(SourceKind::Affiliate), _) => Channel::Affiliates,
            (Some(SourceKind::Listing), _) | (None, Some(Origin::Referrer(_))) => Channel::Referral,
            (None, _) => Channel::Unassigned,
        }
    }
}

/// Rule 2 of the module doc: the channels GA4 reads from either tag.
fn by_either_tag(source: Option<&str>, medium: Option<&str>) -> Option<Channel> {
    let (source, medium) = (source.map(letters), medium.map(letters));
    let either = |test: fn(&str) -> bool| [&source, &medium].into_iter().flatten().any(|tag| test(tag));
    if either(|tag| matches!(tag, "email" | "newsletter")) {
        return Some(Channel::Email);
    }
    if either(|tag| tag == "sms") {
        return Some(Channel::Sms);
    }
    (source.as_deref() == Some("firebase")).then_some(Channel::MobilePush)
}

/// Rule 3 of the module doc: the channel a written medium names, if any.
fn by_medium(medium: &str, source_kind: Option<SourceKind>) -> Option<Channel> {
    let medium = medium.to_ascii_lowercase();
    let channel = match letters(&medium).as_str() {
        "affiliate" | "affiliates" => Channel::Affiliates,
        "display" | "banner" | "expandable" | "interstitial" => Channel::Display,
        "audio" | "podcast" => Channel::Audio,
        _ if is_paid(&medium) => paid(&medium, source_kind),
        "social" | "socialnetwork" | "socialmedia" | "sm" => Channel::OrganicSocial,
        "organic" => Channel::OrganicSearch,
        _ if mentions(&medium, "video") => Channel::OrganicVideo,
        "referral" | "app" | "link" => Channel::Referral,
        _ if medium.ends_with("push") || mentions(&medium, "mobile") || mentions(&medium, "notification") => {
            Channel::MobilePush
        }
        _ => return None,
    };
    Some(channel)
}

/// `medium` must already be lowercase.
fn is_paid(medium: &str) -> bool {
    mentions(medium, "cp") || medium == "ppc" || medium == "retargeting" || medium.starts_with("paid")
}

/// Which paid channel a paid visit belongs to. `medium` is lowercase, or
/// empty when only a click id says the visit is paid.
fn paid(medium: &str, source_kind: Option<SourceKind>) -> Channel {
    if mentions(medium, "social") {
        return Channel::PaidSocial;
    }
    if mentions(medium, "video") {
        return Channel::PaidVideo;
    }
    match source_kind {
        Some(SourceKind::Social) => Channel::PaidSocial,
        Some(SourceKind::Video) => Channel::PaidVideo,
        Some(SourceKind::Search | SourceKind::SearchAds) => Channel::PaidSearch,
        Some(SourceKind::Display) => Channel::Display,
        Some(SourceKind::Affiliate) => Channel::Affiliates,
        _ if medium == "cpm" => Channel::Display,
        _ => Channel::PaidSearch,
    }
}

/// Whether `text` contains `word` (non-empty). A byte loop rather than
/// `str::contains`, whose substring searcher is sizeable in the bundle.
fn mentions(text: &str, word: &str) -> bool {
    text.as_bytes().windows(word.len()).any(|window| window == word.as_bytes())
}

/// A tag as the rules compare it: ASCII lowercase, without the separators
/// marketers put between words (`-`, `_`, space), so that `Social_Network`
/// reads `socialnetwork` and `e-mail` reads `email`. Made once per tag and
/// compared with `==`: less code in the bundle than comparing letter by
/// letter against each word.
fn letters(tag: &str) -> String {
    tag.bytes().filter(|b| !matches!(b, b'-' | b'_' | b' ')).map(|b| char::from(b.to_ascii_lowercase())).collect()
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = UnknownChannel;

    /// Accepts the display names in any ASCII case, so hand-written
    /// configuration (`channel = "organic search"`) is not rejected over case.
    fn from_str(name: &str) -> Result<Channel, UnknownChannel> {
        let name = name.trim();
        Channel::ALL
            .into_iter()
            .find(|channel| channel.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownChannel(name.to_owned()))
    }
}

impl Serialize for Channel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Channel, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A string among the channels' names, as [`Channel::as_str`] writes them.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Channel {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("The default channel group the touch falls into."))
            .enum_values(Some(Channel::ALL.map(Channel::as_str)))
            .examples(["Paid Search"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Channel {}
