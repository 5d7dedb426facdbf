//! Finds a site's original phone numbers in page text and rewrites them to a
//! tracking number, keeping the page's own writing of the number.
//!
//! # What counts as a match
//!
//! The text is read as digit groups (runs of adjacent digits) joined by
//! separators. A match is a sequence of whole groups whose digits spell one of
//! the written forms of an original (with or without '+', country code, "00",
//! trunk prefix, or the "+44 (0)20" country-plus-trunk notation). The rules
//! that keep it from firing on other numbers:
//!
//! 1. It starts at the first digit of a group and ends at the last digit of a
//!    group: digits adjacent to it make it part of a longer run
//!    ("749512345678", ИНН "774951234567").
//! 2. A group joined to it by punctuation alone ("1-8 495…", "…45-67-89",
//!    "…45-67.5") makes it part of one longer token, so it is not a match.
//!    Blanks are different: "12.03.2024 8 495 123-45-67" and two numbers
//!    separated by a space are common, so a match may be preceded or followed
//!    by other digits across a blank…
//! 3. …but only when its own start is self-evident. After other digits it
//!    may not be a bare national number (nothing shows where it starts: in
//!    "17 495 123 45 67" the "17" may be its missing prefix); it may not sit
//!    inside a '+' number that could still be one ≤15-digit number (a '+'
//!    announces one international number, so "+44 8 495 123-45-67" is a
//!    malformed British number, not a Moscow one after "+44"); and no longer
//!    form of the same original may end where it ends (in
//!    "500 7 495 123 45 67" the "00 7 …" form has a digit glued on, so
//!    "7 495 …" is not a match).
//!
//! Trailing digits across a blank are left alone ("8 495 123-45-67 89" still
//! matches): the number is complete and a following token is not evidence
//! against it.

mod href;
mod scan;

use crate::phone::{PhoneNumber, dialling};
use scan::{Digits, Joint, Pos};

/// The longest number a '+' may introduce (E.164).
const MAX_INTERNATIONAL_DIGITS: usize = 15;

/// Shorter national significant numbers are not matched without a prefix:
/// bare, they are too easily some other figure.
const MIN_BARE_NATIONAL_DIGITS: usize = 7;

/// Finds the written forms of a set of original numbers.
#[derive(Debug, Clone)]
pub struct Matcher {
    originals: Vec<PhoneNumber>,
    /// Longest first, so that at one start position the fullest form wins.
    patterns: Vec<Pattern>,
}

/// The outcome of [`Matcher::replace`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replacement {
    /// One entry per input segment; `None` where the segment is unchanged.
    pub segments: Vec<Option<String>>,
    /// Occurrences replaced.
    pub count: usize,
}

/// A place in a text where a match may end: see [`Matcher::possible_ends`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PossibleEnd {
    /// Just past the last digit, in UTF-16 code units (as the DOM counts text).
    pub at: usize,
    /// A digit follows directly. A match can then end here only where the
    /// text is cut between the two digits, as at a text node's end.
    pub digit_follows: bool,
}

/// How a matched number was written, which decides how its replacement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// [00] country code [trunk 0] national number.
    International { idd: bool, trunk: bool },
    /// [trunk prefix] national number; the trunk may be empty.
    National { trunk: &'static str },
}

#[derive(Debug, Clone)]
struct Pattern {
    digits: Vec<u8>,
    /// Index into `Matcher::originals`.
    original: usize,
    form: Form,
}

/// Where the replacement text goes, which decides the fallback writing.
#[derive(Clone, Copy)]
enum Target {
    Text,
    Href,
}

struct Found {
    pattern: usize,
    first_group: usize,
    last_group: usize,
}

struct Edit {
    segment: usize,
    start: usize,
    end: usize,
    text: String,
}

