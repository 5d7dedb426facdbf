//! Which characters people put between the digits of a written phone number.
//! Shared by the parser and the matcher so that both accept the same writing.

/// Blank characters: they separate digit groups "softly", like a word break.
/// Includes the no-break, narrow and thin spaces that typographers (and CMS
/// typography plugins) put inside numbers, and the newlines of HTML source.
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}

/// Punctuation that joins digit groups of one number: hyphens and dashes,
/// dots, slashes, parentheses, and the invisible characters (soft hyphen,
/// zero-width space/joiners, word joiner) that sites insert to stop phones
/// from auto-linking numbers.
pub(crate) fn is_mark(c: char) -> bool {
    matches!(
        c,
        '-' | '.' | '/' | '(' | ')' | '\u{ad}' | '\u{200b}'..='\u{200d}' | '\u{2010}'..='\u{2015}' | '\u{2060}' | '\u{2212}'
    )
}

pub(crate) fn is_separator(c: char) -> bool {
    is_space(c) || is_mark(c)
}
