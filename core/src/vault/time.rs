//! Calendar arithmetic for TTLs and the expiry check, in UTC, without a
//! date crate: proleptic Gregorian days counted from 1970-01-01.

use crate::capture::Expiry;

const DAY: i64 = 86_400;

/// Days from 1970-01-01 to `year-month-day`.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count years from March, so the leap day is the last day of a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month as i64 + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of a day count from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The UTC (year, month) at Unix time `t`, as the capture's expiry check wants it.
pub fn year_month(t: i64) -> (u16, u8) {
    let (y, m, _) = civil_from_days(t.div_euclid(DAY));
    (y.clamp(0, u16::MAX as i64) as u16, m as u8)
}

/// The first second after the card's expiry month ends (cards are valid
/// through the last day of the month printed on them), or `None` for a
/// month outside 01–12.
pub fn end_of_expiry_month(expiry: &Expiry) -> Option<i64> {
    let d = expiry.expose();
    if d.len() != 4 {
        return None;
    }
    let month = u32::from(d[0] * 10 + d[1]);
    let year = 2000 + i64::from(d[2] * 10 + d[3]);
    if !(1..=12).contains(&month) {
        return None;
    }
    let (ny, nm) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    Some(days_from_civil(ny, nm, 1) * DAY)
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_and_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 28) * DAY, 1_795_824_000);
        assert_eq!(days_from_civil(2027, 3, 1) * DAY, 1_803_859_200);
        assert_eq!(days_from_civil(2030, 1, 1) * DAY, 1_893_456_000);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for d in -800_000..800_000i64 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(year_month(1_795_824_000 + 3600), (2026, 11));
    }

    #[test]
    fn expiry_months_end_at_the_next_month() {
        let e = |s: &[u8]| Expiry::from_ascii(s).unwrap();
        assert_eq!(end_of_expiry_month(&e(b"1229")), Some(days_from_civil(2030, 1, 1) * DAY));
        assert_eq!(end_of_expiry_month(&e(b"0228")), Some(days_from_civil(2028, 3, 1) * DAY));
        assert_eq!(end_of_expiry_month(&e(b"1329")), None);
        assert_eq!(end_of_expiry_month(&e(b"0029")), None);
        assert_eq!(end_of_expiry_month(&e(b"129")), None);
    }
}
