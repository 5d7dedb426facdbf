//! Calendar days and times of a site's time zone, for report days, date
//! filters and displayed times. The calendar and the IANA rules are jiff's:
//! a day is from one local midnight to the next, so a day with a daylight
//! saving change lasts 23 or 25 hours, and a zone whose clocks skip midnight
//! starts that day at the first instant that exists.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

/// A local day and the instants it spans, `[start_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Why a bound or a day could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("{0:?} is neither Unix milliseconds nor a YYYY-MM-DD date")]
    Unreadable(String),
    #[error("{0} is outside the years the calendar supports (-9999 to 9999)")]
    OutOfRange(String),
}

/// A `YYYY-MM-DD` date; `None` unless the text is exactly a valid date
/// (jiff's own parser also takes other ISO 8601 forms).
pub fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse::<i16>().ok()).flatten();
    let (y, m, d) = (digits(&text[0..4])?, digits(&text[5..7])?, digits(&text[8..10])?);
    Date::new(y, i8::try_from(m).ok()?, i8::try_from(d).ok()?).ok()
}

/// Midnight UTC of a `YYYY-MM-DD` date, in Unix ms.
pub fn parse_date_ms(text: &str) -> Option<i64> {
    day_start_ms(&TimeZone::UTC, parse_date(text)?).ok()
}

/// The first instant of `date` in `zone`.
pub fn day_start_ms(zone: &TimeZone, date: Date) -> Result<i64, DateError> {
    date.to_zoned_datetime(zone.clone())
        .and_then(|z| z.start_of_day())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|_| DateError::OutOfRange(date.to_string()))
}

fn zoned(zone: &TimeZone, ms: i64) -> Result<ZonedDateTime, DateError> {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned_datetime(zone.clone()))
        .map_err(|_| DateError::OutOfRange(format!("{ms} ms")))
}

/// The instant `date` shows `hour`:00 on the clock of `zone` (the earlier
/// instant when the clock passes that hour twice, the first after the gap
/// when it skips it).
pub fn local_time_ms(zone: &TimeZone, date: Date, hour: i8) -> Result<i64, DateError> {
    date.at(hour, 0, 0, 0)
        .to_zoned_datetime(zone.clone())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|_| DateError::OutOfRange(format!("{date} {hour}:00")))
}

/// The local date of instant `ms` in `zone`.
pub fn local_date(zone: &TimeZone, ms: i64) -> Result<Date, DateError> {
    zoned(zone, ms).map(|z| z.date())
}

/// `ms` when the calendar can place it (years -9999 to 9999).
pub fn in_range(ms: i64) -> Result<i64, DateError> {
    zoned(&TimeZone::UTC, ms).map(|_| ms)
}

/// A time bound of a query: Unix ms, or a `YYYY-MM-DD` day of `zone`. As an
/// upper bound a day includes all of itself (up to the next local midnight).
pub fn time_bound(zone: &TimeZone, text: &str, upper: bool) -> Result<i64, DateError> {
    if let Ok(ms) = text.parse::<i64>() {
        // Checked here so every later conversion of the bound succeeds.
        return in_range(ms);
    }
    let date = parse_date(text).ok_or_else(|| DateError::Unreadable(text.to_owned()))?;
    if upper {
        let next = date.tomorrow().map_err(|_| DateError::OutOfRange(text.to_owned()))?;
        day_start_ms(zone, next)
    } else {
        day_start_ms(zone, date)
    }
}

/// Every local day of `zone` that overlaps `[from_ms, to_ms)`, in order.
pub fn local_days(zone: &TimeZone, from_ms: i64, to_ms: i64) -> Result<Vec<LocalDay>, DateError> {
    let mut days = Vec::new();
    if from_ms >= to_ms {
        return Ok(days);
    }
    let mut date = local_date(zone, from_ms)?;
    let mut start_ms = day_start_ms(zone, date)?;
    while start_ms < to_ms {
        let next = date.tomorrow().map_err(|_| DateError::OutOfRange(date.to_string()))?;
        let end_ms = day_start_ms(zone, next)?;
        days.push(LocalDay { day: date.to_string(), start_ms, end_ms });
        (date, start_ms) = (next, end_ms);
    }
    Ok(days)
}

