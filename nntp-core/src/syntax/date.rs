//! The date and time of NEWGROUPS and NEWNEWS (RFC 3977 section 7.3.2): `yymmdd` or
//! `yyyymmdd`, then `hhmmss`, then optionally `GMT` (the server's time zone otherwise; ours is
//! UTC, so both read the same).

/// A NEWGROUPS/NEWNEWS date as sent, before a two-digit year is given its century.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewsDate {
    /// The year as sent: two digits (slrn sends these) or four.
    pub year: Year,
    /// 1 to 12.
    pub month: u8,
    /// 1 to the month's length.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    /// 0 to 59.
    pub minute: u8,
    /// 0 to 60 (a leap second).
    pub second: u8,
}

/// A year with or without its century.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Year {
    /// `yy`.
    Two(u8),
    /// `yyyy`.
    Four(u16),
}

impl NewsDate {
    /// Parses the `date` and `time` arguments.
    ///
    /// ```
    /// use nntp_core::syntax::{NewsDate, Year};
    /// let d = NewsDate::parse("261201", "235959").unwrap();
    /// assert_eq!(d.year, Year::Two(26));
    /// assert_eq!(d.unix_seconds(2026), 1_796_169_599);
    /// assert_eq!(NewsDate::parse("20261201", "235959").unwrap().unix_seconds(1999), 1_796_169_599);
    /// assert!(NewsDate::parse("20260230", "000000").is_none());
    /// ```
    pub fn parse(date: &str, time: &str) -> Option<NewsDate> {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(date) || !digits(time) || time.len() != 6 {
            return None;
        }
        let two = |s: &str, at: usize| s[at..at + 2].parse::<u8>().ok();
        let (year, rest) = match date.len() {
            6 => (Year::Two(two(date, 0)?), &date[2..]),
            8 => (Year::Four(date[..4].parse().ok()?), &date[4..]),
            _ => return None,
        };
        let d = NewsDate {
            year,
            month: two(rest, 0)?,
            day: two(rest, 2)?,
            hour: two(time, 0)?,
            minute: two(time, 2)?,
            second: two(time, 4)?,
        };
        let leap_year_unknown = 29;
        let longest = match d.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 => match d.year {
                Year::Four(y) if !is_leap(i64::from(y)) => 28,
                _ => leap_year_unknown,
            },
            _ => return None,
        };
        (d.day >= 1 && d.day <= longest && d.hour < 24 && d.minute < 60 && d.second <= 60)
            .then_some(d)
    }

    /// The full year: a two-digit year is in the current century if it is not after the
    /// current year, else in the previous one (RFC 3977 7.3.2).
    pub fn full_year(&self, current_year: i64) -> i64 {
        match self.year {
            Year::Four(y) => i64::from(y),
            Year::Two(yy) => {
                let century = current_year - current_year.rem_euclid(100);
                let y = century + i64::from(yy);
                if y <= current_year { y } else { y - 100 }
            }
        }
    }

    /// Seconds since 1970-01-01 UTC (negative before it); `current_year` places a two-digit
    /// year.
    pub fn unix_seconds(&self, current_year: i64) -> i64 {
        let days = days_from_civil(
            self.full_year(current_year),
            i64::from(self.month),
            i64::from(self.day),
        );
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second.min(59))
    }
}

/// What DATE answers for a moment (RFC 3977 section 7.1): `yyyymmddhhmmss`, UTC.
///
/// ```
/// assert_eq!(nntp_core::syntax::date_digits(1_796_169_599), "20261201235959");
/// ```
pub fn date_digits(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A moment as an article's `Date` field writes it (RFC 5322 section 3.3), in UTC.
///
/// ```
/// assert_eq!(nntp_core::syntax::article_date(1_796_169_599), "Tue, 01 Dec 2026 23:59:59 +0000");
/// ```
pub fn article_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let s = unix.rem_euclid(86_400);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[(days + 4).rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} +0000",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The UTC year of a moment: what places NEWGROUPS' two-digit years.
///
/// ```
/// assert_eq!(nntp_core::syntax::year_of(1_796_169_599), 2026);
/// ```
pub fn year_of(unix: i64) -> i64 {
    civil_from_days(unix.div_euclid(86_400)).0
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (the inverse of
/// [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_digit_years_take_the_nearest_past_century() {
        let d = NewsDate::parse("991231", "000000").unwrap();
        assert_eq!(d.full_year(2026), 1999);
        let d = NewsDate::parse("260101", "000000").unwrap();
        assert_eq!(d.full_year(2026), 2026);
        let d = NewsDate::parse("270101", "000000").unwrap();
        assert_eq!(d.full_year(2026), 1927);
    }

    #[test]
    fn the_epoch_and_leap_days() {
        assert_eq!(
            NewsDate::parse("19700101", "000000")
                .unwrap()
                .unix_seconds(0),
            0
        );
        assert_eq!(
            NewsDate::parse("20000229", "120000")
                .unwrap()
                .unix_seconds(0),
            951_825_600
        );
        assert!(NewsDate::parse("19000229", "000000").is_none());
        assert!(
            NewsDate::parse("000229", "000000").is_some(),
            "the century is not known yet"
        );
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000, -1, 0, 59, 365 * 30 + 7, 20_789, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(date_digits(0), "19700101000000");
        assert_eq!(date_digits(951_825_600), "20000229120000");
    }

    #[test]
    fn malformed_dates_are_refused() {
        for (d, t) in [
            ("2612", "000000"),
            ("261301", "000000"),
            ("261200", "000000"),
            ("261201", "240000"),
            ("261201", "236000"),
            ("261201", "0000"),
            ("26120a", "000000"),
            ("+61201", "000000"),
        ] {
            assert!(NewsDate::parse(d, t).is_none(), "{d} {t}");
        }
    }
}
