//! Reading a log takes bounded memory, whatever its size: `export`, `history` and `verify` of a
//! log far larger than their limit stay under it (issue: `export` and `history` read whole
//! segments into memory, or had the kernel map all of a segment in at once).
//!
//! A test binary of its own, with one test: the peak resident size the kernel reports for a
//! child (`ru_maxrss`) starts from the size of the process that spawned it, which must stay
//! small, so the log is written by a child too (this binary run again).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use peerlog::{Node, NodeDb, NodeId, Options};

/// Peak resident size allowed to a reader.
const LIMIT: u64 = 40 << 20;
/// The log is written this much larger than the limit.
const LOG_BYTES: u64 = 2 * LIMIT + (8 << 20);
/// Set in the child that writes the log: the directory.
const WRITE_LOG: &str = "PEERLOG_MEMORY_TEST_WRITE_LOG";

fn id(n: u64) -> NodeId {
    let mut bytes = [0u8; 64];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[8] = 0xaa;
    NodeId(bytes)
}

/// Pings of 1 000 nodes until the log holds `LOG_BYTES` (one 64 MiB segment, then more).
fn write_log(dir: &Path) {
    let opts = Options {
        compact_min_bytes: u64::MAX,
        ..Options::default()
    };
    let db = NodeDb::open_with(dir, 1, id(u64::MAX), opts).unwrap();
    for n in 0..1000 {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + n as u32).into();
        db.update_node(&Node::new(id(n), ip, 30303, 30303)).unwrap();
    }
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    // A ping frame is 96 bytes.
    for i in 0..LOG_BYTES / 96 {
        db.update_last_ping(&id(i % 1000), t + Duration::from_secs(i))
            .unwrap();
    }
    db.close().unwrap();
}

/// Runs `peerlog args`, its output thrown away; returns its peak resident size in bytes.
#[cfg(target_os = "linux")]
// The child is reaped by the wait4 below, which std cannot do (it keeps no rusage).
#[allow(clippy::zombie_processes)]
fn peak_resident(args: &[&str]) -> u64 {
    let child = Command::new(env!("CARGO_BIN_EXE_peerlog"))
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (mut status, mut usage) = (0, std::mem::MaybeUninit::<libc::rusage>::zeroed());
    // SAFETY: wait4 on our own child, which nothing else waits for, with valid pointers to a
    // status and a zeroed rusage it fills in.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, usage.as_mut_ptr()) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "peerlog {args:?} failed: {status}"
    );
    // SAFETY: wait4 succeeded, so it filled in the rusage.
    let usage = unsafe { usage.assume_init() };
    // Linux reports it in KiB.
    usage.ru_maxrss as u64 * 1024
}

#[cfg(target_os = "linux")]
#[test]
fn export_history_and_verify_keep_a_bounded_resident_size() {
    if let Ok(dir) = std::env::var(WRITE_LOG) {
        write_log(Path::new(&dir));
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "export_history_and_verify_keep_a_bounded_resident_size",
        ])
        .env(WRITE_LOG, temp.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "writing the log failed");
    let dir = temp.path().to_str().unwrap();
    let log: u64 = std::fs::read_dir(temp.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(log > 2 * LIMIT, "a log of {log} bytes is too small to tell");
    let node = id(7).to_string();
    // Each reads every record; `export` prints none of them (a kind the log does not hold),
    // since printing is slow in a debug build and costs no memory.
    for args in [
        vec!["export", dir, "--kind", "loss"],
        vec!["export", dir, "--with-archive", "--kind", "loss"],
        vec!["history", dir, &node],
        vec!["verify", dir],
    ] {
        let peak = peak_resident(&args);
        assert!(
            peak < LIMIT,
            "peerlog {args:?}: peak resident size {} MiB on a {} MiB log (limit {} MiB)",
            peak >> 20,
            log >> 20,
            LIMIT >> 20
        );
    }
}
