//! Dates (RFC 3501 section 9 `date`, `date-time`): SEARCH's SINCE/BEFORE/ON and APPEND's
//! internal date, and the INTERNALDATE the server writes. Pure arithmetic: no clock.

use super::cursor::{Cursor, Result, SyntaxError};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar day, as SEARCH compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// The year, four digits.
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
}

impl Date {
    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// The day that `unix` seconds fall on, `offset` seconds east of UTC.
    pub fn of(unix: i64, offset: i32) -> Date {
        let (year, month, day) = civil_from_days((unix + i64::from(offset)).div_euclid(86_400));
        Date { year, month, day }
    }
}

/// `d-Mon-yyyy` (the day may have one or two digits), quoted or not.
pub(crate) fn date(c: &mut Cursor<'_>) -> Result<Date> {
    let quoted = c.eat(b'"');
    let d = date_text(c)?;
    if quoted {
        c.expect(b'"', "unterminated date")?;
    }
    Ok(d)
}

fn date_text(c: &mut Cursor<'_>) -> Result<Date> {
    let bad = || SyntaxError::new("bad date (expected d-Mon-yyyy)");
    let day = c.number().map_err(|_| bad())?;
    c.expect(b'-', "bad date (expected d-Mon-yyyy)")?;
    let rest = c.rest();
    let name = rest.get(..3).ok_or_else(bad)?;
    let month = MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(name))
        .ok_or_else(bad)? as u32
        + 1;
    for _ in 0..3 {
        c.eat(c.peek().unwrap_or_default());
    }
    c.expect(b'-', "bad date (expected d-Mon-yyyy)")?;
    let year = c.number().map_err(|_| bad())?;
    if !(1..=31).contains(&day) || !(1..=9999).contains(&year) {
        return Err(bad());
    }
    Ok(Date {
        year: year as i32,
        month,
        day,
    })
}

/// `date-time`: `"dd-Mon-yyyy hh:mm:ss +hhmm"`, the day space-padded or not; returns Unix
/// seconds and the zone's offset in seconds.
pub(crate) fn date_time(c: &mut Cursor<'_>) -> Result<(i64, i32)> {
    let bad = || SyntaxError::new("bad date-time (expected \"dd-Mon-yyyy hh:mm:ss +zzzz\")");
    c.expect(b'"', "expected a quoted date-time")?;
    c.eat(b' ');
    let d = date_text(c).map_err(|_| bad())?;
    c.sp().map_err(|_| bad())?;
    let two = |c: &mut Cursor<'_>| -> Result<u32> {
        let r = c.rest();
        match r.get(..2) {
            Some([a, b]) if a.is_ascii_digit() && b.is_ascii_digit() => {
                c.eat(*a);
                c.eat(*b);
                Ok(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
            }
            _ => Err(bad()),
        }
    };
    let h = two(c)?;
    c.expect(b':', "bad time").map_err(|_| bad())?;
    let m = two(c)?;
    c.expect(b':', "bad time").map_err(|_| bad())?;
    let s = two(c)?;
    c.sp().map_err(|_| bad())?;
    let sign = if c.eat(b'+') {
        1
    } else if c.eat(b'-') {
        -1
    } else {
        return Err(bad());
    };
    let zh = two(c)?;
    let zm = two(c)?;
    c.expect(b'"', "bad date-time").map_err(|_| bad())?;
    if h > 23 || m > 59 || s > 60 || zm > 59 {
        return Err(bad());
    }
    let offset = sign * (zh as i32 * 3600 + zm as i32 * 60);
    let local = d.days() * 86_400 + i64::from(h * 3600 + m * 60 + s);
    Ok((local - i64::from(offset), offset))
}

/// Writes Unix seconds as an IMAP `date-time`, in UTC: `"01-Dec-2026 10:00:00 +0000"`.
///
/// ```
/// assert_eq!(imap_core::syntax::format_date_time(0), "\"01-Jan-1970 00:00:00 +0000\"");
/// ```
pub fn format_date_time(unix: i64) -> String {
    let (y, mo, d) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    format!(
        "\"{d:02}-{}-{y:04} {:02}:{:02}:{:02} +0000\"",
        MONTHS[(mo - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

// Howard Hinnant's civil calendar algorithms (public domain), proleptic Gregorian.
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_time_round_trips_through_unix_seconds() {
        let (t, off) = date_time(&mut Cursor::new(b"\"17-Jul-1996 02:44:25 -0700\"")).unwrap();
        assert_eq!((t, off), (837_596_665, -25_200));
        assert_eq!(format_date_time(t), "\"17-Jul-1996 09:44:25 +0000\"");
        let (t2, _) = date_time(&mut Cursor::new(b"\" 7-Feb-2024 00:00:00 +0000\"")).unwrap();
        assert_eq!(format_date_time(t2), "\"07-Feb-2024 00:00:00 +0000\"");
        assert!(date_time(&mut Cursor::new(b"\"17-Foo-1996 02:44:25 -0700\"")).is_err());
        assert!(date_time(&mut Cursor::new(b"\"17-Jul-1996 25:44:25 -0700\"")).is_err());
    }

    #[test]
    fn dates_quoted_or_not() {
        let d = date(&mut Cursor::new(b"1-feb-1994")).unwrap();
        assert_eq!(
            d,
            Date {
                year: 1994,
                month: 2,
                day: 1
            }
        );
        assert_eq!(date(&mut Cursor::new(b"\"01-Feb-1994\"")).unwrap(), d);
        assert_eq!(Date::of(d.days() * 86_400 + 3600, 0), d);
        assert!(date(&mut Cursor::new(b"32-Feb-1994")).is_err());
    }
}
