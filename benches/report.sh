#!/usr/bin/env bash
# Runs every benchmark with bounded time and writes BENCHMARKS.md (figures, ratios from this
# one run, the targets of issue 6, and the machine). About 15 minutes on a 2-core machine.
#
#   benches/report.sh            # everything, then BENCHMARKS.md
#   WARM=0.5 MEAS=1 benches/report.sh   # shorter criterion windows
#   ONLY=commands benches/report.sh      # only the commands on a 1 M-node log (peak RSS and
#                                        # time of each; a few minutes)
#   ONLY=seeds benches/report.sh         # only the sections of issue 21 (seeds under attack,
#                                        # the flood, seed query speed): a few minutes; the
#                                        # rest of BENCHMARKS.md stays as it is
#   ONLY=commit benches/report.sh        # only the section of issue 23 items 2 and 6 (group
#                                        # commit, the 1 M-node open): the interleaved ratios
#                                        # bench three times, about 5 minutes
#
# Environment: CARGO_TARGET_DIR (default target), PEERLOG_BENCH_DIR (where benchmark
# databases are written; default the system temporary directory, which must be a real disk,
# not tmpfs, for the synced figures to mean anything), WARM / MEAS (criterion warm-up and
# measurement seconds per benchmark, default 1 and 2), OUT (raw outputs), PEERLOG_BASELINE_CLI
# (a `peerlog` built from an older commit: its exports are timed beside this build's).
set -euo pipefail
cd "$(dirname "$0")/.."
# Absolute: the bench binaries run in benches/ (their package's directory), and criterion
# writes its figures under $CARGO_TARGET_DIR/criterion as it sees it from there.
CARGO_TARGET_DIR=$(realpath -m "${CARGO_TARGET_DIR:-target}")
export CARGO_TARGET_DIR
OUT=${OUT:-$CARGO_TARGET_DIR/bench-report}
WARM=${WARM:-1}
MEAS=${MEAS:-2}
started=$(date +%s)

# The sections of issue 21, into $OUT/seeds.jsonl and $OUT/seeds-machine.txt.
seeds_sections() {
    local began
    began=$(date +%s)
    : >"$OUT/seeds.jsonl"
    echo "== seeds (attack shares, query speed)" >&2
    cargo bench -p peerlog-bench --bench seeds 2>"$OUT/seeds.err" | tee -a "$OUT/seeds.jsonl" >&2
    for compaction in on off; do
        for mode in --alone --interleaved; do
            echo "== flood, compaction $compaction, $mode" >&2
            cargo bench -p peerlog-bench --bench flood -- --compaction "$compaction" "$mode" \
                2>>"$OUT/flood.err" | tee -a "$OUT/seeds.jsonl" >&2
        done
    done
    echo "== memory of the subnet groups" >&2
    cargo run --release --example memory -- --seeds 2>>"$OUT/memory.err" | tee -a "$OUT/seeds.jsonl" >&2
    cargo run --release --example memory -- --seeds --one-per-subnet 2>>"$OUT/memory.err" \
        | tee -a "$OUT/seeds.jsonl" >&2
    {
        echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
        echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (src modified)')"
        echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
        echo "duration: $(($(date +%s) - began)) s"
    } >"$OUT/seeds-machine.txt"
}

# The section of issue 23 items 2 and 6, into $OUT/commit-run<N>.jsonl and
# $OUT/commit-machine.txt: the durable-writer contenders and the 1 M-node open, interleaved,
# in three runs of the ratios bench (each a process of its own, minutes apart), because on this
# shared machine the disk's speed moves from one minute to the next.
commit_sections() {
    local began run
    began=$(date +%s)
    for run in 1 2 3; do
        echo "== group commit and the 1 M-node open, run $run of 3" >&2
        PEERLOG_RATIO_ONLY=_1_thread,group_10ms_16,raw_gathered,_1m PEERLOG_RATIO_ROUNDS=${COMMIT_ROUNDS:-9} \
            cargo bench -p peerlog-bench --bench ratios 2>"$OUT/commit-run$run.err" \
            | tee "$OUT/commit-run$run.jsonl" >&2
        echo "{\"id\":\"load\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$OUT/commit-run$run.jsonl"
    done
    {
        echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
        echo "file system: $(df -T "${PEERLOG_BENCH_DIR:-${TMPDIR:-/tmp}}" | awk 'NR==2 {print $2 " on " $1}')"
        echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src benches || echo ' (modified)')"
        echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
        echo "duration: $(($(date +%s) - began)) s"
    } >"$OUT/commit-machine.txt"
}

