//! Who sent a request, and to which origin, as far as the collector can
//! trust the headers.
//!
//! Directly on the network, the peer's address is the client and the address
//! the connection arrived at is the collector's own origin; no header is
//! believed, not even `Host` (a page of any name that resolves to the
//! collector, DNS rebinding included, would otherwise be "same origin").
//!
//! Behind a reverse proxy (`server.trust_forwarded_for`), the client is the
//! address the proxy itself appended: the rightmost entry of
//! `X-Forwarded-For`, or of `Forwarded: for=`. Entries to its left were
//! written by whoever sent the request, and a client that writes its own
//! would otherwise pick its rate limit bucket and its pool share. The page's
//! origin is the forwarded host and scheme the proxy passes on.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::{self, HeaderMap};

use crate::config::ForwardedHeader;

/// The address a connection was accepted on, recorded once per connection
/// (see `server.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddr(pub SocketAddr);

/// The client's address: with `trusted`, the one the proxy appended to that
/// header (the peer, which is the proxy, when it appended none the collector
/// can read); otherwise the peer.
pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>, trusted: Option<ForwardedHeader>) -> Option<IpAddr> {
    let forwarded = match trusted {
        Some(ForwardedHeader::XForwardedFor) => last_list_entry(headers, "x-forwarded-for").and_then(|e| node(&e)),
        Some(ForwardedHeader::Forwarded) => last_forwarded_param(headers, "for").and_then(|e| node(&e)),
        None => None,
    };
    forwarded.or_else(|| peer.map(|p| p.ip()))
}

/// Whether `origin` is the collector's own: with `trusted`, the scheme and
/// host the proxy forwarded (else `Host` and http); otherwise the address
/// the connection arrived at, and `localhost` on a loopback address.
pub fn is_own_origin(
    origin: &str,
    headers: &HeaderMap,
    local: Option<SocketAddr>,
    trusted: Option<ForwardedHeader>,
) -> bool {
    let Ok(origin) = crate::config::normalise_origin(origin) else { return false };
    let same = |scheme: &str, host: &str| {
        crate::config::normalise_origin(&format!("{scheme}://{host}")).is_ok_and(|own| own == origin)
    };
    match trusted {
        Some(kind) => {
            let (proto, host) = match kind {
                ForwardedHeader::XForwardedFor => {
                    (last_list_entry(headers, "x-forwarded-proto"), last_list_entry(headers, "x-forwarded-host"))
                }
                ForwardedHeader::Forwarded => {
                    (last_forwarded_param(headers, "proto"), last_forwarded_param(headers, "host"))
                }
            };
            let host = host.or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_owned));
            host.is_some_and(|host| same(proto.as_deref().unwrap_or("http"), &host))
        }
        None => local.is_some_and(|local| {
            same("http", &local.to_string())
                || (local.ip().is_loopback() && same("http", &format!("localhost:{}", local.port())))
        }),
    }
}

/// The last comma-separated entry of the last `name` header, trimmed.
fn last_list_entry(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get_all(name).last()?.to_str().ok()?;
    let entry = value.rsplit(',').next()?.trim();
    (!entry.is_empty()).then(|| entry.to_owned())
}

/// `param` of the last element of the last `Forwarded` header (RFC 7239),
/// unquoted.
fn last_forwarded_param(headers: &HeaderMap, param: &str) -> Option<String> {
    let value = headers.get_all(header::FORWARDED).last()?.to_str().ok()?;
    let element = split_unquoted(value, ',').pop()?;
    split_unquoted(element, ';').into_iter().find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim().eq_ignore_ascii_case(param).then(|| unquote(value.trim()))
    })
}

/// `text` split at `sep` where it is not inside a quoted string.
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
            }
            out
        }
        None => value.to_owned(),
    }
}

