//! Times and durations, as the command prints and parses them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::plural::count;

/// `t` as UTC ISO-8601 with whole seconds: `2024-05-01T12:30:00Z`. Works for every time the
/// log can hold, before 1970 included.
pub fn iso8601(t: SystemTime) -> String {
    let (secs, _) = split_unix(t);
    format_civil(secs, None)
}

/// `t` as UTC ISO-8601 with nanoseconds when it has a fraction:
/// `2024-05-01T12:30:00.000000123Z`, else as [`iso8601`]. Exact: parsing it gives `t` back.
pub fn iso8601_precise(t: SystemTime) -> String {
    let (secs, nanos) = split_unix(t);
    format_civil(secs, (nanos != 0).then_some(nanos))
}

/// Writes times as [`iso8601_precise`] does, by hand for the years 0 to 9999, keeping the
/// text of the last whole second it wrote (an export writes millions of times, most of them
/// in the same second as the one before).
#[derive(Default)]
pub struct TimeText {
    secs: Option<i64>,
    text: [u8; 19],
    /// The texts of the last dates written, by day since the epoch, each in the place of its
    /// day modulo 8 (the times of a log's week each keep theirs).
    dates: [Option<(i64, [u8; 10])>; 8],
}

impl TimeText {
    /// Appends [`iso8601`] of `t` to `out`: whole seconds.
    pub fn push_whole(&mut self, out: &mut Vec<u8>, t: SystemTime) {
        let (secs, _) = split_unix(t);
        if !self.fill(secs) {
            out.extend_from_slice(format_civil(secs, None).as_bytes());
            return;
        }
        out.extend_from_slice(&self.text);
        out.push(b'Z');
    }

    /// Appends [`iso8601_precise`] of `t` to `out`.
    pub fn push(&mut self, out: &mut Vec<u8>, t: SystemTime) {
        let (secs, nanos) = split_unix(t);
        if !self.fill(secs) {
            let fraction = (nanos != 0).then_some(nanos);
            out.extend_from_slice(format_civil(secs, fraction).as_bytes());
            return;
        }
        out.extend_from_slice(&self.text);
        if nanos == 0 {
            out.push(b'Z');
        } else {
            let mut fraction = *b".000000000Z";
            let n = nanos as usize;
            fraction[1] = b'0' + (n / 100_000_000) as u8;
            two_digits(&mut fraction[2..4], n / 1_000_000 % 100);
            two_digits(&mut fraction[4..6], n / 10_000 % 100);
            two_digits(&mut fraction[6..8], n / 100 % 100);
            two_digits(&mut fraction[8..10], n % 100);
            out.extend_from_slice(&fraction);
        }
    }

    /// Makes `text` the whole second `secs` (seconds since the epoch), unless it is already;
    /// false for a year outside 0 to 9999, which the caller writes the slow way.
    fn fill(&mut self, secs: i64) -> bool {
        if self.secs == Some(secs) {
            return true;
        }
        let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let place = &mut self.dates[days.rem_euclid(8) as usize];
        let date = match place {
            Some((day, date)) if *day == days => date,
            _ => {
                let (year, month, day) = civil_from_days(days);
                if !(0..=9999).contains(&year) {
                    return false;
                }
                let mut date = *b"0000-00-00";
                let year = year as usize;
                two_digits(&mut date[0..2], year / 100);
                two_digits(&mut date[2..4], year % 100);
                two_digits(&mut date[5..7], month as usize);
                two_digits(&mut date[8..10], day as usize);
                &mut place.insert((days, date)).1
            }
        };
        let text = &mut self.text;
        text[..10].copy_from_slice(date);
        text[10..].copy_from_slice(b"T00:00:00");
        let (h, m, s) = (day_secs / 3600, day_secs / 60 % 60, day_secs % 60);
        two_digits(&mut text[11..13], h as usize);
        two_digits(&mut text[14..16], m as usize);
        two_digits(&mut text[17..19], s as usize);
        self.secs = Some(secs);
        true
    }
}

/// Writes `n` (below 100) as two decimal digits into `to`.
fn two_digits(to: &mut [u8], n: usize) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    to.copy_from_slice(&PAIRS[2 * n..2 * n + 2]);
}

