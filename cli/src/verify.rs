//! `peerlog verify`: every segment and record checked; the exit status says whether the log
//! is intact.

use std::io::Write;
use std::process::ExitCode;

use peerlog::inspect;

use crate::args::VerifyArgs;
use crate::error::Failure;
use crate::plural::count;
use crate::progress::{Meter, Span};
use crate::{maintain, render};
/// Runs `peerlog verify`: exit status 0 when intact, 1 when not.
pub fn run(args: VerifyArgs, out: &mut impl Write) -> Result<ExitCode, Failure> {
    let VerifyArgs {
        dir,
        strict,
        accept,
        json,
    } = args;
    let accepted = if accept {
        maintain::accept_damage(&dir)?
    } else {
        Vec::new()
    };
    let meter = Meter::bar("verifying");
    let report = inspect::verify(&dir, &meter.step("verifying", Span::ALL))?;
    meter.finish();
    if json {
        writeln!(out, "{}", render::verify_json(&report, strict, &accepted))?;
    } else {
        for loss in &accepted {
            writeln!(out, "acknowledged now: {loss}")?;
        }
        for file in &report.files {
            let seqs = file
                .seq_range
                .map_or_else(|| "-".to_string(), |(a, b)| format!("{a}..={b}"));
            writeln!(
                out,
                "{} {}: {}, seq {seqs}, {}",
                file.path.display(),
                file.role,
                count(file.records, "record"),
                count(file.size, "byte")
            )?;
        }
        for finding in &report.findings {
            let label = if finding.counts(strict) {
                "DAMAGE"
            } else if finding.is_acknowledged() {
                "acknowledged"
            } else {
                "note"
            };
            writeln!(out, "{label}: {}", render::finding_text(finding))?;
        }
        for path in &report.ignored {
            writeln!(out, "note: {}: not a peerlog file; ignored", path.display())?;
        }
        if report.evicted + report.ips_evicted > 0 {
            writeln!(
                out,
                "evictions in the live log: {} and {} (the store was full)",
                count(report.evicted, "id"),
                count(report.ips_evicted, "IP slot")
            )?;
        }
        let verdict = if report.is_intact(strict) {
            "intact"
        } else {
            "NOT intact"
        };
        writeln!(
            out,
            "{} in the live log; {verdict}",
            count(report.records, "record")
        )?;
    }
    out.flush()?;
    Ok(if report.is_intact(strict) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
