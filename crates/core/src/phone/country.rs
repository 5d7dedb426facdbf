//! Country calling codes and the national dialling rules of the countries
//! Ringsource knows how to write nationally.

use std::fmt;
use std::str::FromStr;

use super::PhoneError;

/// For each first digit 2..=9, a bit mask of the second digits that complete a
/// two-digit ITU country code (bit n set = code "dn" exists). Codes starting
/// with 1 or 7 are one digit long (NANP and Russia/Kazakhstan); everything not
/// listed here is three digits long. Written from ITU-T E.164 Annex list.
const TWO_DIGIT_CODES: [u16; 10] = [
    0,              // 0: no country codes
    0,              // 1: one-digit code
    0b00_1000_0001, // 20, 27
    0b10_0101_1111, // 30-34, 36, 39
    0b11_1111_1011, // 40, 41, 43-49
    0b01_1111_1110, // 51-58
    0b00_0111_1111, // 60-66
    0,              // 7: one-digit code
    0b00_0101_0110, // 81, 82, 84, 86
    0b01_0011_1111, // 90-95, 98
];

/// Length of the country calling code at the start of `digits` (ASCII digits),
/// or `None` when they start with 0, which no country code does.
pub(crate) fn calling_code_len(digits: &[u8]) -> Option<usize> {
    let first = digits.first()?.checked_sub(b'0')?;
    match first {
        1 | 7 => Some(1),
        2..=9 => {
            let second = digits.get(1).and_then(|d| d.checked_sub(b'0')).unwrap_or(0);
            let two_digit = second <= 9 && TWO_DIGIT_CODES[usize::from(first)] & (1 << second) != 0;
            Some(if two_digit { 2 } else { 3 })
        }
        _ => None,
    }
}

/// How numbers under one country calling code are written and dialled at home.
#[derive(Debug)]
pub(crate) struct Dialling {
    /// Trunk prefixes dialled before the national significant number, longest
    /// first; the first is the one written by `format_national`.
    pub trunk: &'static [&'static str],
    /// Allowed lengths of the national significant number.
    pub min_len: usize,
    pub max_len: usize,
    /// Whether a national number may be written without its trunk prefix. Only
    /// where the length is fixed is the bare form unambiguous.
    pub trunk_optional: bool,
    /// Leading digits no national significant number has (the trunk prefix
    /// itself, and for NANP the 1 that never starts an area code).
    pub bad_first: &'static [u8],
    /// What a national number looks like, for error messages.
    pub shape: &'static str,
}

impl Dialling {
    pub(crate) fn has_trunk_zero(&self) -> bool {
        self.trunk.contains(&"0")
    }

    pub(crate) fn len_fits(&self, len: usize) -> bool {
        (self.min_len..=self.max_len).contains(&len)
    }
}

const RU_KZ: Dialling = Dialling {
    trunk: &["8"],
    min_len: 10,
    max_len: 10,
    trunk_optional: true,
    bad_first: b"0",
    shape: "10 digits, optionally after the trunk prefix 8 or the country code 7",
};
const NANP: Dialling = Dialling {
    trunk: &["1"],
    min_len: 10,
    max_len: 10,
    trunk_optional: true,
    bad_first: b"01",
    shape: "10 digits starting 2-9, optionally after a leading 1",
};
const GB: Dialling = Dialling {
    trunk: &["0"],
    min_len: 7,
    max_len: 10,
    trunk_optional: false,
    bad_first: b"0",
    shape: "the trunk prefix 0 followed by 7 to 10 digits",
};
const DE: Dialling = Dialling {
    trunk: &["0"],
    min_len: 6,
    max_len: 13,
    trunk_optional: false,
    bad_first: b"0",
    shape: "the trunk prefix 0 followed by 6 to 13 digits",
};
const UA: Dialling = Dialling {
    trunk: &["0"],
    min_len: 9,
    max_len: 9,
    trunk_optional: false,
    bad_first: b"0",
    shape: "the trunk prefix 0 followed by 9 digits",
};
const BY: Dialling = Dialling {
    // Belarus dials "8 0XX"; the shorter "0XX" is common in writing too.
    trunk: &["80", "0"],
    min_len: 9,
    max_len: 9,
    trunk_optional: false,
    bad_first: b"0",
    shape: "the trunk prefix 8 0 (or 0) followed by 9 digits",
};

