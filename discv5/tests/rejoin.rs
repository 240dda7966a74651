//! peerlog as the peer cache of a discv5 node, through `peerlog-discv5`
//! (`examples/discv5_node.rs`), end to end: six
//! node processes on 127.0.0.1; one of them is killed with SIGKILL once peerlog holds at least
//! three of its peers with a pong, and restarted without a bootnode: it must reconnect to three
//! peers from what peerlog kept, with a higher seq for its own record. A control node with an
//! empty database and no bootnode finds nobody.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerlog::inspect;

/// The example's binary, `target/<profile>/examples/discv5_node`. Examples get no
/// `CARGO_BIN_EXE_*`; `cargo test` builds them before running tests, `cargo test --test
/// rejoin` alone does not, so it is built here when missing or older than its source (or
/// the crate's).
fn node_binary() -> PathBuf {
    const NAME: &str = "discv5_node";
    let exe = std::env::current_exe().unwrap(); // target/<profile>/deps/discv5-<hash>
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(NAME);
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        crate_dir.join(format!("examples/{NAME}.rs")),
        crate_dir.join("src/lib.rs"),
    ];
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    if modified(&bin).is_none() || sources.iter().any(|s| modified(&bin) < modified(s)) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "-p", "peerlog-discv5", "--example", NAME])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build --example");
        assert!(status.success(), "cargo build --example {NAME} failed");
    }
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// What a node printed so far.
#[derive(Default)]
struct Output {
    enr: Option<String>,
    seq: Option<u64>,
    /// Records from peerlog added to the routing table at start.
    seeds: Option<usize>,
    /// Status lines (`connected N table T cached C`) seen.
    statuses: usize,
    connected: usize,
    table: usize,
    cached: usize,
    /// The last lines of stdout and stderr, for failure messages.
    tail: VecDeque<String>,
}

