//! The table of referrer sources that are known by name: search engines,
//! social networks, video sites and webmail.
//!
//! The table is written here from public facts about each service (its own
//! domains and the query parameter its result pages carry the search in). It
//! is not derived from Snowplow's `referers.yml` or Matomo's lists, which are
//! GPL-3.
//!
//! To add a source, append a [`Source`] to [`SOURCES`]. Hosts, tags and
//! search parameters are written as space-separated lists in one string each
//! (`"vk.com vk.ru"`, `"google.*"` for [`HostPattern::AnyTld`]): the table is
//! part of the browser bundle, and slices of patterns cost about as much
//! again as the names themselves. Entries are tried in
//! order and the first match wins, so a narrow host (`mail.google.com`) must
//! come before a broad pattern that also covers it (`google.*`). A test checks
//! that every listed domain resolves to its own entry.

use SourceKind::{Email, Search, Social, Video};

/// What kind of place a source is; the channel rules read this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    Search,
    Social,
    Video,
    Email,
}

/// How a source recognises a referrer host. Hosts given to [`matches`]
/// are lowercase and without port.
///
/// [`matches`]: HostPattern::matches
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// This exact domain or any subdomain of it: `vk.com` covers `m.vk.com`.
    Domain(&'static str),
    /// A brand label under any country or generic top-level domain, with any
    /// subdomains: `google` covers `google.com`, `www.google.co.uk` and
    /// `images.google.com.br`. The part after the label must look like a
    /// public suffix (one label, or a short second level such as `co.` or
    /// `com.` before a two-letter country code) so that `google.example.com`
    /// does not match.
    AnyTld(&'static str),
}

impl HostPattern {
    pub fn matches(self, host: &str) -> bool {
        match self {
            HostPattern::Domain(domain) => is_within(host, domain),
            HostPattern::AnyTld(label) => matches_any_tld(host, label),
        }
    }
}

/// `host` is `domain` or one of its subdomains.
pub(crate) fn is_within(host: &str, domain: &str) -> bool {
    match host.strip_suffix(domain) {
        Some("") => true,
        Some(prefix) => prefix.ends_with('.'),
        None => false,
    }
}

/// `text` split around the last `separator` (an ASCII byte), like
/// `str::rsplit_once` with a `char`. That one brings a reverse memchr
/// searcher into the browser bundle (about 0.7 KB of wasm) for three calls
/// that only ever split on '.' or ':'.
pub(crate) fn rsplit_once_ascii(text: &str, separator: u8) -> Option<(&str, &str)> {
    let at = text.bytes().rposition(|b| b == separator)?;
    Some((&text[..at], &text[at + 1..]))
}

fn matches_any_tld(host: &str, label: &str) -> bool {
    let Some((rest, tld)) = rsplit_once_ascii(host, b'.').filter(|(_, tld)| is_tld(tld)) else {
        return false;
    };
    if is_within(rest, label) {
        return true;
    }
    // Country domains with a second level: google.co.uk, yandex.com.tr.
    let Some((rest, second)) = rsplit_once_ascii(rest, b'.') else {
        return false;
    };
    tld.len() == 2 && (2..=3).contains(&second.len()) && is_tld(second) && is_within(rest, label)
}

fn is_tld(label: &str) -> bool {
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_lowercase())
}

/// One known source.
#[derive(Debug)]
pub struct Source {
    /// The canonical lowercase name, used as a touch's source.
    pub name: &'static str,
    pub kind: SourceKind,
    /// Space-separated host patterns: `vk.com` is a [`HostPattern::Domain`],
    /// `google.*` a [`HostPattern::AnyTld`].
    hosts: &'static str,
    /// Space-separated other spellings marketers put in `utm_source` for this
    /// source (besides `name` and the hosts themselves), lowercase.
    tags: &'static str,
    /// Space-separated referrer query parameters that carry the visitor's
    /// search, in order of preference. Empty when the source does not pass
    /// the search on.
    search_params: &'static str,
}

/// The items of a space-separated list.
fn words(list: &'static str) -> impl Iterator<Item = &'static str> {
    list.split(' ').filter(|word| !word.is_empty())
}

impl Source {
    pub fn matches_host(&self, host: &str) -> bool {
        self.hosts().any(|pattern| pattern.matches(host))
    }

    /// How the source recognises a referrer host.
    pub fn hosts(&self) -> impl Iterator<Item = HostPattern> {
        words(self.hosts).map(|pattern| match pattern.strip_suffix(".*") {
            Some(label) => HostPattern::AnyTld(label),
            None => HostPattern::Domain(pattern),
        })
    }

    /// Other spellings marketers put in `utm_source` for this source
    /// (besides `name` and the hosts themselves), lowercase.
    pub fn tags(&self) -> impl Iterator<Item = &'static str> {
        words(self.tags)
    }

    /// Referrer query parameters that carry the visitor's search, in order
    /// of preference; none when the source does not pass the search on.
    pub fn search_params(&self) -> impl Iterator<Item = &'static str> {
        words(self.search_params)
    }
}

const fn source(
    name: &'static str,
    kind: SourceKind,
    hosts: &'static str,
    tags: &'static str,
    search_params: &'static str,
) -> Source {
    Source { name, kind, hosts, tags, search_params }
}

