//! Reads consecutive text segments as one stream and splits out its digit
//! groups, recording how each group is joined to the one before it.

use std::ops::Range;

use crate::phone::notation;

/// More separator units than this between two digits means the digits are not
/// one written number. A unit is one punctuation mark or one run of blanks
/// (HTML source indentation collapses to one space when rendered), so ") - ("
/// still joins while a sentence of dots does not.
const MAX_GAP_UNITS: u8 = 4;

/// A character position in the segment list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pos {
    pub segment: usize,
    pub byte: usize,
}

/// How a digit group relates to the digit group before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Joint {
    /// Not joined: text, a '+', or no earlier group at all lies between.
    Break,
    /// Joined by punctuation only ("123-45", "12.03", "(495)123"): the two
    /// groups read as one token.
    Tight,
    /// Joined by separators that include a blank ("495 123", ") 123"): the
    /// groups may belong to one number or be neighbouring tokens.
    Soft,
}

#[derive(Debug)]
pub(super) struct Group {
    /// The first digit.
    pub first: Pos,
    /// Just past the last digit (in the last digit's segment).
    pub end: Pos,
    /// This group's digits within [`Digits::digits`].
    pub digits: Range<usize>,
    pub joint: Joint,
    /// A '+' written directly before the first digit.
    pub plus: Option<Pos>,
    /// A '(' written directly before the first digit (or before the '+').
    pub paren: Option<Pos>,
    /// Index of the first group of the chain of joined groups this one is in.
    pub chunk: usize,
}

#[derive(Debug, Default)]
pub(super) struct Digits {
    pub digits: Vec<u8>,
    pub groups: Vec<Group>,
}

/// The separators seen since the last digit group.
#[derive(Default)]
struct Gap {
    units: u8,
    in_blank: bool,
    has_blank: bool,
    broken: bool,
}

impl Digits {
    pub(super) fn scan(segments: &[&str]) -> Self {
        let mut found = Digits::default();
        let mut gap = Gap { broken: true, ..Gap::default() };
        let mut in_group = false;
        let mut plus = None;
        let mut paren = None;
        for (segment, text) in segments.iter().enumerate() {
            for (byte, c) in text.char_indices() {
                let pos = Pos { segment, byte };
                if c.is_ascii_digit() {
                    if !in_group {
                        found.open_group(pos, &gap, plus.take(), paren.take());
                        in_group = true;
                    }
                    found.digits.push(c as u8);
                    if let Some(group) = found.groups.last_mut() {
                        group.end = Pos { segment, byte: byte + 1 };
                        group.digits.end = found.digits.len();
                    }
                    continue;
                }
                if in_group {
                    in_group = false;
                    gap = Gap::default();
                }
                if c == '+' {
                    // A '+' opens a new international number, whatever precedes it;
                    // a '(' right before it still counts as opening the number.
                    gap.broken = true;
                    plus = Some(pos);
                    continue;
                }
                plus = None;
                paren = None;
                if notation::is_space(c) {
                    if !gap.in_blank {
                        gap.units = gap.units.saturating_add(1);
                    }
                    gap.in_blank = true;
                    gap.has_blank = true;
                } else if notation::is_mark(c) {
                    gap.units = gap.units.saturating_add(1);
                    gap.in_blank = false;
                    if c == '(' {
                        paren = Some(pos);
                    }
                } else {
                    gap.broken = true;
                    gap.in_blank = false;
                }
            }
        }
        found
    }

    fn open_group(&mut self, first: Pos, gap: &Gap, plus: Option<Pos>, paren: Option<Pos>) {
        let joint = if plus.is_some() || gap.broken || gap.units > MAX_GAP_UNITS {
            Joint::Break
        } else if gap.has_blank {
            Joint::Soft
        } else {
            Joint::Tight
        };
        let index = self.groups.len();
        let chunk = match (joint, self.groups.last()) {
            (Joint::Tight | Joint::Soft, Some(previous)) => previous.chunk,
            _ => index,
        };
        let at = self.digits.len();
        self.groups.push(Group { first, end: first, digits: at..at, joint, plus, paren, chunk });
    }

    /// Index of the group of `start`'s chunk whose digits end exactly at digit
    /// index `end`, if any.
    pub(super) fn group_ending_at(&self, start: usize, end: usize) -> Option<usize> {
        for (index, group) in self.groups.iter().enumerate().skip(start) {
            if index > start && group.joint == Joint::Break {
                return None;
            }
            if group.digits.end >= end {
                return (group.digits.end == end).then_some(index);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(segments: &[&str]) -> Vec<(String, Joint, bool)> {
        let found = Digits::scan(segments);
        found
            .groups
            .iter()
            .map(|g| (String::from_utf8(found.digits[g.digits.clone()].to_vec()).unwrap(), g.joint, g.plus.is_some()))
            .collect()
    }

    #[test]
    fn groups_record_how_they_are_joined() {
        use Joint::*;
        assert_eq!(
            shape(&["12.03.2024 +7 (495)", "\n   ", "123-45-67"]),
            vec![
                ("12".into(), Break, false),
                ("03".into(), Tight, false),
                ("2024".into(), Tight, false),
                ("7".into(), Break, true),
                ("495".into(), Soft, false),
                ("123".into(), Soft, false),
                ("45".into(), Tight, false),
                ("67".into(), Tight, false),
            ]
        );
    }

    #[test]
    fn digits_adjacent_across_segments_form_one_group() {
        let found = Digits::scan(&["84", "95"]);
        assert_eq!(found.groups.len(), 1);
        assert_eq!(found.groups[0].end, Pos { segment: 1, byte: 2 });
    }

    #[test]
    fn text_or_long_punctuation_breaks_the_chain() {
        assert_eq!(shape(&["1 a 2"])[1].1, Joint::Break);
        assert_eq!(shape(&["1 ....... 2"])[1].1, Joint::Break);
        assert_eq!(shape(&["1 - 2"])[1].1, Joint::Soft);
    }
}
