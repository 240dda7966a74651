//! Whole-database maintenance, timed by hand (each run needs a freshly written log, which
//! would make criterion's sampling far too slow): `expire_nodes` on 100 k nodes of which two
//! in ten have expired, and `compact` of the 100 k- and 1 M-node logs of the mixed workload.
//!
//! Prints one JSON line per figure: `{"id", "median_ns", "min_ns", "runs", "detail"}`.
//! Run with `cargo bench --bench maintenance`.

mod common;

use std::time::{Duration, Instant};

use peerlog::{Durability, NodeDb};

use common::{build_log, options, self_id, temp_dir, VERSION};

/// Runs `measure` on a freshly built log of `nodes` nodes `runs` times and prints the figure.
fn figure(id: &str, nodes: u64, runs: usize, measure: impl Fn(&NodeDb) -> String) {
    let mut times = Vec::with_capacity(runs);
    let mut detail = String::new();
    for _ in 0..runs {
        let dir = temp_dir("maintenance");
        build_log(dir.path(), nodes);
        let db = NodeDb::open_with(dir.path(), VERSION, self_id(), options(Durability::Process))
            .expect("open");
        let started = Instant::now();
        detail = measure(&db);
        times.push(started.elapsed());
        db.close().expect("close");
    }
    times.sort();
    let ns = |d: Duration| d.as_nanos();
    println!(
        "{{\"id\":\"maintenance/{id}\",\"median_ns\":{},\"min_ns\":{},\"runs\":{runs},\"detail\":\"{detail}\"}}",
        ns(times[runs / 2]),
        ns(times[0]),
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // Run as a test (`cargo test --benches`): nothing to check, and far too slow.
        return;
    }
    figure("expire_100k", 100_000, 5, |db| {
        let dropped = db.expire_nodes().expect("expire");
        format!("dropped {dropped} of {} nodes", db.len() + dropped)
    });
    for (id, nodes, runs) in [("compact_100k", 100_000, 5), ("compact_1m", 1_000_000, 2)] {
        figure(id, nodes, runs, |db| {
            let stats = db.compact().expect("compact");
            format!(
                "{} records ({} MiB) into {} ({} MiB), {} expired",
                stats.records_read,
                stats.bytes_read >> 20,
                stats.records_written,
                stats.bytes_written >> 20,
                stats.nodes_expired
            )
        });
    }
}
