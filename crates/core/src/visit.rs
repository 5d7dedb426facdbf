//! A visit: what the landing page URL, the referrer and the cookies say about
//! where a visitor came from, before any judgement about channels.
//!
//! URL splitting is the platform's job (the browser's `URL`, the collector's
//! `url` crate), so this module takes [`UrlParts`] and only decodes query
//! strings. Malformed input never fails a visit: a tag that cannot be read is
//! simply absent, because the page must still load and the call must still be
//! counted.
//!
//! With the `full-sources` feature (the collector) a landing URL's `_openstat`
//! tag is read too: Yandex Direct's older marker, `service;campaign;ad;place`
//! in base64 (the Openstat marker specification, version 1.0). It stands in
//! for the UTM tags the URL lacks: source the service (`direct.yandex.ru` is
//! `yandex`), medium `cpc`, campaign and content the campaign and ad ids. The
//! place the ad was shown has no touch field and is not kept. The browser
//! bundle leaves the tag to the collector, which classifies the raw landing
//! URL again.

use serde::{Deserialize, Serialize};

use crate::sources::{self, Source};

/// A URL already split by the platform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// The host name; a `:port` suffix and upper case are tolerated.
    pub host: &'a str,
    pub path: &'a str,
    /// The query string without the leading `?`.
    pub query: &'a str,
}

/// The UTM tags of the landing page, trimmed; an empty tag is absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utm {
    pub source: Option<String>,
    pub medium: Option<String>,
    pub campaign: Option<String>,
    pub term: Option<String>,
    pub content: Option<String>,
    pub id: Option<String>,
}

impl Utm {
    pub fn is_empty(&self) -> bool {
        let Utm { source, medium, campaign, term, content, id } = self;
        source.is_none()
            && medium.is_none()
            && campaign.is_none()
            && term.is_none()
            && content.is_none()
            && id.is_none()
    }

    /// Stores `value` under the UTM parameter `key` (already lowercase);
    /// returns false when `key` is not a UTM parameter. The first non-empty
    /// occurrence of a tag wins.
    fn accept(&mut self, key: &str, value: &str) -> bool {
        let slot = match key {
            "utm_source" => &mut self.source,
            "utm_medium" => &mut self.medium,
            "utm_campaign" => &mut self.campaign,
            "utm_term" => &mut self.term,
            "utm_content" => &mut self.content,
            "utm_id" => &mut self.id,
            _ => return false,
        };
        if slot.is_none() {
            *slot = non_empty(value);
        }
        true
    }
}

/// The ad platforms' own click identifiers, which auto-tagging appends to
/// landing URLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ClickIdKind {
    /// Google Ads.
    Gclid,
    /// Google Ads on iOS apps, for app-to-web clicks.
    Gbraid,
    /// Google Ads on iOS, for web-to-web clicks.
    Wbraid,
    /// Yandex Direct.
    Yclid,
    /// Microsoft Advertising.
    Msclkid,
    /// Facebook and Instagram. Meta appends it to every outbound link,
    /// organic posts included, so on its own it does not mean a paid click.
    Fbclid,
    /// TikTok Ads.
    Ttclid,
}

impl ClickIdKind {
    /// The order in which a landing URL's click ids are read when it carries
    /// several. Ad-network ids come before Meta's `fbclid` because `fbclid`
    /// rides along on any link shared on Facebook, including a link that
    /// already came from an ad elsewhere; among ad networks the order follows
    /// how specific the id is to one click.
    pub const PRIORITY: [ClickIdKind; 7] = [
        ClickIdKind::Gclid,
        ClickIdKind::Yclid,
        ClickIdKind::Msclkid,
        ClickIdKind::Ttclid,
        ClickIdKind::Gbraid,
        ClickIdKind::Wbraid,
        ClickIdKind::Fbclid,
    ];

