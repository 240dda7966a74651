//! Progress on a terminal: from 0 %, on every long command.

use std::process::Command;

mod common;
use common::{path_str, run_ok, say_skipped, stderr};

/// Runs the command line `shell` under a pseudo-terminal (util-linux `script`), so that
/// stderr is a terminal and the progress display draws; returns what the terminal got.
fn on_a_terminal(shell: &str) -> Option<String> {
    let out = Command::new("script")
        .args(["-qec", shell, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .ok()?;
    assert!(out.status.success(), "{shell}: {}", stderr(&out));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The percentages a terminal output shows, in order.
fn percentages(screen: &str) -> Vec<u64> {
    screen
        .split('%')
        .filter_map(|before| {
            let digits: String = before
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            digits.parse().ok()
        })
        .collect()
}

#[test]
fn progress_starts_at_zero_and_shows_on_every_long_command() {
    if Command::new("script").arg("--version").output().is_err() {
        say_skipped(
            "progress_starts_at_zero_and_shows_on_every_long_command",
            "no `script` (util-linux) to give the command a terminal",
        );
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let db = temp.path().join("db");
    let bin = env!("CARGO_BIN_EXE_peerlog");
    let dir = path_str(&db);
    let demo = on_a_terminal(&format!("{bin} demo {dir} --nodes 3000 > /dev/null")).unwrap();
    for command in ["demo", "export", "dump", "stats", "verify"] {
        let screen = match command {
            "demo" => demo.clone(),
            other => on_a_terminal(&format!("{bin} {other} {dir} > /dev/null")).unwrap(),
        };
        let shown = percentages(&screen);
        assert!(!shown.is_empty(), "{command} draws a bar: {screen:?}");
        assert_eq!(
            shown[0], 0,
            "{command} starts at 0 %, not 100 %: {screen:?}"
        );
        assert!(
            shown.windows(2).all(|w| w[0] <= w[1]),
            "{command} never goes back: {shown:?}"
        );
    }
    for (command, label) in [("expire", "opening"), ("compact", "opening")] {
        let screen = on_a_terminal(&format!("{bin} {command} {dir} > /dev/null")).unwrap();
        assert!(
            screen.contains(label),
            "{command} shows what it does: {screen:?}"
        );
    }
    // Nothing is drawn when stderr is not a terminal.
    run_ok(&["verify", dir]);
}
