//! Salesforce datetimes (`2024-05-01T10:00:00.000+0000`) as milliseconds since the epoch, and
//! back as SOQL literals.
//!
//! Salesforce prints `SystemModstamp` in UTC with millisecond precision; other offsets are
//! accepted anyway. A SOQL datetime literal has second precision here, so queries use the second
//! at or before a mark and the plugin compares milliseconds itself.

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HHMM|±HH:MM)`; `None` for anything else.
pub fn parse(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() < 19 || b.get(4) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{digits:0<3}");
        millis = padded.get(..3)?.parse().ok()?;
        rest = frac.get(digits.len()..)?;
    }
    let offset_min = match rest {
        "Z" | "" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest.get(1..)?.chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            sign * (digits.get(..2)?.parse::<i64>().ok()? * 60
                + digits.get(2..)?.parse::<i64>().ok()?)
        }
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + millis)
}

/// The SOQL literal of the whole second at or before `ms`: `2024-05-01T10:00:00Z`.
pub fn soql_floor(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salesforce_stamps_parse_to_epoch_milliseconds() {
        assert_eq!(parse("1970-01-01T00:00:00.000+0000"), Some(0));
        assert_eq!(parse("2023-11-14T22:13:20.250Z"), Some(1_700_000_000_250));
        assert_eq!(
            parse("2023-11-15T00:13:20.250+02:00"),
            Some(1_700_000_000_250)
        );
        assert_eq!(parse("2023-11-14T22:13:20+0000"), Some(1_700_000_000_000));
        for bad in [
            "",
            "2023-11-14",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+2",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn floors_are_soql_literals_at_or_before_the_instant() {
        assert_eq!(soql_floor(1_700_000_000_250), "2023-11-14T22:13:20Z");
        assert_eq!(
            parse(&soql_floor(1_700_000_000_999)),
            Some(1_700_000_000_000)
        );
        assert_eq!(soql_floor(-1), "1969-12-31T23:59:59Z");
    }
}
