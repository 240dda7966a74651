//! `peerlog compact` and `peerlog expire`: maintenance with the lock taken, and what it did.

use std::io::Write;
use std::path::Path;

use peerlog::{
    inspect, CompactStats, Damage, DamageState, Error, NodeDb, NodeId, Options, ARCHIVE_DIR,
};
use serde_json::{json, Value};

use crate::args::OpenArgs;
use crate::error::{CliError, Failure};
use crate::parse::parse_self;
use crate::plural::count;
use crate::progress::Meter;
use crate::render;

/// How `compact` and `expire` open a database.
#[derive(Clone, Debug, Default)]
pub struct Maintenance {
    /// Protocol version to open with; `None` takes the one in the segment headers. A version
    /// that differs from the headers is refused (opening with it would wipe the database).
    pub protocol_version: Option<u64>,
    /// The local node's id (its own record is dropped by expiration).
    pub self_id: Option<NodeId>,
    /// Options to open with (expiration, keep_history, ...).
    pub options: Options,
}

/// What `compact` or `expire` did.
#[derive(Clone, Debug, Default)]
pub struct MaintenanceReport {
    /// Nodes with a record before.
    pub nodes_before: usize,
    /// Nodes with a record after.
    pub nodes_after: usize,
    /// Node records dropped by expiration.
    pub nodes_expired: usize,
    /// IP slots dropped by expiration from nodes that stay.
    pub ips_expired: usize,
    /// What compaction did (`None` for `expire`).
    pub compaction: Option<CompactStats>,
    /// Segment files before and after.
    pub segments: (usize, usize),
    /// The losses the log records afterwards (see [`NodeDb::losses`]).
    pub losses: Vec<Damage>,
}

fn count_segments(dir: &Path) -> Result<usize, CliError> {
    Ok(inspect::segments(dir)?.len())
}

/// Opens `dir` for writing with `given` protocol version, else the one its headers carry,
/// refusing a directory without a database (opening would create one) and a version that
/// differs from its headers (opening with it would wipe the database: the library refuses).
fn open_existing(dir: &Path, how: &Maintenance) -> Result<NodeDb, CliError> {
    let in_place = inspect::protocol_version(dir)?;
    let options = Options {
        wipe_on_version_change: false,
        ..how.options.clone()
    };
    let self_id = how.self_id.unwrap_or(NodeId([0; 64]));
    Ok(NodeDb::open_with(
        dir,
        how.protocol_version.unwrap_or(in_place),
        self_id,
        options,
    )?)
}

