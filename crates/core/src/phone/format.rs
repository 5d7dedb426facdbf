//! Clean, conventional renderings of numbers for the countries whose grouping
//! is known; other countries get the bare national significant number.

/// How a national significant number splits into an area code and subscriber
/// groups. The last subscriber group takes whatever digits remain, so a number
/// of unusual length is still written completely.
struct Layout {
    area: usize,
    groups: &'static [usize],
    separator: char,
    /// Between area code and subscriber number in the international form.
    after_area: char,
}

fn layout(country_code: &str, nsn: &str) -> Option<Layout> {
    let layout = match country_code {
        "7" => Layout { area: 3, groups: &[3, 2, 2], separator: '-', after_area: ' ' },
        // NANP style: "+1 555-123-4567".
        "1" => Layout { area: 3, groups: &[3, 4], separator: '-', after_area: '-' },
        "375" => Layout { area: 2, groups: &[3, 2, 2], separator: '-', after_area: ' ' },
        "380" => Layout { area: 2, groups: &[3, 2, 2], separator: ' ', after_area: ' ' },
        "44" => uk_layout(nsn),
        "49" => Layout { area: german_area_len(nsn), groups: &[], separator: ' ', after_area: ' ' },
        _ => return None,
    };
    Some(layout)
}

/// Ofcom's usual groupings: London and other 02x areas "20 7946 0958", large
/// cities "121 496 0000", other geographic and mobile "1632 960123" /
/// "7700 900123", non-geographic "800 123 4567". Short numbers: "800 1111".
fn uk_layout(nsn: &str) -> Layout {
    let bytes = nsn.as_bytes();
    let (area, groups): (usize, &'static [usize]) = match bytes {
        _ if bytes.len() != 10 => (3, &[]),
        [b'2', ..] => (2, &[4, 4]),
        [b'1', b'1', ..] | [b'1', _, b'1', ..] => (3, &[3, 4]),
        [b'1' | b'7', ..] => (4, &[6]),
        [b'3' | b'8' | b'9', ..] => (3, &[3, 4]),
        _ => (4, &[6]),
    };
    Layout { area, groups, separator: ' ', after_area: ' ' }
}

/// German area codes run from 2 to 5 digits and only a full table tells them
/// apart; the four two-digit metropolitan codes are special-cased and the rest
/// are written with three, which reads naturally for mobiles (15x-17x) and the
/// larger cities.
fn german_area_len(nsn: &str) -> usize {
    match nsn.get(..2) {
        Some("30" | "40" | "69" | "89") => 2,
        _ => 3,
    }
}

fn push_subscriber(out: &mut String, digits: &str, layout: &Layout) {
    let mut rest = digits;
    let mut groups = layout.groups.iter().peekable();
    let mut first = true;
    while !rest.is_empty() {
        let take = match groups.next() {
            Some(&len) if groups.peek().is_some() => len.min(rest.len()),
            _ => rest.len(),
        };
        if !first {
            out.push(layout.separator);
        }
        out.push_str(&rest[..take]);
        rest = &rest[take..];
        first = false;
    }
}

pub(super) fn international(country_code: &str, nsn: &str) -> String {
    let mut out = String::with_capacity(country_code.len() + nsn.len() + 6);
    out.push('+');
    out.push_str(country_code);
    out.push(' ');
    match layout(country_code, nsn) {
        Some(layout) => {
            let (area, subscriber) = nsn.split_at(layout.area.min(nsn.len()));
            out.push_str(area);
            if !subscriber.is_empty() {
                out.push(layout.after_area);
                push_subscriber(&mut out, subscriber, &layout);
            }
        }
        None => out.push_str(nsn),
    }
    out
}

/// The domestic writing; countries without known trunk rules have none, so
/// they get the international form, which is always dialable.
pub(super) fn national(country_code: &str, nsn: &str) -> String {
    let Some(layout) = layout(country_code, nsn) else {
        return international(country_code, nsn);
    };
    let (area, subscriber) = nsn.split_at(layout.area.min(nsn.len()));
    let mut out = String::with_capacity(nsn.len() + 8);
    match country_code {
        "7" => {
            out.push_str("8 (");
            out.push_str(area);
            out.push(')');
        }
        "1" => {
            out.push('(');
            out.push_str(area);
            out.push(')');
        }
        "375" => {
            out.push_str("8 0");
            out.push_str(area);
        }
        _ => {
            out.push('0');
            out.push_str(area);
        }
    }
    if !subscriber.is_empty() {
        out.push(' ');
        push_subscriber(&mut out, subscriber, &layout);
    }
    out
}
