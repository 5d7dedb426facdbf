//! The matcher on real-world writings, split numbers and distractors.

use ringsource_core::matcher::{Matcher, Replacement};
use ringsource_core::phone::{PhoneNumber, Region};

fn number(e164: &str) -> PhoneNumber {
    PhoneNumber::parse(e164).unwrap()
}

fn matcher(originals: &[&str]) -> Matcher {
    Matcher::new(&originals.iter().map(|o| number(o)).collect::<Vec<_>>())
}

/// Rewrites one text and returns it with the count.
fn rewrite(originals: &[&str], replacement: &str, text: &str) -> (String, usize) {
    let result = matcher(originals).replace(&[text], &number(replacement));
    assert_eq!(result.segments.len(), 1);
    (result.segments[0].clone().unwrap_or_else(|| text.to_owned()), result.count)
}

const MOSCOW: &str = "+74951234567";
const MOSCOW_TRACKING: &str = "+74997654321";

#[track_caller]
fn assert_moscow(text: &str, expected: &str) {
    assert_eq!(rewrite(&[MOSCOW], MOSCOW_TRACKING, text), (expected.to_owned(), 1), "in {text:?}");
}

#[track_caller]
fn assert_untouched(originals: &[&str], text: &str) {
    let result = matcher(originals).replace(&[text], &number(MOSCOW_TRACKING));
    assert_eq!(result, Replacement { segments: vec![None], count: 0 }, "in {text:?}");
}

#[test]
fn russian_writings_keep_their_format() {
    assert_moscow("+7 (495) 123-45-67", "+7 (499) 765-43-21");
    assert_moscow("8 (495) 123-45-67", "8 (499) 765-43-21");
    assert_moscow("+7 495 1234567", "+7 499 7654321");
    assert_moscow("(495) 123-45-67", "(499) 765-43-21");
    assert_moscow("7 495 123 45 67", "7 499 765 43 21");
    assert_moscow("+74951234567", "+74997654321");
    assert_moscow("84951234567", "84997654321");
    assert_moscow("8\u{a0}495\u{a0}123\u{2011}45\u{2011}67", "8\u{a0}499\u{a0}765\u{2011}43\u{2011}21");
    assert_moscow("8 (495) 123–45–67", "8 (499) 765–43–21");
    assert_moscow("+7 495 123.45.67", "+7 499 765.43.21");
    assert_moscow("Звоните: 8 495 123-45-67!", "Звоните: 8 499 765-43-21!");
    assert_moscow("тел.8(495)123-45-67,", "тел.8(499)765-43-21,");
    assert_moscow("Тел./факс: +7(495)123-45-67 доб. 12", "Тел./факс: +7(499)765-43-21 доб. 12");
    assert_moscow("00 7 495 123 45 67", "00 7 499 765 43 21");
}

#[test]
fn toll_free_and_kazakh_numbers() {
    assert_eq!(rewrite(&["+78005553535"], "+78001002030", "8-800-555-35-35"), ("8-800-100-20-30".to_owned(), 1));
    assert_eq!(rewrite(&["+78005553535"], "+78001002030", "800 555 35 35"), ("800 100 20 30".to_owned(), 1));
    assert_eq!(rewrite(&["+77271234567"], "+77277654321", "+7 727 123 45 67"), ("+7 727 765 43 21".to_owned(), 1));
    assert_eq!(rewrite(&["+77172123456"], "+77172654321", "8 (7172) 12-34-56"), ("8 (7172) 65-43-21".to_owned(), 1));
    // A Kazakh tracking number on a Russian site: same country code, same form.
    assert_eq!(rewrite(&[MOSCOW], "+77271112233", "8 (495) 123-45-67"), ("8 (727) 111-22-33".to_owned(), 1));
}

