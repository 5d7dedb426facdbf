//! Parsing and formatting of real-world phone number writings.

use ringsource_core::phone::{PhoneError, PhoneNumber, Region};

fn e164(input: &str) -> String {
    PhoneNumber::parse(input).unwrap_or_else(|e| panic!("{input}: {e}")).e164()
}

fn national(input: &str, region: Region) -> String {
    PhoneNumber::parse_national(input, region).unwrap_or_else(|e| panic!("{input} ({region}): {e}")).e164()
}

#[test]
fn parses_international_writings() {
    assert_eq!(e164("+7 (495) 123-45-67"), "+74951234567");
    assert_eq!(e164("+7 495 1234567"), "+74951234567");
    assert_eq!(e164("+7 727 123 45 67"), "+77271234567");
    assert_eq!(e164("+1-555-123-4567"), "+15551234567");
    assert_eq!(e164("+1 555.123.4567"), "+15551234567");
    assert_eq!(e164("+44 (0)20 7946 0958"), "+442079460958");
    assert_eq!(e164("+44 20 7946 0958"), "+442079460958");
    assert_eq!(e164("+44 020 7946 0958"), "+442079460958");
    assert_eq!(e164("00 49 30 123456"), "+4930123456");
    assert_eq!(e164("0049 (0)30 123456"), "+4930123456");
    assert_eq!(e164("+380 44 123 45 67"), "+380441234567");
    assert_eq!(e164("+38 044 123 45 67"), "+380441234567");
    assert_eq!(e164("+375 17 123-45-67"), "+375171234567");
    assert_eq!(e164("\u{a0}+33\u{202f}1\u{2009}23 45 67 89 "), "+33123456789");
    // Outside the countries with known rules the digits are kept as written.
    assert_eq!(e164("+39 06 1234 5678"), "+390612345678");
}

#[test]
fn splits_country_code_and_national_number() {
    let number = PhoneNumber::parse("+380 44 123 45 67").unwrap();
    assert_eq!(number.country_code(), "380");
    assert_eq!(number.national_number(), "441234567");
    let number = PhoneNumber::parse("+86 10 1234 5678").unwrap();
    assert_eq!(number.country_code(), "86");
    assert_eq!(number.national_number(), "1012345678");
}

#[test]
fn parses_national_writings() {
    assert_eq!(national("8 (495) 123-45-67", Region::RU), "+74951234567");
    assert_eq!(national("8-800-555-35-35", Region::RU), "+78005553535");
    assert_eq!(national("800 555 35 35", Region::RU), "+78005553535");
    assert_eq!(national("(495) 123-45-67", Region::RU), "+74951234567");
    assert_eq!(national("7 495 123 45 67", Region::RU), "+74951234567");
    assert_eq!(national("8 (7172) 12-34-56", Region::KZ), "+77172123456");
    assert_eq!(national("(555) 123-4567", Region::US), "+15551234567");
    assert_eq!(national("1-555-123-4567", Region::US), "+15551234567");
    assert_eq!(national("416 555 0123", Region::CA), "+14165550123");
    assert_eq!(national("020 7946 0958", Region::GB), "+442079460958");
    assert_eq!(national("0800 1111", Region::GB), "+448001111");
    assert_eq!(national("030 123456", Region::DE), "+4930123456");
    assert_eq!(national("044 123 45 67", Region::UA), "+380441234567");
    assert_eq!(national("8 017 123-45-67", Region::BY), "+375171234567");
    assert_eq!(national("017 123-45-67", Region::BY), "+375171234567");
    // International input keeps its own country.
    assert_eq!(national("+44 20 7946 0958", Region::RU), "+442079460958");
}

#[test]
fn formats_for_people() {
    let cases = [
        ("+74951234567", "+7 495 123-45-67", "8 (495) 123-45-67"),
        ("+78005553535", "+7 800 555-35-35", "8 (800) 555-35-35"),
        ("+15551234567", "+1 555-123-4567", "(555) 123-4567"),
        ("+442079460958", "+44 20 7946 0958", "020 7946 0958"),
        ("+441214960000", "+44 121 496 0000", "0121 496 0000"),
        ("+447700900123", "+44 7700 900123", "07700 900123"),
        ("+448001111", "+44 800 1111", "0800 1111"),
        ("+4930123456", "+49 30 123456", "030 123456"),
        ("+492211234567", "+49 221 1234567", "0221 1234567"),
        ("+380441234567", "+380 44 123 45 67", "044 123 45 67"),
        ("+375171234567", "+375 17 123-45-67", "8 017 123-45-67"),
        ("+390612345678", "+39 0612345678", "+39 0612345678"),
    ];
    for (e164, international, national) in cases {
        let number = PhoneNumber::parse(e164).unwrap();
        assert_eq!(number.format_international(), international);
        assert_eq!(number.format_national(), national);
        assert_eq!(number.to_string(), e164);
    }
}

#[test]
fn serializes_as_e164() {
    let number: PhoneNumber = "+7 (495) 123-45-67".parse().unwrap();
    assert_eq!(serde_json::to_string(&number).unwrap(), "\"+74951234567\"");
    let back: PhoneNumber = serde_json::from_str("\"+74951234567\"").unwrap();
    assert_eq!(back, number);
    let err = serde_json::from_str::<PhoneNumber>("\"84951234567\"").unwrap_err();
    assert!(err.to_string().contains("no country code"), "{err}");
}

#[test]
fn rejects_with_precise_errors() {
    let err = |input: &str| PhoneNumber::parse(input).unwrap_err();
    assert_eq!(err("  "), PhoneError::Empty);
    assert!(matches!(err("+7 495 123-45-67 ext"), PhoneError::UnexpectedCharacter { found: 'e', .. }));
    assert!(matches!(err("7+495"), PhoneError::MisplacedPlus { .. }));
    assert!(matches!(err("+()"), PhoneError::NoDigits { .. }));
    assert!(matches!(err("8 495 123-45-67"), PhoneError::MissingCountryCode { .. }));
    assert!(matches!(err("+0 495 123"), PhoneError::InvalidCountryCode { .. }));
    assert!(matches!(err("+39 123"), PhoneError::Length { digits: 5, .. }));
    assert!(matches!(err("+39 1234 5678 9012 3456"), PhoneError::Length { digits: 18, .. }));
    assert_eq!(
        err("+7 495 123-45-6"),
        PhoneError::NationalLength {
            input: "+7 495 123-45-6".into(),
            country_code: "7".into(),
            found: 9,
            expected: "10".into()
        }
    );
    assert!(matches!(err("+1 055 123 4567"), PhoneError::NationalFirstDigit { digit: '0', .. }));
    let message = err("+44 20 79").to_string();
    assert_eq!(message, "phone number \"+44 20 79\" has 4 digits after country code +44; numbers there have 7 to 10");

    let national_err = PhoneNumber::parse_national("20 7946 0958", Region::GB).unwrap_err();
    assert!(matches!(national_err, PhoneError::NotNational { region: Region::GB, .. }));
    assert!(national_err.to_string().contains("trunk prefix 0"), "{national_err}");
    assert!(matches!(
        PhoneNumber::parse_national("8 495 123-45-678", Region::RU),
        Err(PhoneError::NotNational { region: Region::RU, .. })
    ));
}
