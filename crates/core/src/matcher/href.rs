//! Rewriting the number inside tel:, callto: and sms: link targets.

use super::Replacement;

const SCHEMES: [&str; 3] = ["tel", "callto", "sms"];

/// Splits `href` into scheme prefix, number and tail (";ext=…", "?body=…"),
/// has `replace` rewrite the number, and reassembles it. The number may be
/// percent-encoded ("tel:+7%20495%20123-45-67"); it is then decoded for
/// matching and encoded again.
pub(super) fn rewrite(href: &str, replace: impl FnOnce(&str) -> Replacement) -> Option<String> {
    // URLs are trimmed of ASCII whitespace only (the URL standard's rule).
    let body = href.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let colon = body.find(':')?;
    let scheme = &body[..colon];
    if !SCHEMES.iter().any(|known| scheme.eq_ignore_ascii_case(known)) {
        return None;
    }
    let mut number_at = href.len() - body.len() + colon + 1;
    // Skype writes "callto://+7…".
    if href[number_at..].starts_with("//") {
        number_at += 2;
    }
    let (head, rest) = href.split_at(number_at);
    let tail_at = rest.bytes().position(|byte| byte == b'?' || byte == b';').unwrap_or(rest.len());
    let (number, tail) = rest.split_at(tail_at);
    let encoded = number.contains('%');
    let decoded = if encoded { percent_decode(number)? } else { number.to_owned() };
    let replaced = replace(&decoded);
    if replaced.count == 0 {
        return None;
    }
    let new_number = replaced.segments.into_iter().next().flatten().unwrap_or(decoded);
    let mut out = String::with_capacity(href.len() + 8);
    out.push_str(head);
    if encoded {
        percent_encode(&new_number, &mut out);
    } else {
        out.push_str(&new_number);
    }
    out.push_str(tail);
    Some(out)
}

/// `None` for a malformed escape or bytes that are not UTF-8: such an href is
/// left alone rather than guessed at.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = |at: usize| char::from(*bytes.get(index + at)?).to_digit(16);
            // At most 0xff: two hex digits.
            out.push((hex(1)? << 4 | hex(2)?) as u8);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Byte by byte: every byte of a non-ASCII character is outside the set kept
/// as it is, so each is escaped, as encoding the whole character would.
fn percent_encode(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"+-._~()/,*".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_coding_round_trips_separators() {
        let decoded = percent_decode("+7%20(495)%C2%A0123").unwrap();
        assert_eq!(decoded, "+7 (495)\u{a0}123");
        let mut encoded = String::new();
        percent_encode(&decoded, &mut encoded);
        assert_eq!(encoded, "+7%20(495)%C2%A0123");
        assert_eq!(percent_decode("%2"), None);
        assert_eq!(percent_decode("%zz"), None);
        // Exactly two hex digits: no sign, as a number parser would take.
        assert_eq!(percent_decode("%+f"), None);
    }
}
