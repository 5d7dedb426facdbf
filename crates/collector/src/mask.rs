//! Caller numbers as logs and answers show them: every digit but the last
//! two hidden. Anything that must name a caller in a log line writes
//! [`Masked`]`(&caller)`.

use std::fmt;

/// Digits left visible at the end of a masked number: enough for a person
/// to tell two callers apart in a log, too few to call anyone, and too few
/// to be taken for a caller key (that needs five digits).
const VISIBLE_DIGITS: usize = 2;

/// A phone number with every digit but the last two replaced by `*`; the
/// rest of the writing (`+`, spaces, dashes) stays: `+79161234567` →
/// `+*********67`. Text with two digits or fewer is all masked, so nothing
/// short (an extension) shows whole either.
pub fn mask_phone(text: &str) -> String {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let hidden = if digits > VISIBLE_DIGITS { digits - VISIBLE_DIGITS } else { digits };
    let mut seen = 0;
    text.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen <= hidden { '*' } else { c }
            } else {
                c
            }
        })
        .collect()
}

/// A caller number as logs show it ([`mask_phone`]): write
/// `Masked(&caller)` wherever a log line would name a caller.
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_phone(self.0))
    }
}

#[cfg(test)]
mod tests {
    use ringsource_core::phone::PhoneNumber;

    use super::*;

    #[test]
    fn masking_keeps_the_last_two_digits_and_the_writing() {
        assert_eq!(mask_phone("+79161234567"), "+*********67");
        assert_eq!(mask_phone("8 (916) 123-45-67"), "* (***) ***-**-67");
        assert_eq!(mask_phone("101"), "*01");
        assert_eq!(mask_phone("42"), "**");
        assert_eq!(mask_phone("anonymous"), "anonymous");
        assert_eq!(Masked("+15551234567").to_string(), "+*********67");
    }

    /// A masked number is never read back as a number, nor as a caller
    /// key (which takes five digits), so a call refolded from masked events
    /// cannot be tied to anyone.
    #[test]
    fn a_masked_number_is_no_number() {
        for n in ["+79161234567", "+380441234567", "+12025550123", "74951234567"] {
            let masked = mask_phone(n);
            assert!(PhoneNumber::parse(&masked).is_err(), "{masked}");
            assert!(masked.chars().filter(char::is_ascii_digit).count() < 5, "{masked}");
        }
    }
}