    /// The query parameter name, which is also the serialized name.
    pub const fn param(self) -> &'static str {
        match self {
            ClickIdKind::Gclid => "gclid",
            ClickIdKind::Gbraid => "gbraid",
            ClickIdKind::Wbraid => "wbraid",
            ClickIdKind::Yclid => "yclid",
            ClickIdKind::Msclkid => "msclkid",
            ClickIdKind::Fbclid => "fbclid",
            ClickIdKind::Ttclid => "ttclid",
        }
    }

    /// Whether the id is only ever added to paid ad clicks.
    pub const fn is_paid(self) -> bool {
        !matches!(self, ClickIdKind::Fbclid)
    }

    /// The name, in [`sources::SOURCES`], of the network that issues the id.
    pub const fn network(self) -> &'static str {
        match self {
            ClickIdKind::Gclid | ClickIdKind::Gbraid | ClickIdKind::Wbraid => "google",
            ClickIdKind::Yclid => "yandex",
            ClickIdKind::Msclkid => "bing",
            ClickIdKind::Fbclid => "facebook",
            ClickIdKind::Ttclid => "tiktok",
        }
    }

    /// The kind whose [`param`](Self::param) is exactly `name`: how a stored
    /// or serialised click id names its kind.
    pub fn from_name(name: &str) -> Option<ClickIdKind> {
        Some(match name {
            "gclid" => ClickIdKind::Gclid,
            "gbraid" => ClickIdKind::Gbraid,
            "wbraid" => ClickIdKind::Wbraid,
            "yclid" => ClickIdKind::Yclid,
            "msclkid" => ClickIdKind::Msclkid,
            "fbclid" => ClickIdKind::Fbclid,
            "ttclid" => ClickIdKind::Ttclid,
            _ => return None,
        })
    }

    fn rank(self) -> usize {
        ClickIdKind::PRIORITY.iter().position(|k| *k == self).unwrap_or(usize::MAX)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClickId {
    pub kind: ClickIdKind,
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub value: String,
}

/// An external referrer. Same-site referrers are never stored as one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referrer {
    /// Lowercase, without port, and without a leading `www.`, so that
    /// `www.example.org` and `example.org` report as one referral source.
    pub host: String,
    pub path: String,
    /// What the visitor searched for, when the referrer is a known source
    /// that carries the search in its URL.
    pub search_term: Option<String>,
}

impl Referrer {
    fn new(parts: UrlParts<'_>, page_host: &str) -> Option<Referrer> {
        let host = site_host(parts.host);
        if host.is_empty() || is_same_site(&host, page_host) {
            return None;
        }
        let term = |source: &Source| source.search_params().find_map(|param| query_value(parts.query, param));
        let search_term = sources::find_referrer(&host, parts.path, &term).and_then(|found| found.search_term);
        Some(Referrer { host, path: parts.path.to_owned(), search_term })
    }

    /// The known source this referrer belongs to, if any. The query is not
    /// kept, so a source recognised only with a search term is recognised
    /// when the referrer carried one.
    pub fn source(&self) -> Option<Source> {
        sources::find_referrer(&self.host, &self.path, &|_| self.search_term.clone()).map(|found| found.source)
    }
}

/// Everything a page view tells about the visit's origin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub landing_path: String,
    pub utm: Utm,
    /// The highest-ranked click id present, by [`ClickIdKind::PRIORITY`].
    pub click_id: Option<ClickId>,
    pub referrer: Option<Referrer>,
    /// The Google Analytics client id from the `_ga` cookie, as the
    /// Measurement Protocol expects it (`1234567890.1700000000`).
    pub ga_client_id: Option<String>,
    /// The Yandex Metrica visitor id from the `_ym_uid` cookie.
    pub ym_uid: Option<String>,
}

impl Visit {
    /// Reads a visit from the landing page, the referrer (`None` when the
    /// browser reported none) and `document.cookie` (`"a=b; c=d"`).
    pub fn new(page: UrlParts<'_>, referrer: Option<UrlParts<'_>>, cookies: &str) -> Visit {
        let mut utm = Utm::default();
        let mut click_id: Option<ClickId> = None;
        #[cfg(feature = "full-sources")]
        let mut openstat = None;
        for (key, value) in query_pairs(page.query) {
            // UTM and click id parameters are read in any letter case.
            let name = key.to_ascii_lowercase();
            if utm.accept(&name, &value) {
                continue;
            }
            #[cfg(feature = "full-sources")]
            if key == "_openstat" {
                openstat = openstat.or_else(|| openstat::Openstat::decode(&value));
                continue;
            }
            let Some(kind) = ClickIdKind::from_name(&name) else {
                continue;
            };
            let outranks = click_id.as_ref().is_none_or(|current| kind.rank() < current.kind.rank());
            if outranks && let Some(value) = non_empty(&value) {
                click_id = Some(ClickId { kind, value });
            }
        }
        #[cfg(feature = "full-sources")]
        if let Some(openstat) = openstat {
            openstat.fill(&mut utm);
        }
        let page_host = site_host(page.host);
        Visit {
            landing_path: page.path.to_owned(),
            utm,
            click_id,
            referrer: referrer.and_then(|parts| Referrer::new(parts, &page_host)),
            ga_client_id: cookie(cookies, "_ga").and_then(ga_client_id),
            ym_uid: cookie(cookies, "_ym_uid").and_then(ym_uid),
        }
    }