impl Output {
    fn take_line(&mut self, line: String) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["enr", enr] => self.enr = Some(enr.to_string()),
            ["seq", seq] => self.seq = seq.parse().ok(),
            ["seeds", n, "records", _] => self.seeds = n.parse().ok(),
            ["connected", n, "table", t, "cached", c] => {
                self.statuses += 1;
                self.connected = n.parse().unwrap();
                self.table = t.parse().unwrap();
                self.cached = c.parse().unwrap();
            }
            _ => {}
        }
        if self.tail.len() == 8 {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

/// A node process, killed (SIGKILL) when dropped.
struct Node {
    name: String,
    db: PathBuf,
    child: Child,
    output: Arc<Mutex<Output>>,
}

impl Node {
    fn spawn(bin: &Path, dir: &Path, name: &str, port: u16, bootnode: Option<&str>) -> Node {
        let db = dir.join(name);
        let mut cmd = Command::new(bin);
        cmd.arg("--port").arg(port.to_string());
        cmd.arg("--db").arg(&db);
        cmd.arg("--key-file").arg(dir.join(format!("{name}.key")));
        if let Some(enr) = bootnode {
            cmd.args(["--bootnode", enr]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning the discv5_node example");
        let output = Arc::new(Mutex::new(Output::default()));
        // One reader per pipe, which also keeps it drained (a full pipe would block the node).
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for pipe in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let (output, name) = (Arc::clone(&output), name.to_string());
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if std::env::var_os("DISCV5_VERBOSE").is_some() {
                        eprintln!("[{name}] {line}");
                    }
                    output.lock().unwrap().take_line(line);
                }
            });
        }
        Node {
            name: name.to_string(),
            db,
            child,
            output,
        }
    }

    fn output(&self) -> std::sync::MutexGuard<'_, Output> {
        self.output.lock().unwrap()
    }

    /// SIGKILL (what `Child::kill` sends on Unix), and wait for the process to be gone.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn describe(&self) -> String {
        let out = self.output();
        format!(
            "{}: connected {} table {} cached {} after {} status lines; last output:\n    {}",
            self.name,
            out.connected,
            out.table,
            out.cached,
            out.statuses,
            Vec::from(out.tail.clone()).join("\n    ")
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `done` holds, checking every 100 ms; panics after `limit` with `what` and the
/// state of every node.
fn wait_for(what: &str, limit: Duration, nodes: &[&Node], mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            let states: Vec<String> = nodes.iter().map(|n| n.describe()).collect();
            panic!(
                "timed out after {limit:?} waiting for {what}\n{}",
                states.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{what}: {:?}", start.elapsed());
}

/// Distinct free UDP ports on 127.0.0.1 (all bound at once, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

/// Peers in the database at `db` (read without its lock, as `peerlog::inspect` does, so
/// the node may be running) with a signed record and a pong from the record's IP: the ones
/// `query_seed_records` can return.
fn seeds_in(db: &Path) -> usize {
    let Ok(state) = inspect::state(db, &inspect::no_progress) else {
        return 0; // not created yet
    };
    state
        .peers
        .iter()
        .filter(|peer| {
            let record_ip = peer.node.as_ref().map(|node| node.ip);
            peer.record.is_some()
                && peer
                    .ips
                    .iter()
                    .any(|l| l.last_pong.is_some() && Some(l.ip) == record_ip)
        })
        .count()
}

/// The key file the example creates holds a secret key: readable by its owner only (0600,
/// as peerlog's own files), whatever the umask (issue 19, item 9: it was 0644 under umask 022).
#[test]
fn the_example_writes_its_secret_key_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let bin = node_binary();
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(1)[0];
    let node = Node::spawn(&bin, dir.path(), "k0", port, None);
    wait_for(
        "the node's record",
        Duration::from_secs(10),
        &[&node],
        || node.output().enr.is_some(),
    );
    let mode = std::fs::metadata(dir.path().join("k0.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {:o}", mode & 0o777);
}

#[test]
fn a_node_killed_with_sigkill_reconnects_from_peerlog_alone() {
    let bin = node_binary();
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(7);
    const KILLED: usize = 3;

    // Six nodes: node 0, then nodes 1 to 5 with node 0 as their bootnode.
    let first = Node::spawn(&bin, dir.path(), "n0", ports[0], None);
    wait_for(
        "node 0's record",
        Duration::from_secs(10),
        &[&first],
        || first.output().enr.is_some(),
    );
    let boot = first.output().enr.clone().unwrap();
    let mut nodes = vec![first];
    for (i, &port) in ports.iter().enumerate().take(6).skip(1) {
        let name = format!("n{i}");
        nodes.push(Node::spawn(&bin, dir.path(), &name, port, Some(&boot)));
    }

    // Node 3 fills its cache: peerlog holds at least 3 records with a pong.
    let db = nodes[KILLED].db.clone();
    let all: Vec<&Node> = nodes.iter().collect();
    wait_for(
        "node 3's peerlog to hold 3 peers with a pong",
        Duration::from_secs(20),
        &all,
        || seeds_in(&db) >= 3,
    );
    let seq_before = nodes[KILLED].output().seq.expect("node 3 printed its seq");

    nodes[KILLED].kill();
    let state = inspect::state(&db, &inspect::no_progress).expect("reading node 3's database");
    let records = state.peers.iter().filter(|p| p.record.is_some()).count();
    assert!(
        records >= 3,
        "node 3's database holds {records} signed records after the kill, expected >= 3"
    );
    assert!(seeds_in(&db) >= 3, "node 3's peers lost their pongs");

    // Node 3 again, with no bootnode: same key, port and database. And a control node with
    // an empty database and no bootnode, at the same time.
    let restarted = Node::spawn(&bin, dir.path(), "n3", ports[KILLED], None);
    let restart = Instant::now();
    nodes[KILLED] = restarted;
    let control = Node::spawn(&bin, dir.path(), "control", ports[6], None);
    let all: Vec<&Node> = nodes.iter().chain([&control]).collect();
    wait_for(
        "restarted node 3 to reconnect to 3 peers",
        Duration::from_secs(20),
        &all,
        || nodes[KILLED].output().connected >= 3,
    );
    // Its peers would call it again by themselves (they ping their table), so check that
    // it had the seeds to call them first.
    let (seeds, seq_after) = {
        let out = nodes[KILLED].output();
        (out.seeds, out.seq.expect("node 3 printed its seq"))
    };
    assert!(
        seeds >= Some(3),
        "restarted node 3 had {seeds:?} seeds from peerlog, expected >= 3"
    );
    assert!(
        seq_after > seq_before,
        "node 3's record seq went from {seq_before} to {seq_after} across the restart"
    );

    // The control node lives at least 3 s (and prints a status line) and finds nobody.
    let three_seconds = restart + Duration::from_secs(3);
    wait_for(
        "the control node's 3 s",
        Duration::from_secs(10),
        &all,
        || Instant::now() >= three_seconds && control.output().statuses > 0,
    );
    let found = {
        let out = control.output();
        (out.connected, out.table, out.cached)
    };
    assert_eq!(
        found,
        (0, 0, 0),
        "the control node (connected, table, cached) found peers without a bootnode or a \
         cache:\n{}",
        control.describe()
    );
    eprintln!("end to end: {:?}", started.elapsed());
}