# The commands on a 1 M-node log, into $OUT/commands.jsonl (report.py reads it beside
# results.jsonl).
commands_section() {
    echo "== commands at 1 M nodes" >&2
    python3 benches/commands.py "$CARGO_TARGET_DIR/release/peerlog" \
        "$CARGO_TARGET_DIR/release/examples/memory" "${PEERLOG_BENCH_DIR:-${TMPDIR:-/tmp}}" \
        2>"$OUT/commands.err" | tee "$OUT/commands.jsonl" >&2
}

# ONLY=<name>: rewrites that part of BENCHMARKS.md from this run, the rest as it was; says
# what ($2) and how long it took, and ends the script.
update_section() {
    python3 benches/report.py "$CARGO_TARGET_DIR/criterion" "$OUT" --only "$1" BENCHMARKS.md \
        >"$OUT/BENCHMARKS.md.new"
    mv "$OUT/BENCHMARKS.md.new" BENCHMARKS.md
    echo "updated $2 of BENCHMARKS.md in $(($(date +%s) - started)) s" >&2
    exit 0
}

if [ "${ONLY:-}" = commit ]; then
    mkdir -p "$OUT"
    cargo build --release -p peerlog-bench --bench ratios
    commit_sections
    update_section commit "the group-commit section"
elif [ "${ONLY:-}" = seeds ]; then
    mkdir -p "$OUT"
    cargo build --release -p peerlog-bench --benches
    cargo build --release --examples
    seeds_sections
    update_section seeds "the seed sections"
elif [ "${ONLY:-}" = commands ]; then
    mkdir -p "$OUT"
    cargo build --release -p peerlog-cli
    cargo build --release --examples
    commands_section
    update_section commands "the commands section"
elif [ -n "${ONLY:-}" ]; then
    echo "ONLY=$ONLY: only ONLY=seeds, ONLY=commit and ONLY=commands are known" >&2
    exit 2
fi

rm -rf "$CARGO_TARGET_DIR/criterion" "$OUT"
mkdir -p "$OUT"
cargo build --release -p peerlog-bench --features compare --benches
cargo build --release --examples

crit=(--warm-up-time "$WARM" --measurement-time "$MEAS" --sample-size 10 --noplot)
for bench in write baseline group_commit queries replay; do
    echo "== $bench" >&2
    cargo bench -p peerlog-bench --bench "$bench" -- "${crit[@]}" 2>&1 | tee "$OUT/$bench.log" >&2
done
echo "== compare" >&2
cargo bench -p peerlog-bench --features compare --bench compare -- "${crit[@]}" 2>&1 | tee "$OUT/compare.log" >&2
echo "== ratios (interleaved)" >&2
cargo bench -p peerlog-bench --bench ratios 2>"$OUT/ratios.err" | tee "$OUT/results.jsonl" >&2
echo "== maintenance" >&2
cargo bench -p peerlog-bench --bench maintenance 2>"$OUT/maintenance.err" | tee -a "$OUT/results.jsonl" >&2
echo "== memory" >&2
cargo run --release --example memory 2>"$OUT/memory.err" | tee -a "$OUT/results.jsonl" >&2
cargo run --release --example memory -- --signed 2>>"$OUT/memory.err" | tee -a "$OUT/results.jsonl" >&2
echo "== records (interleaved)" >&2
cargo bench -p peerlog-bench --bench records 2>"$OUT/records.err" | tee -a "$OUT/results.jsonl" >&2
cargo build --release -p peerlog-cli
commands_section

seeds_sections
commit_sections

bench_dir=${PEERLOG_BENCH_DIR:-${TMPDIR:-/tmp}}
{
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo "cores: $(nproc) ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core)"
    echo "memory: $(free -h | awk '/^Mem:/ {print $2}')"
    echo "kernel: $(uname -sr)"
    echo "filesystem: $(df -T "$bench_dir" | awk 'NR==2 {print $2 " on " $1 " (" $7 ")"}'), options $(findmnt -no OPTIONS --target "$bench_dir" 2>/dev/null || echo unknown)"
    echo "rustc: $(rustc --version)"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (src modified)')"
    echo "criterion: warm-up ${WARM} s, measurement ${MEAS} s, 10 samples, median reported"
    echo "duration: $(($(date +%s) - started)) s"
} >"$OUT/machine.txt"

python3 benches/report.py "$CARGO_TARGET_DIR/criterion" "$OUT" >BENCHMARKS.md
echo "wrote BENCHMARKS.md in $(($(date +%s) - started)) s" >&2