    /// Whether the landing URL carries any UTM tag. A tagged visit is a
    /// campaign visit even when no rule recognises its tags.
    pub fn is_tagged(&self) -> bool {
        !self.utm.is_empty()
    }

    /// Where the visit came from, by precedence: an explicit `utm_source`
    /// (the marketer said so); a paid click id (the ad network said so, and
    /// ad clicks often arrive without a referrer); the referrer; and last a
    /// non-paid click id (`fbclid`), which still shows the link came from
    /// Facebook when the in-app browser dropped the referrer.
    pub fn origin(&self) -> Option<Origin<'_>> {
        if let Some(tag) = &self.utm.source {
            return Some(Origin::Tagged(tag));
        }
        let click = self.click_id.as_ref().map(|c| c.kind);
        if let Some(kind) = click.filter(|k| k.is_paid()) {
            return Some(Origin::ClickId(kind));
        }
        if let Some(referrer) = &self.referrer {
            return Some(Origin::Referrer(referrer));
        }
        click.map(Origin::ClickId)
    }
}

/// The one signal a visit's source is taken from; see [`Visit::origin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    Tagged(&'a str),
    ClickId(ClickIdKind),
    Referrer(&'a Referrer),
}

impl Origin<'_> {
    /// The known source behind the origin, if the table has it.
    pub fn known(self) -> Option<Source> {
        match self {
            Origin::Tagged(tag) => sources::find_by_tag(tag),
            Origin::ClickId(kind) => sources::find_by_tag(kind.network()),
            Origin::Referrer(referrer) => referrer.source(),
        }
    }

    /// The source name reported for the visit: the tag as written (in lower
    /// case, so `Google` and `google` group together), the click id's
    /// network, a known referrer's canonical name, or else the referrer host.
    pub fn name(self) -> String {
        match self {
            Origin::Tagged(tag) => tag.to_ascii_lowercase(),
            Origin::ClickId(kind) => kind.network().to_owned(),
            Origin::Referrer(referrer) => match referrer.source() {
                Some(source) => source.name.to_owned(),
                None => referrer.host.clone(),
            },
        }
    }
}

/// The `_ga` cookie's client id: `GA1.2.1234567890.1700000000` gives
/// `1234567890.1700000000`. The second field is the cookie domain's depth
/// (1 or 2 and so on) and is not part of the id. Anything else shaped
/// differently is ignored rather than guessed at, because a wrong client id
/// attributes a call to a stranger's analytics session.
pub fn ga_client_id(cookie_value: &str) -> Option<String> {
    let mut fields = cookie_value.trim().split('.');
    let version = fields.next()?.strip_prefix("GA")?;
    let depth = fields.next()?;
    let random = fields.next()?;
    let timestamp = fields.next()?;
    let well_formed =
        fields.next().is_none() && [version, depth, random, timestamp].iter().all(|field| is_digits(field));
    well_formed.then(|| {
        let mut id = String::with_capacity(random.len() + 1 + timestamp.len());
        id.push_str(random);
        id.push('.');
        id.push_str(timestamp);
        id
    })
}

/// The `_ym_uid` cookie's visitor id, which Metrica writes as digits only.
pub fn ym_uid(cookie_value: &str) -> Option<String> {
    let value = cookie_value.trim();
    is_digits(value).then(|| value.to_owned())
}

fn is_digits(field: &str) -> bool {
    !field.is_empty() && field.bytes().all(|b| b.is_ascii_digit())
}

/// The value of the first cookie called `name` in `document.cookie` format.
/// The browser lists the most specific path first, which is the one the
/// page itself would read.
fn cookie<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    cookies
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim())
}

/// The first non-empty value of `param` in `query`, decoded and trimmed.
fn query_value(query: &str, param: &str) -> Option<String> {
    query_pairs(query).filter(|(key, _)| key == param).find_map(|(_, value)| non_empty(&value))
}