impl Matcher {
    pub fn new(originals: &[PhoneNumber]) -> Self {
        // A repeated original adds no pattern (its digits are there already),
        // so the list is not deduplicated.
        let originals = originals.to_vec();
        let mut patterns: Vec<Pattern> = Vec::new();
        for (index, original) in originals.iter().enumerate() {
            written_forms(original, &mut |form, digits| {
                if !patterns.iter().any(|p| p.digits == digits) {
                    // Kept longest first as they come (a stable insertion):
                    // a handful of patterns needs no sort routine in the bundle.
                    let at = patterns.iter().position(|p| p.digits.len() < digits.len()).unwrap_or(patterns.len());
                    patterns.insert(at, Pattern { digits, original: index, form });
                }
            });
        }
        Matcher { originals, patterns }
    }

    /// The fewest digits any written form of an original has: a run of text
    /// with fewer cannot hold one (see [`Matcher::may_contain`]).
    pub fn min_digits(&self) -> usize {
        // Longest first: the last is the shortest.
        self.patterns.last().map_or(usize::MAX, |p| p.digits.len())
    }

    /// Whether `segments` hold enough digits for any original to be in them.
    /// Never allocates: callers walking many text runs can use it to skip
    /// building segment lists. ([`Matcher::replace`] does not ask it: it finds
    /// no match in such runs anyway, and the browser hands it only the runs
    /// around a [`Matcher::possible_ends`] place.)
    pub fn may_contain(&self, segments: &[&str]) -> bool {
        let mut digits = 0;
        for segment in segments {
            digits += segment.bytes().filter(u8::is_ascii_digit).count();
            if digits >= self.min_digits() {
                return true;
            }
        }
        false
    }

    /// Where in `text` a written form of an original may end: a superset, for
    /// finding the few text runs worth handing to [`Matcher::replace`] without
    /// reading every run. Every form ends with the national number, so this
    /// reports each place where its digits follow one another with no other
    /// digit between them. Whatever `replace` finds in segments that are a
    /// stretch of `text` ends at one of these places.
    pub fn possible_ends(&self, text: &str) -> Vec<PossibleEnd> {
        let mut ends: Vec<PossibleEnd> = Vec::new();
        let mut digits = Vec::new();
        let mut at = 0;
        for &byte in text.as_bytes() {
            if byte.is_ascii_digit() {
                if let Some(end) = ends.last_mut().filter(|end| end.at == at) {
                    end.digit_follows = true;
                }
                digits.push(byte);
                at += 1;
                if self.originals.iter().any(|original| digits.ends_with(original.national_number().as_bytes())) {
                    ends.push(PossibleEnd { at, digit_follows: false });
                }
            } else if byte & 0xc0 != 0x80 {
                // A UTF-8 lead byte starts one UTF-16 unit, or two from F0 on.
                at += 1 + usize::from(byte >= 0xf0);
            }
        }
        ends
    }

    /// `segments` are consecutive text runs (e.g. the text nodes of one inline
    /// run in the DOM: "<span>+7 (495)</span> <b>123-45-67</b>" →
    /// ["+7 (495)", " ", "123-45-67"]). A number may span segments.
    pub fn replace(&self, segments: &[&str], replacement: &PhoneNumber) -> Replacement {
        self.replace_for(segments, replacement, Target::Text)
    }

    /// For tel:, callto: and sms: hrefs (case-insensitive scheme; keeps any
    /// ?body= / ;ext= tail). Returns None when the href is not one of those
    /// schemes or holds none of the originals.
    pub fn rewrite_href(&self, href: &str, replacement: &PhoneNumber) -> Option<String> {
        href::rewrite(href, |number| self.replace_for(&[number], replacement, Target::Href))
    }

    fn replace_for(&self, segments: &[&str], replacement: &PhoneNumber, target: Target) -> Replacement {
        // Filled without cloning: `vec![None; n]` brings `Option<String>`'s clone along.
        let mut result = Replacement::default();
        result.segments.resize_with(segments.len(), || None);
        let scanned = Digits::scan(segments);
        let mut edits = Vec::new();
        let mut index = 0;
        while index < scanned.groups.len() {
            match self.find_at(&scanned, index) {
                Some(found) => {
                    self.edit(segments, &scanned, &found, replacement, target, &mut edits);
                    result.count += 1;
                    index = found.last_group + 1;
                }
                None => index += 1,
            }
        }
        apply(segments, &edits, &mut result.segments);
        result
    }