/// A forwarded node: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`. `unknown` and obfuscated
/// identifiers (`_hidden`) name no address.
fn node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const PEER: Option<SocketAddr> = Some(SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)), 5555));
    const XFF: Option<ForwardedHeader> = Some(ForwardedHeader::XForwardedFor);
    const FWD: Option<ForwardedHeader> = Some(ForwardedHeader::Forwarded);

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn the_proxy_appended_entry_is_the_client() {
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7")]);
        assert_eq!(client_ip(&h, PEER, XFF), ip("198.51.100.7"));
        // Untrusted, the header is ignored.
        assert_eq!(client_ip(&h, PEER, None), ip("10.0.0.2"));
        // Several header lines are one list, in order.
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "203.0.113.5, [2001:db8::7]:443")]);
        assert_eq!(client_ip(&h, PEER, XFF), ip("2001:db8::7"));
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7:8443")]);
        assert_eq!(client_ip(&h, PEER, XFF), ip("198.51.100.7"));
        // Nothing readable appended: the proxy itself.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, unknown")]);
        assert_eq!(client_ip(&h, PEER, XFF), ip("10.0.0.2"));
        assert_eq!(client_ip(&headers(&[]), PEER, XFF), ip("10.0.0.2"));
        // The other header is not the one the proxy writes.
        let h = headers(&[("forwarded", "for=198.51.100.7")]);
        assert_eq!(client_ip(&h, PEER, XFF), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_for_takes_the_last_element() {
        let h = headers(&[("forwarded", r#"for=6.6.6.6;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.2"#)]);
        assert_eq!(client_ip(&h, PEER, FWD), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=6.6.6.6"), ("forwarded", "For=198.51.100.7")]);
        assert_eq!(client_ip(&h, PEER, FWD), ip("198.51.100.7"));
        // A comma inside a quoted value does not split the element.
        let h = headers(&[("forwarded", r#"for=198.51.100.7;host="a,b""#)]);
        assert_eq!(client_ip(&h, PEER, FWD), ip("198.51.100.7"));
        let h = headers(&[("forwarded", "for=198.51.100.7, for=_hidden")]);
        assert_eq!(client_ip(&h, PEER, FWD), ip("10.0.0.2"));
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(client_ip(&h, PEER, FWD), ip("10.0.0.2"));
    }

    #[test]
    fn own_origin_without_trust_is_the_address_connected_to() {
        let local: Option<SocketAddr> = Some("127.0.0.1:8080".parse().unwrap());
        let h = headers(&[("host", "evil.example:8080"), ("x-forwarded-host", "evil.example")]);
        assert!(is_own_origin("http://127.0.0.1:8080", &h, local, None));
        assert!(is_own_origin("http://localhost:8080", &h, local, None));
        assert!(!is_own_origin("http://evil.example:8080", &h, local, None));
        assert!(!is_own_origin("http://evil.example", &h, local, None));
        assert!(!is_own_origin("https://127.0.0.1:8080", &h, local, None));
        let public: Option<SocketAddr> = Some("[2001:db8::5]:80".parse().unwrap());
        assert!(is_own_origin("http://[2001:db8::5]", &h, public, None));
        assert!(!is_own_origin("http://localhost", &h, public, None));
    }

    #[test]
    fn own_origin_behind_a_proxy_is_the_forwarded_host() {
        let local: Option<SocketAddr> = Some("127.0.0.1:8080".parse().unwrap());
        let h = headers(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "calls.example"),
            ("x-forwarded-proto", "https"),
        ]);
        assert!(is_own_origin("https://calls.example", &h, local, XFF));
        assert!(!is_own_origin("http://calls.example", &h, local, XFF));
        assert!(!is_own_origin("http://127.0.0.1:8080", &h, local, XFF));
        // Without a forwarded host, the Host the proxy passed on.
        let h = headers(&[("host", "calls.example")]);
        assert!(is_own_origin("http://calls.example", &h, local, XFF));
        let h = headers(&[("host", "127.0.0.1:8080"), ("forwarded", "for=1.2.3.4;host=calls.example;proto=https")]);
        assert!(is_own_origin("https://calls.example", &h, local, FWD));
        assert!(!is_own_origin("https://calls.example", &h, local, XFF));
    }
}
