//! `peerlog audit`: the poisoning audit (`peerlog::inspect::audit`), drawn as text bars or
//! printed as one JSON object.

use std::io::Write;
use std::time::SystemTime;

use peerlog::inspect::{self, Audit, AuditOptions, Distances, SubnetShare};
use peerlog::{NodeId, Subnet};
use serde_json::{json, Value};

use crate::args::AuditArgs;
use crate::error::Failure;
use crate::plural::count;
use crate::progress::{Meter, Span};
use crate::time::{duration_words, opt_time};

/// Width of a full bar (100 %, or the largest count on a log scale).
const BAR: usize = 40;
/// Subnets listed per ranking in the text output.
const LISTED: usize = 10;

pub fn run(args: &AuditArgs, out: &mut impl Write) -> Result<(), Failure> {
    let self_id = match args.self_id.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<NodeId>().map_err(|e| match e {
            peerlog::Error::InvalidInput(why) => Failure::Usage(format!("--self-id: {why}")),
            other => Failure::from(other),
        })?),
    };
    let opts = AuditOptions {
        self_id,
        max_nodes: args.max_nodes,
        with_archive: args.with_archive,
        now: SystemTime::now(),
        top: LISTED,
    };
    let meter = Meter::bar("reading");
    let audit = inspect::audit(&args.dir, &opts, &meter.step("reading", Span::ALL))?;
    meter.finish();
    if args.json {
        writeln!(out, "{}", to_json(&audit))?;
    } else {
        // Lines drawn with bars end in spaces where a bar is short: trimmed.
        let mut report = Vec::new();
        text(&audit, &mut report)?;
        for line in String::from_utf8_lossy(&report).lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

/// A share in percent: one decimal below 10 %, whole above.
fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p < 9.95 {
        format!("{p:.1} %")
    } else {
        format!("{p:.0} %")
    }
}

/// A bar of `share` of [`BAR`] characters.
fn bar(share: f64) -> String {
    "#".repeat((share.clamp(0.0, 1.0) * BAR as f64).round() as usize)
}

/// An ENR key as text: printable ASCII as it is, anything else in hex.
fn key_text(key: &[u8]) -> String {
    if !key.is_empty() && key.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(key).into_owned()
    } else {
        format!(
            "0x{}",
            key.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }
}

fn subnet_text(subnet: Option<Subnet>) -> String {
    subnet.map_or_else(|| "(no endpoint)".to_string(), |s| s.to_string())
}