/// Whole seconds (floored) and nanoseconds since the Unix epoch, clamped to years that fit.
fn split_unix(t: SystemTime) -> (i64, u32) {
    const LIMIT: u64 = 1 << 40; // some 35 000 years: keeps the calendar arithmetic in range
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => (after.as_secs().min(LIMIT) as i64, after.subsec_nanos()),
        Err(before) => {
            let d = before.duration();
            let secs = -(d.as_secs().min(LIMIT) as i64);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

fn format_civil(secs: i64, nanos: Option<u32>) -> String {
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (day_secs / 3600, day_secs / 60 % 60, day_secs % 60);
    let fraction = nanos.map_or(String::new(), |n| format!(".{n:09}"));
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub fn opt_time(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| Value::String(iso8601_precise(t)))
}

/// The range of times the log can store ([`peerlog::storable_times`]), in words (whole seconds
/// inside it): `1677-09-21T00:12:44Z .. 2262-04-11T23:47:16Z`.
pub fn storable_range_text() -> String {
    let times = peerlog::storable_times();
    format!(
        "{} .. {}",
        iso8601(*times.start() + Duration::from_secs(1)),
        iso8601(*times.end())
    )
}

/// A duration as people write it: `1 day`, `5 days 12h`, `36m`, `1h 30m`, `0s`, `250ms`.
pub fn duration_words(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(count(days, "day"));
    }
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            parts.push(format!("{n}{unit}"));
        }
    }
    let ms = d.subsec_millis();
    if ms > 0 && secs < 60 {
        parts.push(format!("{ms}ms"));
    }
    if parts.is_empty() {
        return if d.is_zero() { "0s" } else { "<1ms" }.to_string();
    }
    parts.join(" ")
}

