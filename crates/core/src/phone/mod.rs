//! Phone numbers: parsing international and national writings into E.164, and
//! formatting them back for people.

mod country;
mod format;
pub(crate) mod notation;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use country::Region;
pub(crate) use country::{Dialling, calling_code_len, dialling};

/// E.164 caps a number at 15 digits; the lower bound keeps out short codes
/// and stray digit runs that are not phone numbers.
const MIN_DIGITS: usize = 8;
const MAX_DIGITS: usize = 15;

/// Enough room for "00", a 15-digit number and a trunk prefix written after
/// the country code; longer input is rejected without storing the rest.
const SCAN_CAPACITY: usize = 20;

/// A phone number as country calling code plus national significant number,
/// held in E.164 form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber {
    /// "+" followed by 8..=15 ASCII digits.
    e164: Box<str>,
    country_code_len: u8,
}

/// Why a writing is not a phone number. The messages quote the input with
/// plain `"…"` rather than `{:?}`, and are assembled from pieces by hand: this
/// type is shown in the browser bundle, where Rust's `Debug` escaping and the
/// integer formatting machinery would cost more than everything else in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneError {
    Empty,
    UnexpectedCharacter { input: String, found: char },
    MisplacedPlus { input: String },
    NoDigits { input: String },
    MissingCountryCode { input: String },
    InvalidCountryCode { input: String },
    Length { input: String, digits: usize },
    NationalLength { input: String, country_code: String, found: usize, expected: String },
    NationalFirstDigit { input: String, country_code: String, digit: char },
    NotNational { input: String, region: Region, shape: &'static str },
    UnknownRegion { input: String },
}

impl PhoneError {
    /// The full message, e.g. `phone number "+44 20 79" has 4 digits after
    /// country code +44; numbers there have 7 to 10`.
    pub fn message(&self) -> String {
        let mut out = String::new();
        let quoted = |out: &mut String, head: &str, input: &str| {
            out.push_str(head);
            out.push('"');
            out.push_str(input);
            out.push('"');
        };
        let number = |out: &mut String, input: &str| quoted(out, "phone number ", input);
        match self {
            PhoneError::Empty => out.push_str("phone number is empty"),
            PhoneError::UnexpectedCharacter { input, found } => {
                number(&mut out, input);
                out.push_str(" contains '");
                out.push(*found);
                out.push_str("', which is neither a digit nor a separator");
            }
            PhoneError::MisplacedPlus { input } => {
                number(&mut out, input);
                out.push_str(" has a '+' that is not at its start");
            }
            PhoneError::NoDigits { input } => {
                number(&mut out, input);
                out.push_str(" contains no digits");
            }
            PhoneError::MissingCountryCode { input } => {
                number(&mut out, input);
                out.push_str(" has no country code; write it as +<country code> <number> or 00<country code> <number>");
            }
            PhoneError::InvalidCountryCode { input } => {
                number(&mut out, input);
                out.push_str(" starts with country code 0, and no country code starts with 0");
            }
            PhoneError::Length { input, digits } => {
                number(&mut out, input);
                out.push_str(" has ");
                push_count(&mut out, *digits);
                out.push_str(" digits with its country code; an international number has 8 to 15");
            }
            PhoneError::NationalLength { input, country_code, found, expected } => {
                number(&mut out, input);
                out.push_str(" has ");
                push_count(&mut out, *found);
                out.push_str(" digits after country code +");
                out.push_str(country_code);
                out.push_str("; numbers there have ");
                out.push_str(expected);
            }
            PhoneError::NationalFirstDigit { input, country_code, digit } => {
                number(&mut out, input);
                out.push_str(": a number under country code +");
                out.push_str(country_code);
                out.push_str(" cannot start with ");
                out.push(*digit);
            }
            PhoneError::NotNational { input, region, shape } => {
                number(&mut out, input);
                out.push_str(" is not a ");
                out.push_str(region.code());
                out.push_str(" number: expected ");
                out.push_str(shape);
                out.push_str(", or an international number starting with '+'");
            }
            PhoneError::UnknownRegion { input } => {
                quoted(&mut out, "unknown region ", input);
                out.push_str("; expected one of RU, KZ, UA, BY, US, CA, GB, DE");
            }
        }
        out
    }
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for PhoneError {}

/// Appends `n` in decimal, without the `fmt` machinery (see [`PhoneError`]).
fn push_count(out: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.push_str(ascii(&digits[at..]));
}

/// The digits of a written number and the notation around them.
struct Written {
    digits: [u8; SCAN_CAPACITY],
    len: usize,
    plus: bool,
    /// Index of a digit '0' written as "(0)": the trunk prefix in the
    /// "+44 (0)20 …" notation, to be dropped when dialling internationally.
    parenthesized_zero: Option<usize>,
}

impl Written {
    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    fn read(input: &str) -> Result<Self, PhoneError> {
        let text = input.trim_matches(notation::is_space);
        if text.is_empty() {
            return Err(PhoneError::Empty);
        }
        let mut written = Written { digits: [0; SCAN_CAPACITY], len: 0, plus: false, parenthesized_zero: None };
        let mut total: usize = 0;
        // The last two non-digit-or-digit characters, to recognise "(0)".
        let mut previous = ['\0'; 2];
        for (index, c) in text.char_indices() {
            if c.is_ascii_digit() {
                if written.len < SCAN_CAPACITY {
                    written.digits[written.len] = c as u8;
                    written.len += 1;
                }
                total += 1;
            } else if c == '+' {
                if index != 0 {
                    return Err(PhoneError::MisplacedPlus { input: input.to_owned() });
                }
                written.plus = true;
            } else if notation::is_separator(c) {
                if c == ')' && previous == ['(', '0'] {
                    written.parenthesized_zero = total.checked_sub(1);
                }
            } else {
                return Err(PhoneError::UnexpectedCharacter { input: input.to_owned(), found: c });
            }
            previous = [previous[1], c];
        }
        if total == 0 {
            return Err(PhoneError::NoDigits { input: input.to_owned() });
        }
        // Too many digits for any form: report the true count, not the stored one.
        if total > SCAN_CAPACITY {
            return Err(PhoneError::Length { input: input.to_owned(), digits: total });
        }
        Ok(written)
    }