/// The `name=value` pairs of a query, decoded as
/// `application/x-www-form-urlencoded` by the rules of `form_urlencoded::parse`:
/// `&` separates pairs and empty ones are skipped, a pair without `=` has an
/// empty value, `+` is a space, `%XX` is a byte (a `%` without two hex digits
/// stays as it is), and invalid UTF-8 becomes U+FFFD. Written here because the
/// crate's iterator adapters cost about 2 KB in the browser bundle; a test
/// checks it against the crate.
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|pair| !pair.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(name), form_decode(value))
    })
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |at: usize| bytes.get(at).and_then(|&b| char::from(b).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        at += 1;
        let decoded = match byte {
            b'+' => b' ',
            b'%' => match (hex(at), hex(at + 1)) {
                (Some(high), Some(low)) => {
                    at += 2;
                    (high * 16 + low) as u8
                }
                _ => byte,
            },
            _ => byte,
        };
        out.push(decoded);
    }
    lossy_utf8(&out)
}

/// `String::from_utf8_lossy`, with the same replacement rule (one U+FFFD per
/// maximal invalid sequence, which is what `Utf8Error::error_len` measures),
/// built on `str::from_utf8`, which the bundle has anyway: std's version
/// brings its own UTF-8 decoder (about 500 B of wasm).
fn lossy_utf8(mut bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                out.push_str(valid);
                return out;
            }
            Err(error) => {
                let (valid, rest) = bytes.split_at(error.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                bytes = rest.get(error.error_len().map_or(rest.len(), usize::from)..).unwrap_or_default();
            }
        }
    }
}

