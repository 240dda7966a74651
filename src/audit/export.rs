//! Export of every event, as JSON lines or CSV.

use super::*;

/// Column names of the CSV export, in order; also the keys of the JSON lines.
pub const EXPORT_COLUMNS: [&str; 9] = [
    "seq",
    "written_at",
    "kind",
    "id",
    "ip",
    "udp",
    "tcp",
    "at",
    "fails",
];

/// The fields of one exported event, as strings (empty when the kind has no such field).
fn export_fields(record: &Record) -> [String; 9] {
    let (mut ip, mut udp, mut tcp, mut at, mut fails) = Default::default();
    match &record.event {
        Event::NodeUpdated(node) => {
            (ip, udp, tcp) = (
                node.ip.to_string(),
                node.udp.to_string(),
                node.tcp.to_string(),
            )
        }
        Event::Ping { at: t, .. } | Event::Pong { at: t, .. } => at = iso8601_precise(*t),
        Event::FindFails { fails: n, .. } => fails = n.to_string(),
        Event::NodeDeleted { .. } | Event::NodeExpired { .. } => {}
    }
    [
        record.seq.to_string(),
        iso8601_precise(record.written_at),
        record.event.kind_name().to_string(),
        record.event.id().to_string(),
        ip,
        udp,
        tcp,
        at,
        fails,
    ]
}

/// One exported event as a JSON object: every column of [`EXPORT_COLUMNS`], `null` where the
/// kind has no such field, numbers as numbers.
pub fn export_json(record: &Record) -> Value {
    let fields = export_fields(record);
    let object = EXPORT_COLUMNS
        .iter()
        .zip(fields)
        .map(|(&key, value)| {
            let value = match key {
                _ if value.is_empty() => Value::Null,
                "seq" | "udp" | "tcp" | "fails" => {
                    value.parse::<u64>().map_or(Value::Null, Value::from)
                }
                _ => Value::String(value),
            };
            (key.to_string(), value)
        })
        .collect();
    Value::Object(object)
}

/// One exported event as a CSV line (no newline). No field can hold a comma or quote.
pub fn export_csv(record: &Record) -> String {
    export_fields(record).join(",")
}

/// Every record of the live log of `dir`, in log order.
///
/// The records are collected before they are returned: a read that has to start over (a
/// segment removed by a concurrent compaction) must not have emitted half a log already.
pub fn export(dir: &Path, progress: Progress<'_>) -> Result<Vec<Record>, AuditError> {
    with_listing(dir, |segments| {
        let plan = ReplayPlan::new(segments);
        let mut records = Vec::new();
        replay_with_progress(&plan, progress, |_, _, record| records.push(record))?;
        Ok(records)
    })
}