fn text(a: &Audit, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "ids:        {} of max_nodes {} ({}); {} with an endpoint on {}",
        a.ids,
        a.max_nodes,
        percent(a.ids as f64 / a.max_nodes.max(1) as f64),
        a.nodes,
        count(a.subnets as u64, "subnet")
    )?;
    writeln!(
        out,
        "fresh:      {} (a pong within 5 days, from the record's IP) on {}",
        count(a.fresh as u64, "node"),
        count(a.fresh_subnets as u64, "subnet")
    )?;
    let evicted = if a.evictions == 0 {
        "none".to_string()
    } else {
        let by: Vec<String> = a
            .evictions_by_subnet
            .iter()
            .take(LISTED)
            .map(|(s, n)| format!("{} {n}", subnet_text(*s)))
            .collect();
        format!("{} ({})", a.evictions, by.join(", "))
    };
    let place = if a.with_archive {
        "the live log and archive/"
    } else {
        "the live log"
    };
    writeln!(
        out,
        "evictions:  {evicted} in {place}; {} evicted",
        count(a.ip_evictions, "IP slot")
    )?;

    writeln!(out)?;
    writeln!(
        out,
        "subnets holding the most fresh nodes, and their share of {} seeds from query_seeds \
         (uniform over nodes) and seeds() (2 per subnet, uniform over subnets):",
        inspect::AUDIT_SEEDS
    )?;
    if a.top_by_fresh.is_empty() {
        writeln!(out, "  (no fresh node)")?;
    }
    for s in &a.top_by_fresh {
        shares_line(s, out)?;
    }
    writeln!(out)?;
    writeln!(out, "subnets holding the most nodes:")?;
    if a.top_by_nodes.is_empty() {
        writeln!(out, "  (no node with an endpoint)")?;
    }
    for s in &a.top_by_nodes {
        let share = s.nodes as f64 / a.nodes.max(1) as f64;
        writeln!(
            out,
            "  {:<20} {:>6} {:>6}  {}",
            s.subnet.to_string(),
            s.nodes,
            percent(share),
            bar(share)
        )?;
    }

    writeln!(out)?;
    for window in &a.new_ids {
        let by: Vec<String> = window
            .by_subnet
            .iter()
            .take(5)
            .map(|(s, n)| format!("{} {n}", subnet_text(*s)))
            .collect();
        let by = if by.is_empty() {
            String::new()
        } else {
            format!(": {}", by.join(", "))
        };
        let last = match window.window.as_secs() {
            3600 => "hour".to_string(),
            86400 => "day".to_string(),
            _ => duration_words(window.window),
        };
        writeln!(out, "new ids in the last {last}: {}{by}", window.ids)?;
    }
    if a.first_seen_unknown > 0 {
        writeln!(
            out,
            "  ({} restated by a compaction, first seen earlier: not counted as new; \
             --with-archive reads their first events if archive/ kept them)",
            count(a.first_seen_unknown as u64, "id")
        )?;
    }

    writeln!(out)?;
    let keys: Vec<String> = a
        .keys
        .iter()
        .map(|(k, n)| format!("{} {n}", key_text(k)))
        .collect();
    writeln!(
        out,
        "ENR keys of {}: {}",
        count(a.signed_records as u64, "signed record"),
        if keys.is_empty() {
            "-".to_string()
        } else {
            keys.join(", ")
        }
    )?;

    writeln!(out)?;
    match &a.distances {
        Some(d) => distances_text(d, out)?,
        None => writeln!(
            out,
            "log distances: skipped (the log does not record the node's own id; give --self-id)"
        )?,
    }

    writeln!(out)?;
    if a.findings.is_empty() {
        writeln!(out, "verdict: nothing flagged")?;
    } else {
        writeln!(out, "verdict: {} flagged", a.findings.len())?;
        for f in &a.findings {
            writeln!(out, "  FLAGGED: {}", f.text)?;
        }
    }
    Ok(())
}

fn shares_line(s: &SubnetShare, out: &mut impl Write) -> std::io::Result<()> {
    // Half bars: 100 % is BAR / 2 characters each.
    let half = |share: f64| bar(share / 2.0);
    writeln!(
        out,
        "  {:<20} {:>6} fresh  query_seeds {:>6} {:<w$}  seeds() {:>6} {}",
        s.subnet.to_string(),
        s.fresh,
        percent(s.uniform_share),
        half(s.uniform_share),
        percent(s.spread_share),
        half(s.spread_share),
        w = BAR / 2
    )
}

/// Bar length of `x` on a log scale where `max` is a full bar.
fn log_len(x: f64, max: f64) -> usize {
    if x <= 0.0 || max <= 0.0 {
        return 0;
    }
    ((x + 1.0).log2() / (max + 1.0).log2() * BAR as f64).round() as usize
}