/// `2027-01-15T10:04:05.123Z` for Unix ms (UTC, for machines).
pub fn format_ms(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// `2027-01-15T13:04:05.123+03:00`: Unix ms as the site's clock showed it,
/// with the offset, so the text is both readable and exact. A zero offset is
/// written `Z`, as [`format_ms`] writes UTC.
pub fn format_local_ms(zone: &TimeZone, ms: i64) -> String {
    match zoned(zone, ms) {
        Ok(z) if z.offset().seconds() == 0 => format_ms(ms),
        Ok(z) => z.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// The start of the local hour holding `ms`. Offsets move in whole hours
/// in nearly every zone, so equal hour buckets from here stay on the
/// local clock's hours.
pub fn local_hour_start_ms(zone: &TimeZone, ms: i64) -> Result<i64, DateError> {
    let offset_ms = i64::from(zoned(zone, ms)?.offset().seconds()) * 1000;
    let local = ms + offset_ms;
    Ok(local - local.rem_euclid(3_600_000) - offset_ms)
}

/// One UTC day in ms.
pub const fn day_ms() -> i64 {
    86_400_000
}

/// The JSON schema of what [`time_bound`] reads: Unix ms, or a `YYYY-MM-DD`
/// day (the admin API's query parameters).
pub fn time_bound_schema() -> utoipa::openapi::schema::Schema {
    let about = "Unix ms, or a YYYY-MM-DD day of the site's time zone (of UTC for the call list without site); \
                 as an upper bound (to) the whole day is included, as a lower bound (from) it starts at its midnight.";
    utoipa::openapi::schema::OneOfBuilder::new()
        .description(Some(about))
        .item(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some("^-?[0-9]{1,14}$")),
        )
        .item(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String).format(
            Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(utoipa::openapi::schema::KnownFormat::Date)),
        ))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    #[test]
    fn known_dates() {
        assert_eq!(parse_date_ms("1970-01-01"), Some(0));
        assert_eq!(parse_date_ms("2000-03-01"), Some(951_868_800_000));
        assert_eq!(parse_date_ms("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(format_ms(1_709_164_800_000 + 3_723_004), "2024-02-29T01:02:03.004Z");
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn invalid_dates_are_refused() {
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "2024-01-32",
            "2024/01/01",
            "+024-01-01",
            "20240101",
            "2024-01-01T00:00",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_of_a_zone_follow_its_midnights() {
        // Moscow is UTC+3 all year: its 2027-01-15 runs 2027-01-14T21:00Z..
        let msk = zone("Europe/Moscow");
        let start = parse_date_ms("2027-01-14").unwrap() + 21 * 3_600_000;
        assert_eq!(time_bound(&msk, "2027-01-15", false), Ok(start));
        assert_eq!(time_bound(&msk, "2027-01-15", true), Ok(start + day_ms()));
        // New York springs forward on 2027-03-14 (a 23-hour day) and falls
        // back on 2027-11-07 (25 hours).
        let ny = zone("America/New_York");
        let spring = local_days(
            &ny,
            time_bound(&ny, "2027-03-14", false).unwrap(),
            time_bound(&ny, "2027-03-14", true).unwrap(),
        )
        .unwrap();
        assert_eq!(spring.len(), 1);
        assert_eq!((spring[0].day.as_str(), spring[0].end_ms - spring[0].start_ms), ("2027-03-14", 23 * 3_600_000));
        assert_eq!(spring[0].start_ms, parse_date_ms("2027-03-14").unwrap() + 5 * 3_600_000);
        let fall = local_days(
            &ny,
            time_bound(&ny, "2027-11-07", false).unwrap(),
            time_bound(&ny, "2027-11-07", true).unwrap(),
        )
        .unwrap();
        assert_eq!(fall[0].end_ms - fall[0].start_ms, 25 * 3_600_000);
        assert_eq!(format_local_ms(&ny, spring[0].start_ms + 3 * 3_600_000), "2027-03-14T04:00:00.000-04:00");
    }

    #[test]
    fn local_days_cover_partial_days_at_both_ends() {
        let msk = zone("Europe/Moscow");
        // 2027-01-15T20:00Z is 23:00 in Moscow; two hours later is the 16th.
        let from = parse_date_ms("2027-01-15").unwrap() + 20 * 3_600_000;
        let days = local_days(&msk, from, from + 2 * 3_600_000).unwrap();
        let names: Vec<&str> = days.iter().map(|d| d.day.as_str()).collect();
        assert_eq!(names, ["2027-01-15", "2027-01-16"]);
        assert_eq!(days[0].end_ms, days[1].start_ms);
        assert!(local_days(&msk, from, from).unwrap().is_empty());
    }

    #[test]
    fn bounds_in_ms_pass_through_and_out_of_range_is_an_error() {
        assert_eq!(time_bound(&TimeZone::UTC, "1800000000000", false), Ok(1_800_000_000_000));
        assert!(matches!(time_bound(&TimeZone::UTC, &i64::MAX.to_string(), true), Err(DateError::OutOfRange(_))));
        assert!(matches!(time_bound(&TimeZone::UTC, "yesterday", true), Err(DateError::Unreadable(_))));
    }

    #[test]
    fn hours_start_on_the_local_clock() {
        let kolkata = zone("Asia/Kolkata"); // UTC+05:30
        let ms = parse_date_ms("2027-01-15").unwrap() + 10 * 60_000;
        // 00:10Z is 05:40 local; the local hour began at 05:00 = 23:30Z.
        assert_eq!(local_hour_start_ms(&kolkata, ms), Ok(ms - 40 * 60_000));
        assert_eq!(local_hour_start_ms(&TimeZone::UTC, ms), Ok(ms - 10 * 60_000));
    }
}
