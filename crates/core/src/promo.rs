//! Promo codes: the visitor sees a short code instead of a tracking number,
//! the manager asks for it on the call and names it.
//!
//! A code is read aloud over the phone and typed by a person, so its alphabet
//! leaves out every character that looks or sounds like another: `0/O/Q`,
//! `1/I/L`, `2/Z`, `5/S`, `6/G`, `8/B`, `U/V`. What remains is 20 characters;
//! five of them give 20⁵ = 3.2 million codes per site.
//!
//! Core has no randomness: the caller passes random bits in, and keeps codes
//! unique among live sessions itself (retrying with new bits on a collision).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::routing::SourceRule;
use crate::touch::Touch;

/// The characters a code is made of, in the order random digits map to.
pub const ALPHABET: &[u8; 20] = b"3479ACDEFHJKMNPRTWXY";

/// Code length when the site does not set one.
pub const DEFAULT_LENGTH: usize = 5;
/// Shortest and longest code length a site may configure. Four characters
/// (160 000 codes) is the least that keeps collisions rare on a busy site;
/// beyond eight a person no longer reads a code back reliably.
pub const MIN_LENGTH: usize = 4;
pub const MAX_LENGTH: usize = 8;

/// A well-formed promo code: upper case, characters of [`ALPHABET`] only.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PromoCode(String);

/// Why text is not a promo code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromoError {
    #[error("a promo code has {min}-{max} characters; {got:?} has {len}", min = MIN_LENGTH, max = MAX_LENGTH)]
    Length { got: String, len: usize },
    #[error("{ch:?} is never part of a promo code (codes use only {alphabet})", alphabet = std::str::from_utf8(ALPHABET).unwrap_or_default())]
    Character { ch: char },
    #[error("promo code length {0} is outside {min}-{max}", min = MIN_LENGTH, max = MAX_LENGTH)]
    BadLength(usize),
}

impl PromoCode {
    /// Reads a code as a manager types it: case, spaces and hyphens are
    /// ignored (`"7k-m4x"` is `7KM4X`).
    pub fn parse(text: &str) -> Result<PromoCode, PromoError> {
        let mut code = String::with_capacity(text.len());
        for ch in text.chars().filter(|c| !c.is_whitespace() && *c != '-') {
            let up = ch.to_ascii_uppercase();
            if !up.is_ascii() || !ALPHABET.contains(&(up as u8)) {
                return Err(PromoError::Character { ch });
            }
            code.push(up);
        }
        let len = code.len();
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&len) {
            return Err(PromoError::Length { got: text.to_owned(), len });
        }
        Ok(PromoCode(code))
    }

    /// A code of `len` characters made from `random` bits: the base-20 digits
    /// of `random`, least significant first. 20⁸ < 2⁶⁴, so every character
    /// comes from distinct bits; the modulo bias is below 2⁻³⁰ and does not
    /// matter for codes that only have to be unlikely to collide.
    pub fn generate(random: u64, len: usize) -> Result<PromoCode, PromoError> {
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&len) {
            return Err(PromoError::BadLength(len));
        }
        let base = ALPHABET.len() as u64;
        let mut rest = random;
        let code = (0..len)
            .map(|_| {
                let ch = ALPHABET[(rest % base) as usize] as char;
                rest /= base;
                ch
            })
            .collect();
        Ok(PromoCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PromoCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PromoCode {
    type Err = PromoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PromoCode::parse(s)
    }
}

impl TryFrom<String> for PromoCode {
    type Error = PromoError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PromoCode::parse(&s)
    }
}

impl From<PromoCode> for String {
    fn from(c: PromoCode) -> String {
        c.0
    }
}

/// Which visits of a site are shown a promo code. Checked after the static
/// numbers and pools: a code is for sources that do not earn a number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PromoRouting {
    /// Visits matching any of these get a code.
    pub rules: Vec<SourceRule>,
    /// Visits that match no static number, pool or promo rule get a code
    /// instead of the plain original number.
    pub fallback: bool,
}

impl PromoRouting {
    /// Whether a visit the number routing left on the original number gets
    /// a promo code.
    pub fn applies(&self, touch: &Touch) -> bool {
        self.fallback || self.rules.iter().any(|r| r.matches(touch))
    }
}

/// Serialised as the code itself: upper case, of [`ALPHABET`] only.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PromoCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let alphabet = std::str::from_utf8(ALPHABET).unwrap_or_default();
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A promo code: upper case, without look-alike characters."))
            .pattern(Some(format!("^[{alphabet}]{{{MIN_LENGTH},{MAX_LENGTH}}}$")))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PromoCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_has_no_look_alikes_and_no_duplicates() {
        for bad in b"0O1IL2Z5S8B6GQUV" {
            assert!(!ALPHABET.contains(bad), "{}", *bad as char);
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALPHABET.len());
    }

    #[test]
    fn generate_uses_every_digit_and_parses_back() {
        let a = PromoCode::generate(0, 5).unwrap();
        assert_eq!(a.as_str(), "33333");
        let b = PromoCode::generate(5 + 20 * 2, 5).unwrap();
        assert_eq!(b.as_str(), "C7333", "base-20 digits, least significant first");
        let c = PromoCode::generate(u64::MAX, 8).unwrap();
        assert_eq!(PromoCode::parse(&c.as_str().to_ascii_lowercase()).unwrap(), c);
        assert_ne!(PromoCode::generate(7, 5), PromoCode::generate(8, 5));
        assert_eq!(PromoCode::generate(7, 3), Err(PromoError::BadLength(3)));
    }

    #[test]
    fn parse_ignores_case_spaces_and_hyphens_and_refuses_look_alikes() {
        assert_eq!(PromoCode::parse(" 7k-m4x ").unwrap().as_str(), "7KM4X");
        assert_eq!(PromoCode::parse("7KM0X"), Err(PromoError::Character { ch: '0' }));
        assert_eq!(PromoCode::parse("7kmox"), Err(PromoError::Character { ch: 'o' }));
        assert!(matches!(PromoCode::parse("7KM"), Err(PromoError::Length { len: 3, .. })));
        assert!(matches!(PromoCode::parse("Я7KM4"), Err(PromoError::Character { ch: 'Я' })));
    }
}
