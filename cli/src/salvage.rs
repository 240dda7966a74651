//! `peerlog salvage`: move segments whose header cannot be read into `damaged/`, and the
//! hint that points other commands' errors at it.

use std::io::Write;
use std::path::Path;

use peerlog::inspect::{self, InspectError, Lost, SalvageReport, SalvagedSegment};
use serde_json::{json, Value};

use crate::args::SalvageArgs;
use crate::error::{CliError, Failure};
use crate::plural::count;

/// Runs the salvage of `dir` and prints what it did.
/// Runs `peerlog salvage`, naming DIR absolute, as the files it moves are.
pub fn command(args: SalvageArgs, out: &mut impl Write) -> Result<(), Failure> {
    let dir = std::path::absolute(&args.dir).unwrap_or(args.dir);
    run(&dir, args.json, out)
}

pub fn run(dir: &Path, json: bool, out: &mut impl Write) -> Result<(), Failure> {
    let report = inspect::salvage(dir)?;
    if json {
        writeln!(out, "{}", report_json(&report))?;
        return Ok(());
    }
    if report.is_empty() {
        writeln!(
            out,
            "nothing to salvage: every segment header in {} is readable; nothing changed",
            dir.display()
        )?;
        return Ok(());
    }
    for segment in &report.moved {
        writeln!(out, "{}", moved_text(segment))?;
    }
    if let Some((file, next_seq)) = &report.resumed {
        let first_lost = report
            .moved
            .iter()
            .filter_map(|s| match s.lost {
                Lost::After(n) => Some(n + 1),
                _ => None,
            })
            .min()
            .unwrap_or(*next_seq);
        let lost = match next_seq - first_lost.min(*next_seq) {
            0 => String::new(),
            1 => format!("; sequence number {first_lost} counts as lost"),
            _ => format!(
                "; sequence numbers {first_lost}..={} count as lost",
                next_seq - 1
            ),
        };
        writeln!(
            out,
            "the log goes on at sequence number {next_seq} in {}, past anything the end of the \
             log moved aside could hold{lost}",
            file.display()
        )?;
    }
    writeln!(
        out,
        "moved {} aside; the database opens with what the other segments hold",
        count(report.moved.len() as u64, "unreadable segment")
    )?;
    Ok(())
}

/// One moved segment in words: where from, where to, why, and what was lost.
fn moved_text(segment: &SalvagedSegment) -> String {
    let held = if segment.holds_nothing {
        "it holds nothing; "
    } else {
        ""
    };
    let lost = match segment.lost {
        // An empty file at the end of the log: it may never have held a record.
        Lost::After(n) if segment.holds_nothing && n > 0 => {
            format!("sequence numbers after {n} lost, if it held any")
        }
        Lost::After(0) if segment.holds_nothing => {
            "every sequence number it held lost, if it held any".to_string()
        }
        lost => lost.to_string(),
    };
    format!(
        "moved {} to {} ({}: {}); {held}{lost}",
        segment.path.display(),
        segment.moved_to.display(),
        count(segment.size, "byte"),
        segment.reason
    )
}

/// The stable `salvage --json` object (docs/CLI.md).
fn report_json(report: &SalvageReport) -> Value {
    let moved: Vec<Value> = report
        .moved
        .iter()
        .map(|s| {
            let (kind, first, last) = match s.lost {
                Lost::Range(a, b) => ("range", Some(a), Some(b)),
                Lost::After(n) => ("after", Some(n + 1), None),
                Lost::Nothing => ("nothing", None, None),
                Lost::ArchivedHistory => ("archived_history", None, None),
                _ => ("unknown", None, None),
            };
            json!({
                "file": s.path.display().to_string(),
                "moved_to": s.moved_to.display().to_string(),
                "archived": s.archived,
                "size": s.size,
                "reason": s.reason,
                "holds_nothing": s.holds_nothing,
                "lost": kind,
                "lost_first_seq": first,
                "lost_last_seq": last,
            })
        })
        .collect();
    let resumed = report.resumed.as_ref().map(
        |(file, next_seq)| json!({ "file": file.display().to_string(), "next_seq": next_seq }),
    );
    json!({ "changed": !report.is_empty(), "moved": moved, "resumed": resumed })
}

/// The one-line message for a failed command: the error, and for a segment whose header
/// cannot be read, the command that moves it aside.
pub fn explain(e: &CliError) -> String {
    let damaged = match e {
        CliError::Inspect(InspectError::Db(peerlog::Error::DamagedHeader { path, .. }))
        | CliError::Db(peerlog::Error::DamagedHeader { path, .. }) => path,
        _ => return e.to_string(),
    };
    // The database is the segment's folder, or the one above it for an archived segment.
    let mut dir = damaged.parent().unwrap_or(Path::new("."));
    if dir.file_name().is_some_and(|n| n == peerlog::ARCHIVE_DIR) {
        dir = dir.parent().unwrap_or(dir);
    }
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    format!(
        "{e}; run `peerlog salvage {}` to move it aside",
        dir.display()
    )
}
