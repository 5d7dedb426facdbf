//! User-Agents that never take a pool number: crawlers, headless browsers
//! and HTTP client libraries. A crawler would exhaust the pool with numbers
//! nobody dials (and the indexed page must keep the real number); a headless
//! browser or a script is a test run, a monitor or someone draining the pool,
//! never a person who reads the number and calls it.
//!
//! The collector decides this for every visit; the browser bundle does not
//! link this module (the `bots` feature is off there), so the list costs the
//! bundle nothing and can grow. The markers are written here from each
//! tool's own published User-Agent token; matching is a case-insensitive
//! substring search of the User-Agent for any of them, in one pass.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

/// Search engine and social crawlers, link previews and uptime monitors.
/// Generic words (`bot`, `crawler`, `spider`) catch most of the long tail;
/// names that contain one (`googlebot`, `baiduspider`…) are left to it.
pub const CRAWLER_MARKERS: &[&str] = &[
    "google-inspectiontool",
    "mediapartners-google",
    "apis-google",
    "feedfetcher-google",
    "google-read-aloud",
    "yandexdirect",
    "yandexmetrika",
    "yandeximages",
    "bingpreview",
    "facebookexternalhit",
    "whatsapp",
    "pingdom",
    "slurp",
    "bot",
    "crawler",
    "crawling",
    "spider",
];

/// Browsers driven by a program: headless Chromium (Puppeteer and
/// Playwright included, whose default User-Agent is Chromium's), Lighthouse
/// and PageSpeed, PhantomJS, SlimerJS, Cypress.
pub const HEADLESS_MARKERS: &[&str] = &["headlesschrome", "lighthouse", "phantomjs", "slimerjs", "cypress/"];

/// HTTP client libraries and command-line tools, as their default
/// User-Agents name them.
pub const HTTP_CLIENT_MARKERS: &[&str] = &[
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "scrapy",
    "go-http-client",
    "okhttp",
    "java/",
    "apache-httpclient",
    "jakarta commons-httpclient",
    "libwww-perl",
    "lwp::simple",
    "node-fetch",
    "undici",
    "axios/",
    "postmanruntime",
    "insomnia/",
    "httpie/",
    "guzzlehttp",
    "dalvik/",
    "windowspowershell",
    "libcurl",
    "httpclient",
];

fn matcher() -> &'static AhoCorasick {
    static MATCHER: OnceLock<AhoCorasick> = OnceLock::new();
    MATCHER.get_or_init(|| {
        let markers = CRAWLER_MARKERS.iter().chain(HEADLESS_MARKERS).chain(HTTP_CLIENT_MARKERS);
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(markers)
            .expect("the marker lists are small, fixed strings")
    })
}

/// Whether `user_agent` is a crawler, a headless browser or an HTTP client.
/// An empty User-Agent counts as one: every browser sends one.
pub fn is_bot(user_agent: &str) -> bool {
    let ua = user_agent.trim();
    ua.is_empty() || matcher().is_match(ua)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Crawlers' own User-Agent tokens that the generic words catch.
    const NAMED_CRAWLERS: &[&str] = &[
        "Googlebot",
        "AdsBot-Google",
        "YandexBot",
        "YandexMobileBot",
        "YandexAccessibilityBot",
        "bingbot",
        "adidxbot",
        "msnbot",
        "DuckDuckBot",
        "Baiduspider",
        "Applebot",
        "PetalBot",
        "Mail.RU_Bot",
        "Facebot",
        "Twitterbot",
        "LinkedInBot",
        "TelegramBot",
        "Slackbot",
        "Discordbot",
        "AhrefsBot",
        "SemrushBot",
        "MJ12bot",
        "DotBot",
        "GPTBot",
        "CCBot",
        "ClaudeBot",
        "Bytespider",
        "UptimeRobot",
    ];

    #[test]
    fn named_crawlers_are_bots_and_browsers_are_not() {
        for name in NAMED_CRAWLERS {
            assert!(is_bot(&format!("Mozilla/5.0 (compatible; {name}/2.1; +https://example.com/bot)")), "{name}");
            assert!(is_bot(name), "{name}");
        }
        let markers = CRAWLER_MARKERS.iter().chain(HEADLESS_MARKERS).chain(HTTP_CLIENT_MARKERS);
        for marker in markers {
            assert!(is_bot(&format!("Something {}1.0", marker.to_ascii_uppercase())), "{marker}");
        }
        assert!(is_bot("   "));
        let browsers = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 YaBrowser/24.10",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
            "Opera/9.80 (Windows NT 6.1; WOW64) Presto/2.12.388 Version/12.18",
        ];
        for ua in browsers {
            assert!(!is_bot(ua), "{ua}");
        }
    }

    #[test]
    fn markers_are_lowercase_and_distinct() {
        let mut all: Vec<&str> =
            CRAWLER_MARKERS.iter().chain(HEADLESS_MARKERS).chain(HTTP_CLIENT_MARKERS).copied().collect();
        for marker in &all {
            assert!(!marker.trim().is_empty());
            assert_eq!(*marker, marker.to_ascii_lowercase());
        }
        all.sort_unstable();
        let len = all.len();
        all.dedup();
        assert_eq!(all.len(), len, "a marker is listed twice");
    }
}
