#!/usr/bin/env python3
"""Peak resident size and time of each `peerlog` command on a 1 M-node demo database, and of
`NodeDb::open` on the same log (examples/memory.rs --open): JSON lines for BENCHMARKS.md.

    benches/commands.py PEERLOG MEMORY_EXAMPLE WORK_DIR [NODES]

With PEERLOG_BASELINE_CLI=<another build of peerlog> (the build issue 23 was measured on),
`dump`, `dump --json` and each export run three times each, alternating with that build on the
same log (`<label>_baseline`), and the median of each is reported: the speed-ups BENCHMARKS.md
shows.

Each command runs once, its output to /dev/null, under GNU time (`/usr/bin/time -f %M`): peak
resident size and wall time. Not this script's own `wait4`: on Linux a child's ru_maxrss starts
from the resident size of the process that forked it (this Python), which would hide small
figures; `time` forks the command from a process of a few MiB. The database is made by
`peerlog demo` (half signed records, per-IP liveness) in WORK_DIR, which is removed at the end.

`compact_library` is the library's compaction (`NodeDb::compact`) inside an open database, on a
copy of the log made before `peerlog compact` runs: `examples/memory.rs --compact` reads the
peak resident size after the open, resets it, compacts and reads it again, so that its figure is
the compaction's peak with the open index resident (the issue 23 goal: ≤ 1.2x open, as for
`peerlog compact`, whose whole process GNU time measures).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile


GNU_TIME = "/usr/bin/time"


# The commands timed beside the baseline build, and how many times each side runs.
COMPARED = ("dump", "dump_json", "export_jsonl", "export_csv")
COMPARED_RUNS = 3


def run_timed(label, argv):
    """Runs `argv` once under GNU time: (peak resident bytes, wall seconds)."""
    with tempfile.NamedTemporaryFile(mode="r") as figures, open(os.devnull, "wb") as sink:
        run = subprocess.run(
            [GNU_TIME, "-f", "%M %e", "-o", figures.name, *argv],
            stdout=sink,
            stderr=subprocess.PIPE,
        )
        # verify exits 1 on damage; a demo database has none, so anything but 0 is a failure.
        if run.returncode != 0:
            errors = run.stderr.decode(errors="replace")
            sys.exit(f"{label}: {' '.join(argv)} exited {run.returncode}: {errors}")
        kib, secs = figures.read().split()[-2:]
    return int(kib) * 1024, float(secs)


def report(label, rss, secs, runs=1):
    line = {"id": f"command/{label}", "rss_bytes": rss, "secs": secs, "runs": runs}
    print(json.dumps(line), flush=True)
    print(f"{label}: {rss / 1048576:.1f} MiB peak, {secs:.2f} s", file=sys.stderr)


def measure(label, argv):
    report(label, *run_timed(label, argv))


def measure_beside(label, argv, baseline_argv):
    """`argv` and `baseline_argv` in turn, COMPARED_RUNS times each: the median time of each,
    and its largest peak, so that load from other processes falls on both alike."""
    runs = {label: [], f"{label}_baseline": []}
    for _ in range(COMPARED_RUNS):
        runs[label].append(run_timed(label, argv))
        runs[f"{label}_baseline"].append(run_timed(f"{label}_baseline", baseline_argv))
    for name, figures in runs.items():
        times = sorted(secs for _, secs in figures)
        report(name, max(rss for rss, _ in figures), times[len(times) // 2], len(times))


def measure_library_compaction(memory, db):
    """`NodeDb::compact` on a copy of `db`, its own peak read inside the process."""
    copy = db + "-library"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(db, copy)
    try:
        out = subprocess.run([memory, "--compact", copy], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"compact_library: exited {out.returncode}: {out.stderr}")
        lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
        item = json.loads(lines[-1])
        print(json.dumps(item), flush=True)
        print(f"compact_library: {item['rss_bytes'] / 1048576:.1f} MiB peak "
              f"(open in the same process: {item['open_rss_bytes'] / 1048576:.1f} MiB), "
              f"{item['secs']} s", file=sys.stderr)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def first_id(peerlog, db):
    out = subprocess.run([peerlog, "dump", db, "--json"], capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[0])["id"]


def main():
    if not os.access(GNU_TIME, os.X_OK):
        sys.exit(f"{GNU_TIME} (GNU time) is needed to measure peak resident sizes")
    peerlog, memory, work = sys.argv[1:4]
    nodes = sys.argv[4] if len(sys.argv) > 4 else "1000000"
    baseline = os.environ.get("PEERLOG_BASELINE_CLI")
    db = os.path.join(work, "commands-db")
    shutil.rmtree(db, ignore_errors=True)
    measure("demo", [peerlog, "demo", db, "--nodes", nodes])
    node = first_id(peerlog, db)
    measure("open", [memory, "--open", db])
    measure_library_compaction(memory, db)
    for label, args in [
        ("stats", ["stats", db]),
        ("dump", ["dump", db]),
        ("dump_json", ["dump", db, "--json"]),
        ("verify", ["verify", db]),
        ("history", ["history", db, node]),
        ("export_jsonl", ["export", db]),
        ("export_csv", ["export", db, "--format", "csv"]),
        ("expire", ["expire", db, "--expiration", "100000d"]),
        ("compact", ["compact", db, "--keep-history", "--expiration", "100000d"]),
        ("history_archived", ["history", db, node]),
        ("export_with_archive", ["export", db, "--with-archive"]),
        ("verify_archived", ["verify", db]),
    ]:
        # The read-only commands whose speed the report compares run beside the same command
        # of an older build, on the same log.
        if baseline and label in COMPARED:
            measure_beside(label, [peerlog, *args], [baseline, *args])
        else:
            measure(label, [peerlog, *args])
    shutil.rmtree(db, ignore_errors=True)


if __name__ == "__main__":
    main()
