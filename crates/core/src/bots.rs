//! Known crawlers, by User-Agent. Crawlers never take a pool number (they
//! would exhaust it and a number a crawler "sees" is never dialled) and the
//! page is never rewritten for them (SEO: the indexed number is the real one).
//!
//! The list is written here from the crawlers' own published User-Agent
//! tokens; it is a substring match on the lowercased User-Agent. Generic
//! words (`bot`, `crawler`, `spider`) catch most of the long tail.

/// Lowercase substrings that mark a User-Agent as a crawler or a headless
/// fetcher, separated by single spaces (one string rather than a slice: the
/// slice's pointers and lengths do not compress in the browser bundle).
/// Headless Chromium is deliberately absent: end-to-end tests drive it.
/// Names that contain a generic word (`googlebot`, `baiduspider`…) are left
/// to it: the collector runs this on every visit, and each marker is a scan
/// of the User-Agent. [`NAMED_CRAWLERS`] in the tests keeps them checked.
pub const BOT_MARKERS: &str = "\
google-inspectiontool mediapartners-google apis-google feedfetcher-google \
google-read-aloud yandexdirect yandexmetrika yandeximages bingpreview \
facebookexternalhit whatsapp pingdom slurp bot crawler crawling spider";

/// Whether `user_agent` belongs to a known crawler. An empty User-Agent is
/// treated as a bot: every browser sends one.
pub fn is_bot(user_agent: &str) -> bool {
    let ua = user_agent.trim().to_ascii_lowercase();
    ua.is_empty() || BOT_MARKERS.split(' ').any(|marker| contains(&ua, marker))
}

/// `str::contains` on the collector, which runs this on every visit and
/// where std's searcher (vectorised for short needles) is the fastest here.
#[cfg(not(target_arch = "wasm32"))]
fn contains(haystack: &str, needle: &str) -> bool {
    haystack.contains(needle)
}

/// In the browser, a byte-window search: std's two-way searcher is about
/// 600 B of wasm that nothing else in the bundle needs, and the browser
/// runs this once per page view. Comparing the first byte before the window
/// keeps it cheap.
#[cfg(target_arch = "wasm32")]
fn contains(haystack: &str, needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack.as_bytes().windows(needle.len()).any(|w| w[0] == needle[0] && w == needle)
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
        for marker in BOT_MARKERS.split(' ') {
            assert!(is_bot(&format!("Something {}/1.0", marker.to_ascii_uppercase())), "{marker}");
        }
        assert!(is_bot("   "));
        let browsers = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 YaBrowser/24.10",
        ];
        for ua in browsers {
            assert!(!is_bot(ua), "{ua}");
        }
    }

    #[test]
    fn markers_are_lowercase_words() {
        for marker in BOT_MARKERS.split(' ') {
            assert!(!marker.is_empty(), "double space in BOT_MARKERS");
            assert_eq!(marker, marker.to_ascii_lowercase());
        }
    }
}
