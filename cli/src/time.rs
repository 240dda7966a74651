//! Times and node arguments, as the command prints and parses them.

use std::time::{SystemTime, UNIX_EPOCH};

use peerlog::{Error, Node, NodeId};
use serde_json::Value;

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

/// The node an argument names: 128 hex characters (optionally `0x`) or an enode URL.
pub fn parse_node_arg(arg: &str) -> Result<NodeId, Error> {
    if arg.starts_with("enode://") {
        Ok(arg.parse::<Node>()?.id)
    } else {
        arg.parse()
    }
}