/// Names the step running: `opening`, `compacting` or `expiring`, `closing`.
pub type Stage<'a> = &'a dyn Fn(&'static str);

/// Takes the lock of `dir`, compacts its log (dropping expired nodes first) and closes it.
pub fn compact(
    dir: &Path,
    how: &Maintenance,
    stage: Stage<'_>,
) -> Result<MaintenanceReport, CliError> {
    maintain(dir, how, stage, "compacting", |db| {
        let stats = db.compact()?;
        let expired = (stats.nodes_expired, stats.ips_expired);
        Ok((expired, Some(stats)))
    })
}

/// Takes the lock of `dir`, drops expired nodes and closes it.
pub fn expire(
    dir: &Path,
    how: &Maintenance,
    stage: Stage<'_>,
) -> Result<MaintenanceReport, CliError> {
    maintain(dir, how, stage, "expiring", |db| {
        let stats = db.expire()?;
        Ok(((stats.nodes_expired, stats.ips_expired), None))
    })
}

/// Opens `dir`, runs `job` (which returns the nodes and IP slots it expired and what it
/// compacted), closes it, and reports the counts before and after.
fn maintain(
    dir: &Path,
    how: &Maintenance,
    stage: Stage<'_>,
    job_name: &'static str,
    job: impl FnOnce(&NodeDb) -> Result<((usize, usize), Option<CompactStats>), Error>,
) -> Result<MaintenanceReport, CliError> {
    stage("opening");
    let db = open_existing(dir, how)?;
    let before = (db.len(), count_segments(dir)?);
    stage(job_name);
    let ((nodes_expired, ips_expired), compaction) = job(&db)?;
    let nodes_after = db.len();
    let losses = db.losses();
    stage("closing");
    db.close()?;
    Ok(MaintenanceReport {
        nodes_before: before.0,
        nodes_after,
        nodes_expired,
        ips_expired,
        compaction,
        segments: (before.1, count_segments(dir)?),
        losses,
    })
}

/// Takes the lock of `dir` and acknowledges every damaged place in it (see
/// [`NodeDb::accept_damage`]); returns those acknowledged now.
pub fn accept_damage(dir: &Path) -> Result<Vec<Damage>, CliError> {
    let db = open_existing(dir, &Maintenance::default())?;
    let accepted = db.accept_damage()?;
    db.close()?;
    Ok(accepted)
}

/// Runs `peerlog compact` (`compact` is `Some(keep_history)`) or `peerlog expire` (`None`).
pub fn run(open: OpenArgs, compact: Option<bool>, out: &mut impl Write) -> Result<(), Failure> {
    let how = Maintenance {
        protocol_version: open.protocol_version,
        self_id: parse_self(open.self_id.as_deref())?,
        options: Options {
            expiration: open.expiration,
            keep_history: compact.unwrap_or(false),
            ..Options::default()
        },
    };
    let meter = Meter::spinner("opening");
    let stage = |what: &'static str| meter.label(what);
    let report = match compact {
        Some(_) => self::compact(&open.dir, &how, &stage)?,
        None => self::expire(&open.dir, &how, &stage)?,
    };
    meter.finish();
    if open.json {
        writeln!(out, "{}", maintenance_json(&report))?;
        return Ok(());
    }
    // Expiry also drops the liveness a staying node had at IPs gone silent.
    writeln!(
        out,
        "nodes: {} -> {} ({} expired); IP slots: {} expired; segments: {} -> {}",
        report.nodes_before,
        report.nodes_after,
        report.nodes_expired,
        report.ips_expired,
        report.segments.0,
        report.segments.1
    )?;
    if let Some(c) = &report.compaction {
        writeln!(
            out,
            "compacted {}: {} ({}) -> {} ({})",
            count(c.segments_read as u64, "segment"),
            count(c.records_read, "record"),
            count(c.bytes_read, "byte"),
            count(c.records_written, "record"),
            count(c.bytes_written, "byte")
        )?;
        for problem in &c.problems {
            let recorded = match problem.state {
                DamageState::Found => "",
                _ => "recorded as a loss in the log, ",
            };
            writeln!(
                out,
                "DAMAGE found: {problem}; {recorded}the segment moved to {ARCHIVE_DIR}/"
            )?;
        }
    }
    if !report.losses.is_empty() {
        let acknowledged = report.losses.iter().filter(|l| l.is_acknowledged()).count();
        writeln!(
            out,
            "losses the log records: {}, {acknowledged} acknowledged (see peerlog verify)",
            report.losses.len()
        )?;
        for loss in report.losses.iter().filter(|l| !l.is_acknowledged()) {
            writeln!(out, "  {loss}")?;
        }
    }
    Ok(())
}

/// The stable `compact --json` / `expire --json` object.
fn maintenance_json(report: &MaintenanceReport) -> Value {
    let mut out = json!({
        "nodes_before": report.nodes_before,
        "nodes_after": report.nodes_after,
        "nodes_expired": report.nodes_expired,
        "ips_expired": report.ips_expired,
        "segments_before": report.segments.0,
        "segments_after": report.segments.1,
        "losses": report.losses.iter().map(render::loss_json).collect::<Vec<_>>(),
    });
    if let (Some(c), Value::Object(map)) = (&report.compaction, &mut out) {
        map.extend([
            ("segments_read".to_string(), json!(c.segments_read)),
            ("records_read".to_string(), json!(c.records_read)),
            ("bytes_read".to_string(), json!(c.bytes_read)),
            ("records_written".to_string(), json!(c.records_written)),
            ("bytes_written".to_string(), json!(c.bytes_written)),
            (
                "problems".to_string(),
                json!(c
                    .problems
                    .iter()
                    .map(render::problem_json)
                    .collect::<Vec<_>>()),
            ),
        ]);
    }
    out
}