fn distances_text(d: &Distances, out: &mut impl Write) -> std::io::Result<()> {
    let short = d.self_id.to_string();
    writeln!(
        out,
        "log distance of {} from this node ({}…{}), against random ids (bars on a log \
         scale; | is what random ids give):",
        count(d.ids as u64, "id"),
        &short[..8],
        &short[short.len() - 4..]
    )?;
    // From the closest id, or where random ids would give half an id, up to 256.
    let first_seen = d.counts.iter().position(|&c| c > 0).unwrap_or(256);
    let first_expected = d.expected.iter().position(|&e| e >= 0.5).unwrap_or(256);
    let from = first_seen.min(first_expected);
    let max = (from..=256)
        .map(|i| (d.counts[i] as f64).max(d.expected[i]))
        .fold(0.0, f64::max);
    for i in from..=256 {
        let (count, expected) = (d.counts[i], d.expected[i]);
        let mut row: Vec<char> = std::iter::repeat_n('#', log_len(count as f64, max)).collect();
        let mark = log_len(expected, max);
        if row.len() <= mark {
            row.resize(mark, ' ');
            row.push('|');
        } else {
            row[mark] = '|';
        }
        let row: String = row.into_iter().collect();
        let flag = if d.flagged.contains(&(i as u32)) {
            format!(
                "  <- {:.0}x random",
                count as f64 / expected.max(f64::MIN_POSITIVE)
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {i:>3} {count:>6} {:<w$} {expected:>9.2}{flag}",
            row,
            w = BAR + 1
        )?;
    }
    if let Some((at, count, expected)) = d.flagged_within {
        writeln!(
            out,
            "  within {at}: {count} ids, random ids give {expected:.2}"
        )?;
    }
    Ok(())
}

fn share_json(s: &SubnetShare) -> Value {
    json!({
        "subnet": s.subnet.to_string(),
        "nodes": s.nodes,
        "fresh": s.fresh,
        "query_seeds_share": s.uniform_share,
        "seeds_share": s.spread_share,
    })
}

fn to_json(a: &Audit) -> Value {
    let subnet = |s: &Option<Subnet>| s.map(|s| s.to_string());
    let distances = a.distances.as_ref().map(|d| {
        let buckets: Vec<Value> = (0..=256usize)
            .filter(|&i| d.counts[i] > 0 || d.expected[i] >= 0.5)
            .map(|i| {
                json!({
                    "distance": i,
                    "ids": d.counts[i],
                    "expected": d.expected[i],
                    "flagged": d.flagged.contains(&(i as u32)),
                })
            })
            .collect();
        json!({
            "self_id": d.self_id.to_string(),
            "ids": d.ids,
            "buckets": buckets,
            "flagged_within": d.flagged_within.map(|(at, ids, expected)| json!({
                "distance": at, "ids": ids, "expected": expected,
            })),
        })
    });
    json!({
        "now": opt_time(Some(a.now)),
        "with_archive": a.with_archive,
        "ids": a.ids,
        "max_nodes": a.max_nodes,
        "nodes": a.nodes,
        "fresh": a.fresh,
        "subnets": a.subnets,
        "fresh_subnets": a.fresh_subnets,
        "seeds": inspect::AUDIT_SEEDS,
        "top_by_fresh": a.top_by_fresh.iter().map(share_json).collect::<Vec<_>>(),
        "top_by_nodes": a.top_by_nodes.iter().map(share_json).collect::<Vec<_>>(),
        "evictions": a.evictions,
        "evictions_by_subnet": a.evictions_by_subnet.iter().map(|(s, n)| json!({
            "subnet": subnet(s), "evictions": n,
        })).collect::<Vec<_>>(),
        "ip_evictions": a.ip_evictions,
        "signed_records": a.signed_records,
        "keys": a.keys.iter().map(|(k, n)| json!({
            "key": key_text(k), "records": n,
        })).collect::<Vec<_>>(),
        "distances": distances,
        "new_ids": a.new_ids.iter().map(|w| json!({
            "window_secs": w.window.as_secs(),
            "ids": w.ids,
            "by_subnet": w.by_subnet.iter().map(|(s, n)| json!({
                "subnet": subnet(s), "ids": n,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "first_seen_unknown": a.first_seen_unknown,
        "findings": a.findings.iter().map(|f| json!({
            "kind": f.kind.name(),
            "subnet": subnet(&f.subnet),
            "text": f.text,
        })).collect::<Vec<_>>(),
    })
}