#[test]
fn us_writings_keep_their_format() {
    let us = ["+15551234567"];
    let tracking = "+15559876543";
    assert_eq!(rewrite(&us, tracking, "(555) 123-4567"), ("(555) 987-6543".to_owned(), 1));
    assert_eq!(rewrite(&us, tracking, "+1 555.123.4567"), ("+1 555.987.6543".to_owned(), 1));
    assert_eq!(rewrite(&us, tracking, "1-555-123-4567"), ("1-555-987-6543".to_owned(), 1));
    assert_eq!(rewrite(&us, tracking, "Call 555-123-4567 today"), ("Call 555-987-6543 today".to_owned(), 1));
    assert_eq!(rewrite(&us, tracking, "1 (555) 123-4567"), ("1 (555) 987-6543".to_owned(), 1));
}

#[test]
fn uk_german_ukrainian_belarusian_writings() {
    let london = ["+442079460958"];
    let tracking = "+442071234567";
    assert_eq!(rewrite(&london, tracking, "+44 (0)20 7946 0958"), ("+44 (0)20 7123 4567".to_owned(), 1));
    assert_eq!(rewrite(&london, tracking, "020 7946 0958"), ("020 7123 4567".to_owned(), 1));
    assert_eq!(rewrite(&london, tracking, "+44 20 7946 0958"), ("+44 20 7123 4567".to_owned(), 1));
    assert_eq!(rewrite(&london, tracking, "0044 20 7946 0958"), ("0044 20 7123 4567".to_owned(), 1));
    assert_eq!(rewrite(&london, tracking, "+44 020 7946 0958"), ("+44 020 7123 4567".to_owned(), 1));
    assert_eq!(
        rewrite(&["+4930123456"], "+4930654321", "Tel. 030 123456 / +49 (0)30 123456"),
        ("Tel. 030 654321 / +49 (0)30 654321".to_owned(), 2)
    );
    assert_eq!(
        rewrite(&["+380441234567"], "+380447654321", "044 123 45 67, +380 44 123 45 67, +38 044 123 45 67"),
        ("044 765 43 21, +380 44 765 43 21, +38 044 765 43 21".to_owned(), 3)
    );
    assert_eq!(
        rewrite(&["+375171234567"], "+375177654321", "8 017 123-45-67 или +375 17 123-45-67"),
        ("8 017 765-43-21 или +375 17 765-43-21".to_owned(), 2)
    );
}

#[test]
fn numbers_split_across_segments() {
    let m = matcher(&[MOSCOW]);
    let tracking = number(MOSCOW_TRACKING);
    let result = m.replace(&["+7 (495)", " ", "123-45-67"], &tracking);
    assert_eq!(result.count, 1);
    assert_eq!(result.segments, vec![Some("+7 (499)".into()), None, Some("765-43-21".into())]);

    // Digit groups glued across elements, HTML indentation between them.
    let result = m.replace(&["Телефон: 8 (4", "95) 12", "3-45", "\n      ", "-67 круглосуточно"], &tracking);
    assert_eq!(result.count, 1);
    // The first segment's "4" is the same digit in both numbers, so it is unchanged.
    assert_eq!(
        result.segments,
        vec![None, Some("99) 76".into()), Some("5-43".into()), None, Some("-21 круглосуточно".into())]
    );
    // Half a number is no number.
    let result = m.replace(&["Телефон: 8 (4", "95) 12"], &tracking);
    assert_eq!(result.count, 0);
}

#[test]
fn several_originals_and_occurrences() {
    let m = matcher(&[MOSCOW, "+78005553535"]);
    let text = "Москва: +7 495 123-45-67, 8 (495) 123-45-67; бесплатно 8 800 555-35-35.";
    let result = m.replace(&[text], &number(MOSCOW_TRACKING));
    assert_eq!(result.count, 3);
    assert_eq!(
        result.segments[0].as_deref(),
        Some("Москва: +7 499 765-43-21, 8 (499) 765-43-21; бесплатно 8 499 765-43-21.")
    );
    // Two numbers separated only by a blank are both found.
    assert_eq!(
        rewrite(&[MOSCOW], MOSCOW_TRACKING, "8 495 123-45-67 8 495 123-45-67"),
        ("8 499 765-43-21 8 499 765-43-21".to_owned(), 2)
    );
}

