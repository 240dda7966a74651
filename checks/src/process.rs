//! Helpers of the tests that re-execute their own binary as a child process (the crash and
//! power-loss tests): a seeded mixer for their workloads, the environment a child is started
//! with, and its lines to the parent.

use std::io::Write;

/// SplitMix64: a well-mixed `u64` of `x`, what a workload draws operation `k` from.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The environment variable `name` the parent set for the child (panics when it is unset).
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// Writes `text` to stdout in one `write(2)`, flushed: once it returns, the pipe to the parent
/// holds the line even if the process is killed right after.
pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).unwrap();
    out.flush().unwrap();
}