    /// The digits after an international prefix ('+' or "00"), if written so,
    /// and where the "(0)" sits among them.
    fn international(&self) -> Option<(&[u8], Option<usize>)> {
        let digits = self.digits();
        if self.plus {
            Some((digits, self.parenthesized_zero))
        } else if let Some(rest) = digits.strip_prefix(b"00") {
            Some((rest, self.parenthesized_zero.and_then(|at| at.checked_sub(2))))
        } else {
            None
        }
    }
}

fn ascii(digits: &[u8]) -> &str {
    // Only ASCII digits are ever stored.
    std::str::from_utf8(digits).unwrap_or_default()
}

impl PhoneNumber {
    /// Parses an international writing: '+' or "00", the country code, then
    /// the number, with any separators ("+7 (495) 123-45-67",
    /// "+44 (0)20 7946 0958", "00 49 30 123456").
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let written = Written::read(input)?;
        match written.international() {
            Some((digits, parenthesized_zero)) => Self::from_international(input, digits, parenthesized_zero),
            None => Err(PhoneError::MissingCountryCode { input: input.to_owned() }),
        }
    }

    /// Parses a number as written inside `region` ("8 (495) 123-45-67" in RU,
    /// "(555) 123-4567" in US, "020 7946 0958" in GB); international writings
    /// are accepted too and keep their own country.
    pub fn parse_national(input: &str, region: Region) -> Result<Self, PhoneError> {
        let written = Written::read(input)?;
        if let Some((digits, parenthesized_zero)) = written.international() {
            return Self::from_international(input, digits, parenthesized_zero);
        }
        let digits = written.digits();
        let country_code = region.calling_code();
        let rules = region.dialling();
        let nsn = digits
            .strip_prefix(country_code.as_bytes())
            .filter(|rest| rules.len_fits(rest.len()))
            .or_else(|| {
                rules
                    .trunk
                    .iter()
                    .find_map(|trunk| digits.strip_prefix(trunk.as_bytes()).filter(|rest| rules.len_fits(rest.len())))
            })
            .or_else(|| (rules.trunk_optional && rules.len_fits(digits.len())).then_some(digits))
            .ok_or_else(|| PhoneError::NotNational { input: input.to_owned(), region, shape: rules.shape })?;
        Self::checked(input, country_code, nsn, Some(rules))
    }