fn non_empty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// A host as sites are compared and reported: lowercase, without port or
/// trailing dot, and without a leading `www.` (kept when it is all there
/// is to the name, as in `www.com`).
fn site_host(host: &str) -> String {
    let host = host.trim();
    let host = match host.strip_prefix('[') {
        // An IPv6 literal: the port, if any, follows the closing bracket.
        Some(_) => host.find(']').map_or(host, |end| &host[..=end]),
        None => match sources::rsplit_once_ascii(host, b':') {
            Some((name, port)) if is_digits(port) => name,
            _ => host,
        },
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    match host.strip_prefix("www.") {
        Some(rest) if rest.contains('.') => rest.to_owned(),
        _ => host,
    }
}

/// Whether a referrer is the site itself. Both hosts come from
/// [`site_host`], so `www.` is already gone. A subdomain of the page
/// (`blog.example.com` linking to `example.com`) or its parent domain
/// (`example.com` linking to `shop.example.com`) is one business's own
/// navigation, not a source. Sibling subdomains are not treated as the same
/// site: without a public suffix list, `a.github.io` and `b.github.io` cannot
/// be told apart from `a.example.com` and `b.example.com`, and counting a
/// real referral as internal would lose a source.
fn is_same_site(referrer_host: &str, page_host: &str) -> bool {
    !page_host.is_empty()
        && (sources::is_within(referrer_host, page_host) || sources::is_within(page_host, referrer_host))
}

/// Yandex Direct's `_openstat` marker (see the module doc).
#[cfg(feature = "full-sources")]
mod openstat {
    use base64::Engine as _;
    use base64::alphabet;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

    use super::{Utm, non_empty};
    use crate::sources;

    /// A decoded marker: who showed the ad, and which campaign and ad it was.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Openstat {
        service: String,
        campaign: Option<String>,
        ad: Option<String>,
    }

    impl Openstat {
        /// The marker from the parameter's (already URL-decoded) value: base64
        /// in either alphabet, padded or not, or the plain text, which the
        /// specification also allows. Anything else is no marker.
        pub fn decode(value: &str) -> Option<Openstat> {
            let value = value.trim();
            let text = if value.contains(';') { value.to_owned() } else { from_base64(value)? };
            let mut parts = text.splitn(4, ';');
            let service = non_empty(parts.next()?)?.to_ascii_lowercase();
            let campaign = non_empty(parts.next()?);
            let ad = non_empty(parts.next()?);
            // The fourth part, the place the ad was shown, must be there for
            // the text to be a marker at all.
            parts.next()?;
            Some(Openstat { service, campaign, ad })
        }

        /// Stands in for the UTM tags the landing URL does not have.
        pub fn fill(self, utm: &mut Utm) {
            // `direct.yandex.ru` is Yandex's, though only `yandex.ru` itself is
            // its search engine: the service's host or the nearest parent
            // domain that names a source.
            let mut host = self.service.as_str();
            let known = loop {
                if let Some(source) = sources::find_by_host(host) {
                    break Some(source.name);
                }
                match host.split_once('.') {
                    Some((_, parent)) if parent.contains('.') => host = parent,
                    _ => break None,
                }
            };
            let source = known.map_or(self.service.clone(), str::to_owned);
            utm.source.get_or_insert(source);
            utm.medium.get_or_insert_with(|| "cpc".to_owned());
            if let Some(campaign) = self.campaign {
                utm.campaign.get_or_insert(campaign);
            }
            if let Some(ad) = self.ad {
                utm.content.get_or_insert(ad);
            }
        }
    }

    fn from_base64(value: &str) -> Option<String> {
        let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        // A `+` that was not percent-encoded arrives as a space.
        let value = value.replace(' ', "+");
        let bytes = [alphabet::STANDARD, alphabet::URL_SAFE]
            .iter()
            .find_map(|alphabet| GeneralPurpose::new(alphabet, config).decode(&value).ok())?;
        String::from_utf8(bytes).ok()
    }

    #[cfg(test)]
    mod tests {
        use super::Openstat;

        #[test]
        fn decodes_base64_in_either_alphabet_and_plain_text() {
            let marker = |service: &str, campaign: &str, ad: &str| {
                Some(Openstat { service: service.into(), campaign: Some(campaign.into()), ad: Some(ad.into()) })
            };
            // The example in HostCMS's documentation of its Openstat support.
            let example = marker("direct.yandex.ru", "1234", "56789");
            assert_eq!(Openstat::decode("ZGlyZWN0LnlhbmRleC5ydTsxMjM0OzU2Nzg5O3lhbmRleC5ydTpwcmVtaXVt"), example);
            assert_eq!(Openstat::decode("direct.yandex.ru;1234;56789;yandex.ru:premium"), example);
            // `?`, `>` and `~` put `/` and `+` (or `_` and `-`) in the base64;
            // unpadded, and with the `+` turned into a space by form decoding.
            let odd = marker("market.yandex.ru", "??>", "~~~");
            assert_eq!(Openstat::decode("bWFya2V0LnlhbmRleC5ydTs/Pz47fn5+O3g="), odd);
            assert_eq!(Openstat::decode("bWFya2V0LnlhbmRleC5ydTs_Pz47fn5-O3g"), odd);
            assert_eq!(Openstat::decode("bWFya2V0LnlhbmRleC5ydTs/Pz47fn5 O3g"), odd);
            assert_eq!(Openstat::decode("not base64!"), None);
            assert_eq!(Openstat::decode("c2VydmljZQ"), None, "no semicolons: not a marker");
            assert_eq!(Openstat::decode(";1;2;3"), None, "no service");
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{ClickIdKind, lossy_utf8, query_pairs};

    #[test]
    fn click_id_kinds_are_found_by_their_exact_name() {
        for kind in ClickIdKind::PRIORITY {
            assert_eq!(ClickIdKind::from_name(kind.param()), Some(kind));
        }
        assert_eq!(ClickIdKind::from_name("GCLID"), None);
        assert_eq!(ClickIdKind::from_name("dclid"), None);
    }

    fn reference(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn query_pairs_decode_as_form_urlencoded_does() {
        for query in [
            "",
            "&&",
            "a",
            "a=",
            "=b",
            "a=b=c&&d=e",
            "utm_source=a+b%20c&gclid=%2B%2b",
            "q=%zz%4&r=%",
            "q=%D0%BF%D1%80%D0%B8&bad=%FF%C3%28x",
            "text=\u{43f}\u{440}\u{438}+%E2%82",
        ] {
            assert_eq!(query_pairs(query).collect::<Vec<_>>(), reference(query), "{query}");
        }
    }

    proptest! {
        #[test]
        fn lossy_utf8_matches_std(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
            prop_assert_eq!(lossy_utf8(&bytes), String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn query_pairs_match_form_urlencoded(query in "([a-z=&+%]|%[0-9a-fA-F]{0,2}|%[89a-fA-F][0-9a-fA-F]|\u{e9}){0,24}") {
            prop_assert_eq!(query_pairs(&query).collect::<Vec<_>>(), reference(&query));
        }
    }
}
