//! `peerlog stats`: nodes, events by kind, bytes, segments, time span, seeds and losses.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use peerlog::inspect;
use peerlog::NodeId;

use crate::args::StatsArgs;
use crate::error::Failure;
use crate::parse::parse_self;
use crate::plural::count;
use crate::progress::{Meter, Span};
use crate::{render, time};
/// Runs `peerlog stats`.
pub fn run(args: StatsArgs, out: &mut impl Write) -> Result<(), Failure> {
    let self_id = parse_self(args.self_id.as_deref())?.unwrap_or(NodeId([0; 64]));
    print(&args.dir, &self_id, args.seed_age, args.json, out)
}

fn print(
    dir: &Path,
    self_id: &NodeId,
    seed_age: Duration,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let meter = Meter::bar("reading");
    let s = inspect::stats(dir, self_id, seed_age, &meter.step("reading", Span::ALL))?;
    meter.finish();
    if json {
        writeln!(out, "{}", render::stats_json(&s))?;
        return Ok(());
    }
    let kinds: Vec<_> = s
        .events_by_kind
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let span = s.span.map_or_else(
        || "-".to_string(),
        |(a, b)| format!("{} .. {}", time::iso8601(a), time::iso8601(b)),
    );
    writeln!(
        out,
        "nodes:     {} ({} IPv6), {} with data",
        s.nodes,
        s.ipv6_nodes,
        count(s.ids as u64, "id")
    )?;
    writeln!(out, "events:    {} ({})", s.records, kinds.join(", "))?;
    writeln!(
        out,
        "bytes:     {} in records: {} live, {} dead",
        s.record_bytes, s.live_bytes, s.dead_bytes
    )?;
    writeln!(
        out,
        "segments:  {} ({} on disk), {} archived ({})",
        s.segments,
        count(s.segment_file_bytes, "byte"),
        s.archived_segments,
        count(s.archived_bytes, "byte")
    )?;
    writeln!(out, "written:   {span}")?;
    writeln!(
        out,
        "seeds:     {} with a pong within {}",
        s.seeds,
        time::duration_words(s.seed_age)
    )?;
    writeln!(
        out,
        "problems:  {} in the live log (see peerlog verify)",
        s.problems
    )?;
    let acknowledged = s.losses.iter().filter(|l| l.is_acknowledged()).count();
    writeln!(
        out,
        "losses:    {} recorded, {acknowledged} acknowledged (see peerlog verify)",
        s.losses.len()
    )?;
    for loss in s.losses.iter().filter(|l| !l.is_acknowledged()) {
        writeln!(out, "  {loss}")?;
    }
    Ok(())
}
