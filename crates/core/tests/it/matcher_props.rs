//! Properties of the matcher over generated writings of generated numbers.

use proptest::prelude::*;
use ringsource_core::matcher::Matcher;
use ringsource_core::phone::PhoneNumber;

use crate::phone_gen;

/// The digit strings a number may be written as, each paired with whether it
/// opens with '+' and the same writing of another number of that country.
fn writings(number: &PhoneNumber, other: &PhoneNumber) -> Vec<(bool, String, String)> {
    let cc = number.country_code();
    let (a, b) = (number.national_number(), other.national_number());
    let mut out = vec![
        (true, format!("{cc}{a}"), format!("{cc}{b}")),
        (false, format!("{cc}{a}"), format!("{cc}{b}")),
        (false, format!("00{cc}{a}"), format!("00{cc}{b}")),
    ];
    let national_trunks: &[&str] = match cc {
        "7" => &["8"],
        "44" | "49" | "380" => &["0"],
        "375" => &["80", "0"],
        _ => &[],
    };
    for trunk in national_trunks {
        out.push((false, format!("{trunk}{a}"), format!("{trunk}{b}")));
    }
    if national_trunks.contains(&"0") && cc != "375" {
        out.push((true, format!("{cc}0{a}"), format!("{cc}0{b}")));
    }
    if a.len() >= 7 {
        out.push((false, a.to_owned(), b.to_owned()));
    }
    out
}

const SEPARATORS: &[&str] =
    &["", "", "", " ", " ", "-", " (", ") ", ".", "\u{a0}", "\u{202f}", "–", "\n    ", "/", " - ", "(", ")"];

/// `digits` with `separators` cycled between them, after an optional '+'.
fn render(plus: bool, digits: &str, separators: &[&str]) -> String {
    let mut text = String::from(if plus { "+" } else { "" });
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 {
            text.push_str(separators[index % separators.len()]);
        }
        text.push(digit);
    }
    text
}

/// Text around a number that cannot change whether it is one: no digits, no '+'.
fn surrounding() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!['a', 'Я', ' ', ',', ':', '(', ')', '-', '\u{a0}', '!', '\n', '₽']),
        0..8,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Cuts `text` into segments at the given fractions of its length.
fn split(text: &str, cuts: &[u16]) -> Vec<String> {
    let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    let mut at: Vec<usize> = cuts.iter().map(|&c| boundaries[usize::from(c) * (boundaries.len() - 1) / 1000]).collect();
    at.sort_unstable();
    at.dedup();
    let mut segments = Vec::new();
    let mut from = 0;
    for cut in at.into_iter().chain([text.len()]) {
        segments.push(text[from..cut].to_owned());
        from = cut;
    }
    segments
}

fn mask(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect()
}

fn joined(segments: &[String], replaced: &[Option<String>]) -> String {
    segments.iter().zip(replaced).map(|(s, r)| r.as_deref().unwrap_or(s)).collect()
}

proptest! {
    /// A writing of the original, decorated and split anywhere, is replaced
    /// exactly once, digit for digit, with every other character in place.
    #[test]
    fn replacement_keeps_every_other_character(
        (_, original, tracking) in phone_gen::original_and_tracking(),
        form in any::<prop::sample::Index>(),
        separators in prop::collection::vec(prop::sample::select(SEPARATORS), 1..6),
        before in surrounding(),
        after in surrounding(),
        cuts in prop::collection::vec(0u16..=1000, 0..5),
    ) {
        let forms = writings(&original, &tracking);
        let (plus, digits, expected_digits) = form.get(&forms);
        let text = format!("{before}{}{after}", render(*plus, digits, &separators));
        let segments = split(&text, &cuts);
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();

        let matcher = Matcher::new(std::slice::from_ref(&original));
        let result = matcher.replace(&refs, &tracking);
        let output = joined(&segments, &result.segments);
        prop_assert_eq!(result.count, 1, "{:?}", text);
        // The match's last digit is the number's: the scan that decides which
        // text runs are read at all reports that place.
        let last_digit = before.encode_utf16().count() + render(*plus, digits, &separators).encode_utf16().count();
        let ends = matcher.possible_ends(&text);
        prop_assert!(ends.iter().any(|end| end.at == last_digit && !end.digit_follows), "{:?}: {:?}", text, ends);
        prop_assert_eq!(mask(&output), mask(&text));
        let output_digits: String = output.chars().filter(char::is_ascii_digit).collect();
        prop_assert_eq!(&output_digits, expected_digits);
    }

    /// With arbitrary text around the number (digits included) matches may or
    /// may not happen, but the text outside the digits never changes.
    #[test]
    fn arbitrary_context_never_moves_non_digits(
        (_, original, tracking) in phone_gen::original_and_tracking(),
        form in any::<prop::sample::Index>(),
        separators in prop::collection::vec(prop::sample::select(SEPARATORS), 1..6),
        before in "[0-9 +()\\-.a-zя]{0,8}",
        after in "[0-9 +()\\-.a-zя]{0,8}",
        cuts in prop::collection::vec(0u16..=1000, 0..5),
    ) {
        let forms = writings(&original, &tracking);
        let (plus, digits, _) = form.get(&forms);
        let text = format!("{before}{}{after}", render(*plus, digits, &separators));
        let segments = split(&text, &cuts);
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();

        let matcher = Matcher::new(std::slice::from_ref(&original));
        let result = matcher.replace(&refs, &tracking);
        prop_assert_eq!(result.segments.len(), segments.len());
        if result.count > 0 {
            prop_assert!(!matcher.possible_ends(&text).is_empty(), "{:?}", text);
        }
        prop_assert_eq!(mask(&joined(&segments, &result.segments)), mask(&text));
    }

    /// A digit glued to either end makes the writing part of a longer run:
    /// nothing matches and nothing changes.
    #[test]
    fn never_matches_inside_a_longer_digit_run(
        (_, original, tracking) in phone_gen::original_and_tracking(),
        form in any::<prop::sample::Index>(),
        separators in prop::collection::vec(prop::sample::select(SEPARATORS), 1..6),
        extra in 0u8..10,
        glue_before in any::<bool>(),
        before in surrounding(),
        after in surrounding(),
        cuts in prop::collection::vec(0u16..=1000, 0..5),
    ) {
        let extra = char::from(b'0' + extra);
        let forms = writings(&original, &tracking);
        let (plus, digits, _) = form.get(&forms);
        let glued = if glue_before { format!("{extra}{digits}") } else { format!("{digits}{extra}") };
        // The extra digit can turn one writing into another: "1" before US
        // "555…" is the country code, "8" before Belarusian "017…" the long
        // trunk prefix. Those longer runs are numbers, not distractors.
        prop_assume!(!forms.iter().any(|(_, other, _)| *other == glued));
        let mut rendered = render(*plus, digits, &separators);
        if glue_before {
            rendered.insert(usize::from(*plus), extra);
        } else {
            rendered.push(extra);
        }
        let text = format!("{before}{rendered}{after}");
        let segments = split(&text, &cuts);
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();

        let result = Matcher::new(std::slice::from_ref(&original)).replace(&refs, &tracking);
        prop_assert_eq!(result.count, 0, "{:?}", text);
        prop_assert!(result.segments.iter().all(Option::is_none));
    }
}