/// Days from 1970-01-01 to a proleptic Gregorian date (the inverse of `civil_from_days`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC time written as `2024-05-01`, `2024-05-01T12:30`, `2024-05-01T12:30:45`,
/// `2024-05-01T12:30:45.123Z` (a space instead of `T`, and a `Z` or not, alike).
fn parse_utc(text: &str) -> Option<SystemTime> {
    let text = text.strip_suffix(['Z', 'z']).unwrap_or(text);
    let (date, clock) = match text.split_once(['T', 't', ' ']) {
        Some((date, clock)) => (date, Some(clock)),
        None => (text, None),
    };
    let number = |s: &str, digits: std::ops::RangeInclusive<usize>| -> Option<i64> {
        (digits.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut ymd = date.split('-');
    let year = number(ymd.next()?, 4..=4)?;
    let month = u32::try_from(number(ymd.next()?, 2..=2)?).ok()?;
    let day = u32::try_from(number(ymd.next()?, 2..=2)?).ok()?;
    if ymd.next().is_some() || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None; // 2023-02-30 and the like
    }
    let (mut secs, mut nanos) = (days * 86_400, 0u32);
    if let Some(clock) = clock {
        let (hms, fraction) = match clock.split_once('.') {
            Some((hms, fraction)) => (hms, Some(fraction)),
            None => (clock, None),
        };
        let mut parts = hms.split(':');
        let h = number(parts.next()?, 2..=2)?;
        let m = number(parts.next()?, 2..=2)?;
        let s = parts.next().map_or(Some(0), |s| number(s, 2..=2))?;
        if parts.next().is_some() || h > 23 || m > 59 || s > 59 {
            return None;
        }
        if let Some(fraction) = fraction {
            let digits = number(fraction, 1..=9)?;
            nanos = u32::try_from(digits * 10i64.pow(9 - fraction.len() as u32)).ok()?;
        }
        secs += h * 3600 + m * 60 + s;
    }
    let since_epoch = Duration::new(secs.unsigned_abs(), 0);
    let whole = if secs >= 0 {
        UNIX_EPOCH.checked_add(since_epoch)?
    } else {
        UNIX_EPOCH.checked_sub(since_epoch)?
    };
    whole.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// The argument of `--since`: a UTC time (`2024-05-01`, `2024-05-01T12:30:45Z`, ...) or a
/// duration ago (`24h`, `7d`: that long before `now`).
pub fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    let outside = || {
        format!(
            "{text} is outside the times the log can store ({})",
            storable_range_text()
        )
    };
    let t = if text.starts_with(|c: char| c.is_ascii_digit()) && text.contains('-') {
        parse_utc(text).ok_or_else(|| {
            format!("{text:?} is not a UTC time like 2024-05-01 or 2024-05-01T12:30:45Z")
        })?
    } else {
        let ago = humantime::parse_duration(text).map_err(|e| {
            format!(
                "{text:?} is neither a UTC time (2024-05-01, 2024-05-01T12:30:45Z) nor a \
                 duration ago (24h, 7d): {e}"
            )
        })?;
        now.checked_sub(ago).ok_or_else(outside)?
    };
    if !peerlog::storable_times().contains(&t) {
        return Err(outside());
    }
    Ok(t)
}

/// A duration such as `24h`, `7d`, `1h 30m` or `0s`; never negative.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("{text}: a duration cannot be negative"));
    }
    humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_times_are_the_formatted_ones() {
        let mut times = vec![UNIX_EPOCH, SystemTime::now()];
        for secs in [
            1u64,
            59,
            86_399,
            86_400,
            951_782_400,
            4_102_444_800,
            253_402_300_799,
        ] {
            for nanos in [0u32, 1, 10, 123_456_789, 999_999_999] {
                let d = Duration::new(secs, nanos);
                times.push(UNIX_EPOCH + d);
                times.push(UNIX_EPOCH - d);
            }
        }
        // Beyond year 9999 and before year 0: the formatter's own path.
        times.push(UNIX_EPOCH + Duration::from_secs(300_000_000_000));
        times.push(UNIX_EPOCH - Duration::from_secs(70_000_000_000));
        // Days that share their place among the kept dates (8 apart), back and forth.
        for day in [0u64, 8, 1, 16, 9, 0, 7, 15, 20_000, 20_008, 20_000] {
            for secs in [0, 1, 3599, 86_399] {
                times.push(UNIX_EPOCH + Duration::from_secs(day * 86_400 + secs));
                times.push(UNIX_EPOCH - Duration::from_secs(day * 86_400 + secs));
            }
        }
        let mut kept = TimeText::default();
        for t in times.iter().chain(&times) {
            let mut pushed = b"x".to_vec();
            TimeText::default().push(&mut pushed, *t);
            assert_eq!(&pushed[1..], iso8601_precise(*t).as_bytes(), "{t:?}");
            let mut pushed = Vec::new();
            kept.push(&mut pushed, *t);
            assert_eq!(
                pushed,
                iso8601_precise(*t).as_bytes(),
                "{t:?}, after another"
            );
        }
    }

    #[test]
    fn utc_times_parse_to_what_they_print() {
        let now = SystemTime::now();
        for text in [
            "2024-05-01T12:30:45Z",
            "2024-05-01T12:30:45.000000001Z",
            "1677-09-22T00:00:00Z",
            "2262-04-11T23:47:16Z",
            "1969-12-31T23:59:59.500000000Z",
            "2000-02-29T00:00:00Z",
        ] {
            let t = parse_since(text, now).unwrap();
            assert_eq!(iso8601_precise(t), text);
        }
        let day = parse_since("2024-05-01", now).unwrap();
        assert_eq!(iso8601(day), "2024-05-01T00:00:00Z");
        let spaced = parse_since("2024-05-01 12:30", now).unwrap();
        assert_eq!(iso8601(spaced), "2024-05-01T12:30:00Z");
        let half = parse_since("2024-05-01T12:30:45.5", now).unwrap();
        assert_eq!(iso8601_precise(half), "2024-05-01T12:30:45.500000000Z");
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-05-01T24:00",
            "2024-05-01T12:60",
            "2024-5-1",
            "2024-05-01T12:30:45.1234567890Z",
            "1600-01-01",
            "2300-01-01",
        ] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_duration_ago_counts_back_from_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1_714_566_645);
        let t = parse_since("1d 12h", now).unwrap();
        assert_eq!(
            now.duration_since(t).unwrap(),
            Duration::from_secs(36 * 3600)
        );
        assert_eq!(parse_since("0s", now).unwrap(), now);
        assert!(parse_since("-1h", now).is_err());
        assert!(parse_since("400y", now).unwrap_err().contains("outside"));
        assert!(parse_since("18446744073709551615s", now).is_err());
    }

    #[test]
    fn durations_in_words() {
        let words = |secs| duration_words(Duration::from_secs(secs));
        assert_eq!(words(86_400), "1 day");
        assert_eq!(words(7 * 86_400 + 12 * 3600), "7 days 12h");
        assert_eq!(words(90 * 60), "1h 30m");
        assert_eq!(words(0), "0s");
        assert_eq!(duration_words(Duration::from_millis(250)), "250ms");
        assert_eq!(duration_words(Duration::from_nanos(5)), "<1ms");
        assert_eq!(duration_words(Duration::MAX), "213503982334601 days 7h 15s");
    }
}
