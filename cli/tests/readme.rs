//! The README's sample session is what the command prints: each `$ peerlog ...` line of its
//! session block is run, on a demo database in a temporary directory, and its output must be
//! the lines below it. Ids are shown shortened (`00011d9f…abca`), the temporary directory as
//! `/tmp/peers`; times, which depend on when the demo runs, and the demo's run time are
//! compared by their shape only.

use std::collections::BTreeMap;
use std::path::Path;

mod common;
use common::{path_str, peerlog};

/// The README's console block that runs `peerlog demo /tmp/peers`.
fn readme_session() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("$ peerlog demo /tmp/peers")
        .expect("README.md shows a session starting with peerlog demo /tmp/peers");
    let end = readme[start..].find("```").unwrap();
    readme[start..start + end].to_string()
}

/// `first 8 hex…last 4 hex`, as the session shows a 128-hex id.
fn shorten(id: &str) -> String {
    format!("{}…{}", &id[..8], &id[124..])
}

/// Every 128-hex id in `text`.
fn ids_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut ids = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if run == 128 {
            ids.push(text[i..i + 128].to_string());
        }
        i += run.max(1);
    }
    ids
}

/// `text` with every time (`2026-11-21T06:27:32Z`, with or without a fraction) as `<time>`
/// and the demo's run time (after `simulated days in `) as `<elapsed>`.
fn mask(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = match line.split_once(" simulated days in ") {
            Some((before, _)) => format!("{before} simulated days in <elapsed>"),
            None => line.to_string(),
        };
        let mut rest = line.as_str();
        while let Some(at) = time_at(rest) {
            let (start, len) = at;
            out.push_str(&rest[..start]);
            out.push_str("<time>");
            rest = &rest[start + len..];
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// Where the first UTC time in `s` starts, and its length.
fn time_at(s: &str) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    (0..b.len()).find_map(|i| {
        let shape = digits(i, 4)
            && b.get(i + 4) == Some(&b'-')
            && digits(i + 5, 2)
            && b.get(i + 7) == Some(&b'-')
            && digits(i + 8, 2)
            && b.get(i + 10) == Some(&b'T')
            && digits(i + 11, 2)
            && b.get(i + 13) == Some(&b':')
            && digits(i + 14, 2)
            && b.get(i + 16) == Some(&b':')
            && digits(i + 17, 2);
        if !shape {
            return None;
        }
        let mut end = i + 19;
        if b.get(end) == Some(&b'.') {
            end += 1;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
        }
        (b.get(end) == Some(&b'Z')).then_some((i, end + 1 - i))
    })
}

/// Runs one session line (`peerlog ARGS`, optionally `| head -N` or `; echo $?`) with
/// `/tmp/peers` standing for `dir` and shortened ids for the ids seen so far; returns what a
/// terminal would show, ids shortened and `dir` named `/tmp/peers`.
fn run_line(line: &str, dir: &Path, ids: &mut BTreeMap<String, String>) -> String {
    let (command, head, echo_status) = match line.split_once(" | head -") {
        Some((c, n)) => (c, Some(n.parse::<usize>().unwrap()), false),
        None => match line.strip_suffix("; echo $?") {
            Some(c) => (c, None, true),
            None => (line, None, false),
        },
    };
    let args: Vec<String> = command
        .split_whitespace()
        .skip(1)
        .map(|arg| {
            let arg = arg.replace("/tmp/peers", path_str(dir));
            ids.iter()
                .fold(arg, |arg, (short, full)| arg.replace(short, full))
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = peerlog(&args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let stdout = match head {
        Some(n) => stdout.lines().take(n).map(|l| format!("{l}\n")).collect(),
        None => stdout,
    };
    let mut shown = stderr + &stdout;
    if echo_status {
        shown.push_str(&format!("{}\n", out.status.code().unwrap()));
    } else {
        assert!(out.status.success(), "{line}: {shown}");
    }
    for id in ids_in(&shown) {
        ids.insert(shorten(&id), id.clone());
        shown = shown.replace(&id, &shorten(&id));
    }
    shown.replace(path_str(dir), "/tmp/peers")
}

#[test]
fn the_readme_session_is_what_the_command_prints() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("peers");
    let session = readme_session();
    let (mut expected, mut actual) = (String::new(), String::new());
    let mut ids = BTreeMap::new();
    for line in session.lines() {
        match line.strip_prefix("$ ") {
            Some(command) => {
                expected.push_str(line);
                expected.push('\n');
                actual.push_str(line);
                actual.push('\n');
                actual.push_str(&run_line(command, &dir, &mut ids));
            }
            None => {
                expected.push_str(line);
                expected.push('\n');
            }
        }
    }
    assert!(expected.lines().count() > 10, "{session}");
    assert_eq!(
        mask(&expected),
        mask(&actual),
        "README.md's session differs from the output:\n{actual}"
    );
}

#[test]
fn times_and_ids_are_masked_and_shortened_as_the_session_shows_them() {
    assert_eq!(
        mask("a 2026-11-21T06:27:32Z b 2026-12-02T00:14:05.983797963Z\n"),
        "a <time> b <time>\n"
    );
    assert_eq!(
        mask("wrote 3 events over 7 simulated days in 91.24ms\n"),
        "wrote 3 events over 7 simulated days in <elapsed>\n"
    );
    assert_eq!(mask("2026-11-21 12:00\n"), "2026-11-21 12:00\n");
    let id = format!("{}{}", "0004694a", "b".repeat(120));
    assert_eq!(shorten(&id), "0004694a…bbbb");
    assert_eq!(ids_in(&format!("x{id}y {}", "c".repeat(129))), vec![id]);
}