#[test]
fn numbers_next_to_other_figures() {
    assert_moscow("12.03.2024 8 495 123-45-67", "12.03.2024 8 499 765-43-21");
    assert_moscow("© 2024 8 (495) 123-45-67", "© 2024 8 (499) 765-43-21");
    assert_moscow("Пн–Пт 9–18 +7 495 123-45-67", "Пн–Пт 9–18 +7 499 765-43-21");
    assert_moscow("с 9:00 до 21:00 8 495 123 45 67", "с 9:00 до 21:00 8 499 765 43 21");
    assert_moscow("8 495 123-45-67 2 этаж", "8 499 765-43-21 2 этаж");
}

#[test]
fn distractors_are_left_alone() {
    let originals = [MOSCOW, "+15551234567", "+442079460958"];
    for text in [
        "ИНН 774951234567",
        "ИНН 7709123456, КПП 770901001, ОГРН 1027700132195",
        "749512345678",
        "Заказ № 123-456-789 от 12.03.2024",
        "Цена: 1 200 000 ₽, скидка 4 951 234 ₽",
        "+7 (495) 123-45-678",
        "8 (495) 123-45-6",
        "+7 495 123-45-67-89",
        "1-8 495 123-45-67",
        "+7 495 123-45-67.5",
        "17 495 123 45 67",
        "+44 555 123 4567",
        "+1 20 7946 0958",
        "+44 8 495 123-45-67",
        "500 7 495 123 45 67",
        "0495 1234567",
        "4276 3800 1234 5678",
        "Дата: 12.03.2024, время 18:30",
    ] {
        assert_untouched(&originals, text);
    }
}

#[test]
fn impossible_forms_fall_back_to_a_clean_format() {
    // Nine-digit UK number into a ten-digit writing.
    assert_eq!(
        rewrite(&["+442079460958"], "+448001111", "Call (020) 7946 0958 now"),
        ("Call 0800 1111 now".to_owned(), 1)
    );
    // A foreign tracking number with a one-digit country code still fits the
    // international writing digit for digit, so that writing is kept…
    assert_eq!(rewrite(&[MOSCOW], "+15559876543", "+7 (495) 123-45-67."), ("+1 (555) 987-65-43.".to_owned(), 1));
    // …one with a longer country code does not.
    assert_eq!(rewrite(&[MOSCOW], "+442071234567", "+7 (495) 123-45-67."), ("+44 20 7123 4567.".to_owned(), 1));
    assert_eq!(rewrite(&[MOSCOW], "+442071234567", "7 495 123 45 67"), ("+44 20 7123 4567".to_owned(), 1));
    // Written nationally, a foreign number would not be dialable: international.
    assert_eq!(rewrite(&[MOSCOW], "+15559876543", "8 (495) 123-45-67"), ("+1 555-987-6543".to_owned(), 1));
    // "(0)" needs a trunk 0 in the replacement's country.
    assert_eq!(rewrite(&["+442079460958"], MOSCOW_TRACKING, "+44 (0)20 7946 0958"), ("+7 499 765-43-21".to_owned(), 1));
    // An opening parenthesis goes with the number it opens.
    assert_eq!(rewrite(&["+442079460958"], "+448001111", "(020) 7946 0958"), ("0800 1111".to_owned(), 1));

    // Across segments: the first segment takes the text, the rest lose their part.
    let result = matcher(&[MOSCOW]).replace(&["Тел. <+7 (495)", " ", "123-45-67> ок"], &number("+442071234567"));
    assert_eq!(result.count, 1);
    assert_eq!(result.segments, vec![Some("Тел. <+44 20 7123 4567".into()), Some(String::new()), Some("> ок".into())]);
}

