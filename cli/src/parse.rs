//! Argument values clap cannot check alone: whole numbers in a range, node ids, event kinds,
//! subnets, times. Each error is worded for one line.

use std::time::{Duration, SystemTime};

use peerlog::{Error, EventKind, Node, NodeId};

use crate::error::Failure;
use crate::peers::PongAt;
use crate::time;

/// `--per-subnet`: a count, or `max` for no limit.
pub fn per_subnet_arg(text: &str) -> Result<usize, String> {
    if text == "max" {
        return Ok(usize::MAX);
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a count (a whole number, or max)"))
}

/// `--subnet-bits V4,V6`: IPv4 bits up to 32, IPv6 bits up to 128.
pub fn subnet_bits_arg(text: &str) -> Result<(u8, u8), String> {
    let bad = || format!("{text:?} is not V4,V6 prefix lengths (such as 24,48)");
    let (v4, v6) = text.split_once(',').ok_or_else(bad)?;
    let v4: u8 = v4.trim().parse().map_err(|_| bad())?;
    let v6: u8 = v6.trim().parse().map_err(|_| bad())?;
    if v4 > 32 || v6 > 128 {
        return Err(format!(
            "{text:?}: an IPv4 prefix is at most 32 bits, an IPv6 one at most 128"
        ));
    }
    Ok((v4, v6))
}

/// The most nodes a demo writes: some 8 GB of log, minutes of writing.
pub const DEMO_MAX_NODES: u64 = 10_000_000;

/// `demo --nodes`: 0 to the demo's limit.
pub fn nodes_arg(text: &str) -> Result<u64, String> {
    parse_number(text, 0, DEMO_MAX_NODES)
}

/// `demo --days`: at least 1.
pub fn days_arg(text: &str) -> Result<u64, String> {
    parse_number(text, 1, u64::MAX)
}

/// Any whole number (seeds, protocol versions).
pub fn u64_arg(text: &str) -> Result<u64, String> {
    parse_number(text, 0, u64::MAX)
}

/// `seeds -n`: up to `u32::MAX`.
pub fn count_arg(text: &str) -> Result<u64, String> {
    parse_number(text, 0, u32::MAX.into())
}

/// `import --pong-at`: `mtime`, or a time as `--since` takes it.
pub fn pong_at_arg(text: &str) -> Result<PongAt, String> {
    if text.trim() == "mtime" {
        return Ok(PongAt::Mtime);
    }
    since_arg(text).map(PongAt::Time)
}

/// `--expiration`: at least a second.
pub fn expiration_arg(text: &str) -> Result<Duration, String> {
    let d = time::parse_duration(text)?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "{text}: at least 1s (a shorter expiration would drop every node)"
        ));
    }
    Ok(d)
}

/// `--since`: a UTC time or a duration ago.
pub fn since_arg(text: &str) -> Result<SystemTime, String> {
    time::parse_since(text, SystemTime::now())
}

/// `export --kind`: an event kind by the name the `kind` column prints.
pub fn event_kind_arg(text: &str) -> Result<EventKind, String> {
    EventKind::ALL
        .into_iter()
        .find(|k| k.name() == text.trim())
        .ok_or_else(|| {
            let names: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown kind {text:?}; the kinds are {}", names.join(", "))
        })
}

/// `--self`: a node id, or `None` when not given.
pub fn parse_self(arg: Option<&str>) -> Result<Option<NodeId>, Failure> {
    arg.map(|s| {
        s.parse::<NodeId>().map_err(|e| match e {
            peerlog::Error::InvalidInput(why) => Failure::Usage(format!("--self: {why}")),
            other => Failure::from(other),
        })
    })
    .transpose()
}

/// The node an argument names (128 hex characters, optionally `0x`, or an enode URL): its id,
/// and the URL's endpoint when it is one. The error is worded for one line: the library's
/// enode parser wraps the id's error, so its `invalid input: ` prefix appears once, not twice.
pub fn parse_node_arg(arg: &str) -> Result<(NodeId, Option<Node>), String> {
    let parsed = if arg.starts_with("enode://") {
        arg.parse::<Node>().map(|node| (node.id, Some(node)))
    } else if arg.starts_with("enr:") {
        // The signed record `dump` prints names its node by its key.
        let record = arg
            .parse::<peerlog::enr::Enr<peerlog::enr::CombinedKey>>()
            .map_err(|e| format!("not a signed node record (enr:...): {e}"))?;
        NodeId::from_enr(&record).map(|id| (id, None))
    } else {
        arg.parse::<NodeId>().map(|id| (id, None))
    };
    parsed.map_err(|e| match e {
        Error::InvalidInput(why) => why.replace("invalid input: ", ""),
        other => other.to_string(),
    })
}

/// A whole number from `min` to `max`, with a message that says which rule `text` breaks.
pub fn parse_number(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let text = text.trim();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if text.strip_prefix('-').is_some_and(all_digits) {
        return Err(format!("{text} is negative; the least is {min}"));
    }
    if !all_digits(text) {
        return Err(format!("{text:?} is not a whole number"));
    }
    match text.parse::<u64>() {
        Ok(n) if n < min => Err(format!("{text} is too small; the least is {min}")),
        Ok(n) if n <= max => Ok(n),
        // All digits: a parse fails only on overflow.
        _ => Err(format!("{text} is too large; the most is {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_whole_and_in_range() {
        assert_eq!(parse_number("0", 0, 5), Ok(0));
        assert_eq!(parse_number(" 5 ", 0, 5), Ok(5));
        assert_eq!(
            parse_number("18446744073709551615", 0, u64::MAX),
            Ok(u64::MAX)
        );
        assert!(parse_number("6", 0, 5)
            .unwrap_err()
            .contains("the most is 5"));
        assert!(parse_number("0", 1, 5)
            .unwrap_err()
            .contains("the least is 1"));
        assert!(parse_number("-1", 0, 5).unwrap_err().contains("negative"));
        assert!(parse_number("18446744073709551616", 0, u64::MAX)
            .unwrap_err()
            .contains("too large"));
        for bad in ["", "abc", "1.5", "+1", "1e3", "0x10"] {
            assert!(parse_number(bad, 0, u64::MAX)
                .unwrap_err()
                .contains("not a whole number"));
        }
    }
}