    fn from_international(input: &str, digits: &[u8], parenthesized_zero: Option<usize>) -> Result<Self, PhoneError> {
        let Some(code_len) = calling_code_len(digits) else {
            return Err(PhoneError::InvalidCountryCode { input: input.to_owned() });
        };
        if digits.len() <= code_len {
            return Err(PhoneError::Length { input: input.to_owned(), digits: digits.len() });
        }
        let (country_code, mut nsn) = digits.split_at(code_len);
        let country_code = ascii(country_code);
        let rules = dialling(country_code);
        // "(0)" after the country code is the trunk prefix shown for domestic
        // callers; where 0 is the trunk prefix, a bare "+44 020 …" means the
        // same and is a common slip.
        if parenthesized_zero == Some(code_len)
            || (rules.is_some_and(Dialling::has_trunk_zero) && nsn.first() == Some(&b'0'))
        {
            nsn = &nsn[1..];
        }
        Self::checked(input, country_code, nsn, rules)
    }

    fn checked(input: &str, country_code: &str, nsn: &[u8], rules: Option<&Dialling>) -> Result<Self, PhoneError> {
        let total = country_code.len() + nsn.len();
        if let Some(rules) = rules {
            if !rules.len_fits(nsn.len()) {
                let mut expected = String::new();
                push_count(&mut expected, rules.min_len);
                if rules.min_len != rules.max_len {
                    expected.push_str(" to ");
                    push_count(&mut expected, rules.max_len);
                }
                return Err(PhoneError::NationalLength {
                    input: input.to_owned(),
                    country_code: country_code.to_owned(),
                    found: nsn.len(),
                    expected,
                });
            }
            if let Some(&first) = nsn.first().filter(|first| rules.bad_first.contains(first)) {
                return Err(PhoneError::NationalFirstDigit {
                    input: input.to_owned(),
                    country_code: country_code.to_owned(),
                    digit: char::from(first),
                });
            }
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&total) {
            return Err(PhoneError::Length { input: input.to_owned(), digits: total });
        }
        Ok(Self::from_parts(country_code, ascii(nsn)))
    }

    fn from_parts(country_code: &str, nsn: &str) -> Self {
        let mut e164 = String::with_capacity(1 + country_code.len() + nsn.len());
        e164.push('+');
        e164.push_str(country_code);
        e164.push_str(nsn);
        // Country codes are at most three digits.
        let country_code_len = country_code.len() as u8;
        PhoneNumber { e164: e164.into_boxed_str(), country_code_len }
    }

    /// Country calling code digits, without '+': "7", "44", "380".
    pub fn country_code(&self) -> &str {
        &self.e164[1..1 + usize::from(self.country_code_len)]
    }

    /// National significant number digits: no country code, no trunk prefix.
    pub fn national_number(&self) -> &str {
        &self.e164[1 + usize::from(self.country_code_len)..]
    }

    /// "+74951234567".
    pub fn e164(&self) -> String {
        // Not `to_string()`: on a `Box<str>` that goes through `Display` and
        // `Formatter::pad`, which brought width and precision handling into the
        // browser bundle (about 1.4 KB of wasm) to copy a string.
        String::from(&*self.e164)
    }

    /// "+7 495 123-45-67", "+1 555-123-4567", "+44 20 7946 0958".
    pub fn format_international(&self) -> String {
        format::international(self.country_code(), self.national_number())
    }

    /// "8 (495) 123-45-67", "(555) 123-4567", "020 7946 0958"; countries
    /// without known national rules get the international form.
    pub fn format_national(&self) -> String {
        format::national(self.country_code(), self.national_number())
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(number: PhoneNumber) -> Self {
        number.e164.into_string()
    }
}

/// Serialised as its E.164 string: `+`, a country code, 8 to 15 digits in all.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PhoneNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A phone number in E.164 form."))
            .pattern(Some("^\\+[1-9][0-9]{7,14}$"))
            .examples(["+74951234567"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PhoneNumber {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("E164")
    }
}