    /// The longest pattern that matches starting at group `start`.
    fn find_at(&self, scanned: &Digits, start: usize) -> Option<Found> {
        let group = &scanned.groups[start];
        if group.joint == Joint::Tight {
            return None;
        }
        let from = group.digits.start;
        self.patterns.iter().enumerate().find_map(|(index, pattern)| {
            if group.plus.is_some() && !matches!(pattern.form, Form::International { idd: false, .. }) {
                return None;
            }
            let end = from + pattern.digits.len();
            if scanned.digits.get(from..end) != Some(&pattern.digits[..]) {
                return None;
            }
            let last = scanned.group_ending_at(start, end)?;
            if scanned.groups.get(last + 1).is_some_and(|next| next.joint == Joint::Tight) {
                return None;
            }
            if group.joint == Joint::Soft && !self.may_follow_digits(scanned, start, pattern, end) {
                return None;
            }
            Some(Found { pattern: index, first_group: start, last_group: last })
        })
    }

    /// Rule 3 of the module documentation, for a match at group `start` that
    /// other digits precede across a blank.
    fn may_follow_digits(&self, scanned: &Digits, start: usize, pattern: &Pattern, end: usize) -> bool {
        if pattern.form == (Form::National { trunk: "" }) {
            return false;
        }
        let lead = &scanned.groups[scanned.groups[start].chunk];
        // Only '+' marks an international number here: a leading "00" group
        // is as often the minutes of a time ("9:00 8 495 …").
        if lead.plus.is_some() && end - lead.digits.start <= MAX_INTERNATIONAL_DIGITS {
            return false;
        }
        let chunk_from = lead.digits.start;
        !self.patterns.iter().any(|longer| {
            longer.original == pattern.original
                && longer.digits.len() > pattern.digits.len()
                && end >= chunk_from + longer.digits.len()
                && scanned.digits[end - longer.digits.len()..end] == *longer.digits
        })
    }

    fn edit(
        &self,
        segments: &[&str],
        scanned: &Digits,
        found: &Found,
        replacement: &PhoneNumber,
        target: Target,
        edits: &mut Vec<Edit>,
    ) {
        let pattern = &self.patterns[found.pattern];
        let original = &self.originals[pattern.original];
        let first = &scanned.groups[found.first_group];
        let end = scanned.groups[found.last_group].end;
        if let Some(digits) = rewritten_digits(pattern, original, replacement) {
            let mut digits = digits.chars();
            for_each_part(segments, first.first, end, &mut |segment, start, end, part| {
                let text =
                    part.chars().map(|c| if c.is_ascii_digit() { digits.next().unwrap_or(c) } else { c }).collect();
                edits.push(Edit { segment, start, end, text });
            });
            return;
        }
        let text = fallback(pattern.form, original, replacement, target);
        let mut start = first.plus.unwrap_or(first.first);
        if let Some(paren) = first.paren.filter(|_| closes_unopened_paren(segments, start, end)) {
            start = paren;
        }
        let mut text = Some(text);
        for_each_part(segments, start, end, &mut |segment, start, end, _| {
            edits.push(Edit { segment, start, end, text: text.take().unwrap_or_default() });
        });
    }
}

/// Hands `add` every digit string under which `number` may be written, with
/// its form (as it goes: no list of them is built).
fn written_forms(number: &PhoneNumber, add: &mut dyn FnMut(Form, Vec<u8>)) {
    let country_code = number.country_code().as_bytes();
    let nsn = number.national_number().as_bytes();
    let rules = dialling(number.country_code());
    let trunk_zero = rules.is_some_and(|rules| rules.has_trunk_zero());
    for idd in [false, true] {
        for trunk in [false, true] {
            if trunk && !trunk_zero {
                continue;
            }
            let mut digits = Vec::with_capacity(country_code.len() + nsn.len() + 3);
            if idd {
                digits.extend_from_slice(b"00");
            }
            digits.extend_from_slice(country_code);
            if trunk {
                digits.push(b'0');
            }
            digits.extend_from_slice(nsn);
            add(Form::International { idd, trunk }, digits);
        }
    }
    if let Some(rules) = rules {
        // Where the trunk prefix equals the country code (NANP's 1), the
        // writing is read as international: it is one.
        for &trunk in rules.trunk.iter().filter(|&&trunk| trunk != number.country_code()) {
            add(Form::National { trunk }, [trunk.as_bytes(), nsn].concat());
        }
        if nsn.len() >= MIN_BARE_NATIONAL_DIGITS {
            add(Form::National { trunk: "" }, nsn.to_vec());
        }
    }
}

