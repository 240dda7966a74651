//! `peerlog history`: every event about one node, oldest first, with what it changed.

use std::io::Write;

use peerlog::inspect;

use crate::args::HistoryArgs;
use crate::error::Failure;
use crate::parse::parse_node_arg;
use crate::progress::{Meter, Span, LINES_PER_REPORT};
use crate::{render, time};
/// Runs `peerlog history`.
pub fn run(args: HistoryArgs, out: &mut impl Write) -> Result<(), Failure> {
    let HistoryArgs { dir, node, json } = args;
    let (id, endpoint) = parse_node_arg(&node).map_err(Failure::Usage)?;
    if let Some(endpoint) = endpoint {
        eprintln!(
            "peerlog: note: listing every event about the node id of this enode URL; its \
             endpoint ({}) is not a filter",
            render::endpoint_text(&endpoint)
        );
    }
    let meter = Meter::bar("reading");
    let entries = inspect::history(&dir, &id, &meter.step("reading", Span::percent(0, 95)))?;
    let printing = meter.output_step("printing", Span::percent(95, 100));
    let total = entries.len() as u64;
    for (i, entry) in entries.iter().enumerate() {
        if i % LINES_PER_REPORT == 0 {
            printing(i as u64, total);
        }
        if json {
            writeln!(out, "{}", render::history_json(entry))?;
            continue;
        }
        let mut origin = String::new();
        if entry.archived {
            origin.push_str(" [archive]");
        }
        if entry.compacted {
            origin.push_str(" [compacted]");
        }
        writeln!(
            out,
            "{} #{} {:<6} {}{origin}",
            time::iso8601(entry.record.written_at),
            entry.record.seq,
            entry.record.event.kind().name(),
            render::change_text(&entry.change)
        )?;
    }
    printing(total, total);
    meter.finish();
    if entries.is_empty() {
        // An answer, not an error: stdout stays empty (as with --json), the status 0.
        eprintln!("peerlog: note: no events about {id} in the live log or archive/");
    }
    Ok(())
}