/// Every known source, narrowest hosts first (see the module doc).
///
/// Android apps open links with an `android-app://<package>` referrer, whose
/// host is the app's package name; the package names of the apps that send
/// many visits are listed beside the web domains.
#[rustfmt::skip]
pub const SOURCES: &[Source] = &[
    // Webmail sits on subdomains of search portals, so it comes first.
    source("gmail", Email, "mail.google.com com.google.android.gm", "", ""),
    source("outlook", Email, "outlook.live.com outlook.office.com outlook.office365.com", "hotmail", ""),
    source("yahoo-mail", Email, "mail.yahoo.com", "", ""),
    source("yandex-mail", Email, "mail.yandex.ru mail.yandex.com", "", ""),
    source("mailru-mail", Email, "e.mail.ru", "", ""),
    source("rambler-mail", Email, "mail.rambler.ru", "", ""),
    // Dzen used to live at zen.yandex.ru, under the Yandex pattern below.
    source("dzen", Social, "dzen.ru zen.yandex.ru", "zen", ""),
    source("vk", Social, "vk.com vk.ru vk.me", "vkontakte", ""),
    source("ok", Social, "ok.ru odnoklassniki.ru", "odnoklassniki", ""),
    source("telegram", Social, "t.me telegram.me telegram.org org.telegram.messenger", "tg", ""),
    source("facebook", Social, "facebook.com fb.com fb.me", "fb", ""),
    source("instagram", Social, "instagram.com", "ig", ""),
    source("threads", Social, "threads.net threads.com", "", ""),
    source("tiktok", Social, "tiktok.com", "", ""),
    source("twitter", Social, "t.co twitter.com x.com", "x", ""),
    source("linkedin", Social, "linkedin.com lnkd.in", "", ""),
    source("pinterest", Social, "pinterest.* pin.it", "", ""),
    source("reddit", Social, "reddit.com redd.it", "", ""),
    source("whatsapp", Social, "whatsapp.com wa.me", "wa", ""),
    source("youtube", Video, "youtube.com youtu.be", "yt", ""),
    source("vkvideo", Video, "vkvideo.ru", "", ""),
    source("rutube", Video, "rutube.ru", "", ""),
    source("vimeo", Video, "vimeo.com", "", ""),
    source("twitch", Video, "twitch.tv", "", ""),
    source("google", Search, "google.* com.google.android.googlequicksearchbox", "", "q"),
    source("yandex", Search, "yandex.* ya.ru", "ya", "text"),
    source("bing", Search, "bing.com", "", "q"),
    source("duckduckgo", Search, "duckduckgo.com", "ddg", "q"),
    source("mail.ru", Search, "go.mail.ru", "mailru", "q"),
    // Rambler's search runs on the portal itself; its mail is listed above.
    source("rambler", Search, "rambler.ru", "", "query"),
    source("baidu", Search, "baidu.com", "", "wd word"),
    source("yahoo", Search, "yahoo.*", "", "p"),
    source("ecosia", Search, "ecosia.org", "", "q"),
    source("brave", Search, "search.brave.com", "", "q"),
    source("qwant", Search, "qwant.com", "", "q"),
    source("seznam", Search, "seznam.cz", "", "q"),
    source("naver", Search, "naver.com", "", "query"),
];

/// The source a referrer host belongs to. `host` must be lowercase and
/// without port, as visits store it.
pub fn find_by_host(host: &str) -> Option<&'static Source> {
    SOURCES.iter().find(|source| source.matches_host(host))
}

/// The source a `utm_source` value names: its canonical name, one of its
/// tags, or one of its hosts (`google.com`, `m.facebook.com`). Case does not
/// matter.
pub fn find_by_tag(tag: &str) -> Option<&'static Source> {
    let tag = tag.trim();
    SOURCES
        .iter()
        .find(|source| source.name.eq_ignore_ascii_case(tag) || source.tags().any(|t| t.eq_ignore_ascii_case(tag)))
        .or_else(|| find_by_host(&tag.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use HostPattern::AnyTld;

    #[test]
    fn every_listed_domain_resolves_to_its_own_entry() {
        for source in SOURCES {
            for pattern in source.hosts() {
                if let HostPattern::Domain(domain) = pattern {
                    let found = find_by_host(domain).map(|s| s.name);
                    assert_eq!(found, Some(source.name), "{domain} is shadowed by an earlier entry");
                }
            }
        }
    }

    #[test]
    fn names_and_tags_name_one_source_each() {
        let mut seen = std::collections::HashSet::new();
        for source in SOURCES {
            for tag in std::iter::once(source.name).chain(source.tags()) {
                let tag = &tag;
                assert_eq!(*tag, tag.to_ascii_lowercase(), "{tag} must be lowercase");
                assert!(seen.insert(*tag), "{tag} names two sources");
            }
        }
    }

    #[test]
    fn any_tld_needs_a_suffix_shaped_tail() {
        let google = AnyTld("google");
        for host in ["google.com", "www.google.ru", "google.co.uk", "images.google.com.br", "google.de"] {
            assert!(google.matches(host), "{host}");
        }
        for host in ["google", "google.example.com", "notgoogle.com", "google.co.u1", "mygoogle.co.uk"] {
            assert!(!google.matches(host), "{host}");
        }
    }

    #[test]
    fn find_by_tag_accepts_names_tags_and_hosts() {
        assert_eq!(find_by_tag("Yandex").map(|s| s.name), Some("yandex"));
        assert_eq!(find_by_tag("ig").map(|s| s.name), Some("instagram"));
        assert_eq!(find_by_tag("www.Facebook.com").map(|s| s.name), Some("facebook"));
        assert!(find_by_tag("partner").is_none());
    }
}