/// National dialling rules for a country calling code, where known.
pub(crate) fn dialling(country_code: &str) -> Option<&'static Dialling> {
    match country_code {
        "7" => Some(&RU_KZ),
        "1" => Some(&NANP),
        "44" => Some(&GB),
        "49" => Some(&DE),
        "380" => Some(&UA),
        "375" => Some(&BY),
        _ => None,
    }
}

/// A country whose national number notation Ringsource understands.
#[allow(clippy::upper_case_acronyms, reason = "ISO 3166-1 alpha-2 codes are written in capitals")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    RU,
    KZ,
    UA,
    BY,
    US,
    CA,
    GB,
    DE,
}

impl Region {
    pub const ALL: [Region; 8] =
        [Region::RU, Region::KZ, Region::UA, Region::BY, Region::US, Region::CA, Region::GB, Region::DE];

    /// ISO 3166-1 alpha-2 code.
    pub fn code(self) -> &'static str {
        match self {
            Region::RU => "RU",
            Region::KZ => "KZ",
            Region::UA => "UA",
            Region::BY => "BY",
            Region::US => "US",
            Region::CA => "CA",
            Region::GB => "GB",
            Region::DE => "DE",
        }
    }

    /// Country calling code, without '+'.
    pub fn calling_code(self) -> &'static str {
        match self {
            Region::RU | Region::KZ => "7",
            Region::UA => "380",
            Region::BY => "375",
            Region::US | Region::CA => "1",
            Region::GB => "44",
            Region::DE => "49",
        }
    }

    pub(crate) fn dialling(self) -> &'static Dialling {
        match self {
            Region::RU | Region::KZ => &RU_KZ,
            Region::UA => &UA,
            Region::BY => &BY,
            Region::US | Region::CA => &NANP,
            Region::GB => &GB,
            Region::DE => &DE,
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Region {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim();
        // "UK" is not ISO but is what people type for Great Britain.
        if code.eq_ignore_ascii_case("UK") {
            return Ok(Region::GB);
        }
        Region::ALL
            .into_iter()
            .find(|region| region.code().eq_ignore_ascii_case(code))
            .ok_or_else(|| PhoneError::UnknownRegion { input: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(digits: &str) -> Option<&str> {
        calling_code_len(digits.as_bytes()).map(|len| &digits[..len])
    }

    #[test]
    fn calling_codes_follow_the_itu_structure() {
        assert_eq!(code_of("74951234567"), Some("7"));
        assert_eq!(code_of("15551234567"), Some("1"));
        assert_eq!(code_of("442079460958"), Some("44"));
        assert_eq!(code_of("4930123456"), Some("49"));
        assert_eq!(code_of("380441234567"), Some("380"));
        assert_eq!(code_of("375171234567"), Some("375"));
        assert_eq!(code_of("201234567890"), Some("20"));
        assert_eq!(code_of("211234567"), Some("211"));
        assert_eq!(code_of("33123456789"), Some("33"));
        assert_eq!(code_of("35312345678"), Some("353"));
        assert_eq!(code_of("4212345678"), Some("421"));
        assert_eq!(code_of("5012345678"), Some("501"));
        assert_eq!(code_of("5912345678"), Some("591"));
        assert_eq!(code_of("6612345678"), Some("66"));
        assert_eq!(code_of("6712345678"), Some("671"));
        assert_eq!(code_of("8612345678901"), Some("86"));
        assert_eq!(code_of("8521234567"), Some("852"));
        assert_eq!(code_of("9812345678"), Some("98"));
        assert_eq!(code_of("9712345678"), Some("971"));
        assert_eq!(code_of("0123"), None);
        assert_eq!(code_of(""), None);
    }

    #[test]
    fn regions_parse_case_insensitively() {
        assert_eq!("ru".parse::<Region>().unwrap(), Region::RU);
        assert_eq!(" GB ".parse::<Region>().unwrap(), Region::GB);
        assert_eq!("uk".parse::<Region>().unwrap(), Region::GB);
        let err = "FR".parse::<Region>().unwrap_err();
        assert!(err.to_string().contains("\"FR\""), "{err}");
    }
}