#[test]
fn tel_links() {
    let m = matcher(&[MOSCOW]);
    let tracking = number(MOSCOW_TRACKING);
    let href = |h: &str| m.rewrite_href(h, &tracking);
    assert_eq!(href("tel:+74951234567").as_deref(), Some("tel:+74997654321"));
    assert_eq!(href("tel:84951234567").as_deref(), Some("tel:84997654321"));
    assert_eq!(href("TEL:+7-495-123-45-67").as_deref(), Some("TEL:+7-499-765-43-21"));
    assert_eq!(href("tel:+7%20(495)%20123-45-67").as_deref(), Some("tel:+7%20(499)%20765-43-21"));
    assert_eq!(href("tel:+74951234567;ext=12").as_deref(), Some("tel:+74997654321;ext=12"));
    assert_eq!(href("sms:+74951234567?body=hi%20there").as_deref(), Some("sms:+74997654321?body=hi%20there"));
    assert_eq!(href("callto:+74951234567").as_deref(), Some("callto:+74997654321"));
    assert_eq!(href("callto://+74951234567").as_deref(), Some("callto://+74997654321"));
    assert_eq!(href("  Tel:8-495-123-45-67").as_deref(), Some("  Tel:8-499-765-43-21"));
    assert_eq!(href("mailto:84951234567@example.com"), None);
    assert_eq!(href("https://example.com/84951234567"), None);
    assert_eq!(href("tel:+74951234568"), None);
    assert_eq!(href("tel:+749512345678"), None);
    assert_eq!(href("tel:"), None);
    assert_eq!(href("tel:%E2%82"), None);
    // Fallback in a link is E.164, the form every dialer accepts.
    assert_eq!(m.rewrite_href("tel:8 (495) 123-45-67", &number("+15559876543")).as_deref(), Some("tel:+15559876543"));
}

#[test]
fn nothing_to_do_is_cheap_and_empty() {
    let m = matcher(&[MOSCOW]);
    assert!(!m.may_contain(&["no digits at all", " here"]));
    assert!(!m.may_contain(&["12 345 678"]));
    assert!(m.may_contain(&["495 ", "123 45 67"]));
    let result = m.replace(&["a", "", "b"], &number(MOSCOW_TRACKING));
    assert_eq!(result, Replacement { segments: vec![None, None, None], count: 0 });
    let none = Matcher::new(&[]);
    assert!(!none.may_contain(&["84951234567"]));
    assert_eq!(none.replace(&["84951234567"], &number(MOSCOW_TRACKING)).count, 0);
}

#[test]
fn national_parse_and_matcher_agree() {
    // A site configured with a national writing matches that same writing.
    let original = PhoneNumber::parse_national("8 (7172) 12-34-56", Region::KZ).unwrap();
    let m = Matcher::new(&[original]);
    let result = m.replace(&["Астана: 8 (7172) 12-34-56"], &number("+77172000000"));
    assert_eq!(result.segments[0].as_deref(), Some("Астана: 8 (7172) 00-00-00"));
}

#[test]
fn possible_ends_count_utf16_and_mark_glued_digits() {
    use ringsource_core::matcher::PossibleEnd;
    let m = matcher(&[MOSCOW, "+442071234567"]);
    let end = |at, digit_follows| PossibleEnd { at, digit_follows };
    // "№" and "₽" are one UTF-16 unit (three UTF-8 bytes), "𝟘" two.
    let text = "№ 8 (495) 123-45-67 ₽ 𝟘 Item 74951234567890, 020 7123 4567";
    assert_eq!(m.possible_ends(text), vec![end(19, false), end(41, true), end(59, false)]);
    // Digits of other numbers between make no end; nor do other digits alone.
    assert_eq!(m.possible_ends("495 1 123 45 67, 12.03.2024, 9:00–21:00"), vec![]);
    // The digit stream runs across blanks and text, so a number cut by a
    // block boundary is still reported: the caller decides.
    assert_eq!(m.possible_ends("8 495</div><div>123 45 67"), vec![end(25, false)]);
}
