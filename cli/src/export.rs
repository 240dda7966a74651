//! `peerlog export`: every event of the log, one a line, as JSON lines or CSV.

use std::collections::BTreeSet;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::SystemTime;

use peerlog::inspect;
use peerlog::{EventKind, LogRecord};

use crate::args::{ExportArgs, Format};
use crate::error::Failure;
use crate::progress::{Meter, Span};
use crate::render;

/// Bytes of rows `export` gathers before each write to its output.
const EXPORT_CHUNK: usize = 64 << 10;

/// Which events `export` prints.
struct ExportFilter {
    since: Option<SystemTime>,
    kinds: BTreeSet<EventKind>,
}

impl ExportFilter {
    fn keeps(&self, record: &LogRecord) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&record.event.kind()))
            && self.since.is_none_or(|t| record.written_at >= t)
    }
}

/// Runs `peerlog export`.
pub fn run(args: ExportArgs, out: &mut impl Write) -> Result<(), Failure> {
    let filter = ExportFilter {
        since: args.since,
        kinds: args.kind.into_iter().collect(),
    };
    print(&args.dir, args.format, &filter, args.with_archive, out)
}

fn print(
    dir: &Path,
    format: Format,
    filter: &ExportFilter,
    with_archive: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    // Records are printed as they are read (constant memory; `export | head` stops the read),
    // so one bar covers both.
    let meter = Meter::bar("exporting");
    let progress = meter.output_step("exporting", Span::percent(0, 100));
    if let Format::Csv = format {
        writeln!(out, "{}", render::EXPORT_COLUMNS.join(","))?;
    }
    let mut writer = render::ExportRows::new(match format {
        Format::Jsonl => render::RowStyle::Json,
        Format::Csv => render::RowStyle::Csv,
    });
    // Rows go into one buffer, reused, handed to `out` some 64 KiB at a time: formatting,
    // not the disk, bounds an export.
    let mut rows = Vec::with_capacity(EXPORT_CHUNK + 4096);
    let mut failed = None;
    let mut on_record = |record: LogRecord| {
        if !filter.keeps(&record) {
            return ControlFlow::Continue(());
        }
        writer.push(&mut rows, &record);
        rows.push(b'\n');
        if rows.len() < EXPORT_CHUNK {
            return ControlFlow::Continue(());
        }
        let written = out.write_all(&rows);
        rows.clear();
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    };
    if with_archive {
        inspect::export_with_archive_each(dir, &progress, &mut on_record)?;
    } else {
        inspect::export_each(dir, &progress, &mut on_record)?;
    }
    if failed.is_none() {
        out.write_all(&rows)?;
    }
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