/// The replacement's digits written in the matched form, or `None` when that
/// form cannot hold it digit for digit.
fn rewritten_digits(pattern: &Pattern, original: &PhoneNumber, replacement: &PhoneNumber) -> Option<String> {
    let mut digits = String::with_capacity(pattern.digits.len());
    match pattern.form {
        Form::International { idd, trunk } => {
            if idd {
                digits.push_str("00");
            }
            digits.push_str(replacement.country_code());
            if trunk {
                if !dialling(replacement.country_code()).is_some_and(|rules| rules.has_trunk_zero()) {
                    return None;
                }
                digits.push('0');
            }
        }
        Form::National { trunk } => {
            if replacement.country_code() != original.country_code() {
                return None;
            }
            digits.push_str(trunk);
        }
    }
    digits.push_str(replacement.national_number());
    (digits.len() == pattern.digits.len()).then_some(digits)
}

/// A clean writing of the replacement for when the matched form cannot hold
/// it. A national writing is only kept for a number of the same country: a
/// foreign number written nationally is not dialable, so it goes
/// international. In hrefs the fallback is E.164, the form every dialer takes.
fn fallback(form: Form, original: &PhoneNumber, replacement: &PhoneNumber, target: Target) -> String {
    match (target, form) {
        (Target::Href, _) => replacement.e164(),
        (Target::Text, Form::National { .. }) if replacement.country_code() == original.country_code() => {
            replacement.format_national()
        }
        (Target::Text, _) => replacement.format_international(),
    }
}

/// Whether the text from `start` to `end` has a ')' without a '(' before it
/// in that span, as in "(495) 123-45-67" matched from the 4.
fn closes_unopened_paren(segments: &[&str], start: Pos, end: Pos) -> bool {
    let mut depth = 0usize;
    let mut unopened = false;
    for_each_part(segments, start, end, &mut |_, _, _, part| {
        for byte in part.bytes() {
            match byte {
                b'(' => depth += 1,
                b')' if depth == 0 => unopened = true,
                b')' => depth -= 1,
                _ => {}
            }
        }
    });
    unopened
}

/// Calls `part(segment, start, end, text)` for each segment's share of the
/// span from `start` to `end`, in order.
// Through `dyn`: one copy of the loop serves its three callers in the bundle.
fn for_each_part(segments: &[&str], start: Pos, end: Pos, part: &mut dyn FnMut(usize, usize, usize, &str)) {
    let spanned = segments.iter().enumerate().take(end.segment + 1).skip(start.segment);
    for (segment, text) in spanned {
        let from = if segment == start.segment { start.byte } else { 0 };
        let to = if segment == end.segment { end.byte } else { text.len() };
        part(segment, from, to, &text[from..to]);
    }
}

/// Applies `edits` (in text order, not overlapping) to the segments they
/// touch; a segment whose text comes out the same stays `None`.
fn apply(segments: &[&str], edits: &[Edit], out: &mut [Option<String>]) {
    let mut edits = edits.iter().peekable();
    while let Some(first) = edits.peek() {
        let segment = first.segment;
        let source = segments[segment];
        let mut text = String::with_capacity(source.len() + 16);
        let mut cursor = 0;
        while let Some(edit) = edits.next_if(|edit| edit.segment == segment) {
            text.push_str(&source[cursor..edit.start]);
            text.push_str(&edit.text);
            cursor = edit.end;
        }
        text.push_str(&source[cursor..]);
        if text != source {
            out[segment] = Some(text);
        }
    }
}
