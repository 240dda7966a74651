//! Parsing and exit codes: every subcommand's help, argument limits, one-line errors with
//! status 2, and a directory that is not a database.

use std::fs;
use std::path::Path;

mod common;
use common::{
    assert_one_line_error, path_str, peerlog, run_ok, small_db, snapshot, stderr, stdout, PAST_U64,
    U64_MAX,
};

/// What a command given one value of one argument must do.
enum Expect {
    /// Exit 0.
    Ok,
    /// One line on stderr containing this, exit 2.
    Refused(&'static str),
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in [
        "demo", "dump", "history", "verify", "stats", "compact", "expire", "export", "salvage",
        "import", "seeds",
    ] {
        let help = run_ok(&[sub, "--help"]);
        assert!(help.contains("Example: peerlog"), "{sub}: {help}");
    }
}

#[test]
fn errors_are_one_line_with_a_non_zero_status() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("nope");
    for sub in ["dump", "verify", "stats", "export", "compact"] {
        assert_one_line_error(&peerlog(&[sub, path_str(&missing)]), "no such directory");
    }
    assert!(!missing.exists(), "nothing created");

    let empty = temp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    for sub in ["dump", "verify", "stats", "export", "expire", "salvage"] {
        let out = peerlog(&[sub, path_str(&empty)]);
        assert_one_line_error(&out, "no peerlog database here");
    }
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0, "nothing created");

    let db = temp.path().join("db");
    small_db(&db);
    let out = peerlog(&["history", path_str(&db), "12345"]);
    assert_one_line_error(&out, "node id must be 128 hex characters");
    let out = peerlog(&["history", path_str(&db), "enode://xyz@1.2.3.4:5"]);
    assert_one_line_error(&out, "enode URL");
    let out = peerlog(&["stats", path_str(&db), "--self", "zz"]);
    assert_one_line_error(&out, "--self");
}

#[test]
fn every_numeric_argument_is_checked_at_its_limits() {
    use Expect::{Ok, Refused};
    let temp = tempfile::tempdir().unwrap();
    let mut case = 0;
    let mut check = |args: &[&str], value: &str, expect: Expect, db: bool| {
        case += 1;
        let dir = temp.path().join(format!("case-{case}"));
        if db {
            small_db(&dir);
        }
        let mut full: Vec<&str> = vec![args[0], path_str(&dir)];
        full.extend(&args[1..]);
        full.push(value);
        let out = peerlog(&full);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{full:?}: {err}");
        match expect {
            Ok => assert!(out.status.success(), "{full:?}: {err}"),
            Refused(needle) => {
                assert_one_line_error(&out, needle);
                if !db {
                    assert!(!dir.exists(), "{full:?} created {}", dir.display());
                }
            }
        }
    };
    let demo = |flag: &'static str| -> Vec<&'static str> {
        // One node: the successful cases stay fast.
        if flag == "--nodes" {
            vec!["demo", flag]
        } else {
            vec!["demo", "--nodes", "1", flag]
        }
    };
    let number_cases = |least: &'static str| {
        [
            ("-1", Refused("negative")),
            ("abc", Refused("not a whole number")),
            ("", Refused("not a whole number")),
            (PAST_U64, Refused("too large")),
            (
                "0",
                if least == "0" {
                    Ok
                } else {
                    Refused("least is 1")
                },
            ),
        ]
    };
    // demo --nodes: 0 to 10 million.
    for (value, expect) in number_cases("0") {
        check(&demo("--nodes"), value, expect, false);
    }
    check(&demo("--nodes"), "1", Ok, false);
    check(
        &demo("--nodes"),
        "10000001",
        Refused("the most is 10000000"),
        false,
    );
    check(
        &demo("--nodes"),
        U64_MAX,
        Refused("the most is 10000000"),
        false,
    );
    // demo --days: 1 to the earliest storable time.
    for (value, expect) in number_cases("1") {
        check(&demo("--days"), value, expect, false);
    }
    check(&demo("--days"), "1", Ok, false);
    check(&demo("--days"), "100000", Ok, false);
    check(&demo("--days"), "1000000", Refused("at most"), false);
    check(&demo("--days"), U64_MAX, Refused("at most"), false);
    // demo --seed and --protocol-version: any whole number.
    for flag in ["--seed", "--protocol-version"] {
        for (value, expect) in number_cases("0") {
            check(&demo(flag), value, expect, false);
        }
        check(&demo(flag), "1", Ok, false);
        check(&demo(flag), U64_MAX, Ok, false);
    }
    // compact and expire --protocol-version: the database's (5), nothing else.
    for sub in ["compact", "expire"] {
        check(&[sub, "--protocol-version"], "5", Ok, true);
        for value in ["0", "1", U64_MAX] {
            check(
                &[sub, "--protocol-version"],
                value,
                Refused("would wipe it"),
                true,
            );
        }
        check(
            &[sub, "--protocol-version"],
            "-1",
            Refused("negative"),
            true,
        );
        check(
            &[sub, "--protocol-version"],
            "x",
            Refused("not a whole number"),
            true,
        );
        // --expiration: at least 1s, up to the largest duration.
        check(&[sub, "--expiration"], "0", Refused("at least 1s"), true);
        check(&[sub, "--expiration"], "0s", Refused("at least 1s"), true);
        check(&[sub, "--expiration"], "1s", Ok, true);
        check(&[sub, "--expiration"], "100000000d", Ok, true);
        check(&[sub, "--expiration"], &format!("{U64_MAX}s"), Ok, true);
        check(
            &[sub, "--expiration"],
            &format!("{PAST_U64}s"),
            Refused("--expiration"),
            true,
        );
        check(
            &[sub, "--expiration"],
            "-1h",
            Refused("cannot be negative"),
            true,
        );
        check(
            &[sub, "--expiration"],
            "soon",
            Refused("--expiration"),
            true,
        );
    }
    // stats --seed-age: 0 and up.
    for value in ["0", "0s", "1s", "100000000d", &format!("{U64_MAX}s")] {
        check(&["stats", "--seed-age"], value, Ok, true);
    }
    check(
        &["stats", "--seed-age"],
        &format!("{PAST_U64}s"),
        Refused("--seed-age"),
        true,
    );
    check(
        &["stats", "--seed-age"],
        "-1h",
        Refused("cannot be negative"),
        true,
    );
    check(&["stats", "--seed-age"], "abc", Refused("--seed-age"), true);
    // export and dump --since: a storable time, or a duration ago.
    for sub in ["export", "dump"] {
        for value in [
            "0s",
            "1s",
            "1d",
            "2024-05-01",
            "2024-05-01T12:30:45.5Z",
            "1677-09-22",
        ] {
            check(&[sub, "--since"], value, Ok, true);
        }
        for value in ["1600-01-01", "10000000000d", &format!("{U64_MAX}s")] {
            check(&[sub, "--since"], value, Refused("outside the times"), true);
        }
        for value in ["-1h", "abc", "2024-02-30", "2024-13-01", ""] {
            check(&[sub, "--since"], value, Refused("--since"), true);
        }
    }
}

#[test]
fn argument_errors_are_one_line_and_help_and_version_still_work() {
    let temp = tempfile::tempdir().unwrap();
    let dir = path_str(temp.path());
    let cases: [(&[&str], &str); 8] = [
        (&["demo", dir, "--nodes", "abc"], "--nodes"),
        (&["demo", dir, "--nodes", "-1"], "negative"),
        (&["bogus"], "unrecognized subcommand 'bogus'"),
        (&[], "no subcommand"),
        (&["demo"], "<DIR>"),
        (&["dump", dir, "--bogus"], "--bogus"),
        (
            &["export", dir, "--format", "xml"],
            "possible values: jsonl, csv",
        ),
        (
            &["export", dir, "--kind", "pingg"],
            "the kinds are node, ping",
        ),
    ];
    for (args, needle) in cases {
        assert_one_line_error(&peerlog(args), needle);
    }
    assert!(fs::read_dir(temp.path()).unwrap().next().is_none());
    for args in [&["--help"][..], &["demo", "--help"], &["help"]] {
        let out = peerlog(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).lines().count() > 5, "{args:?}: the full help");
    }
    let version = run_ok(&["--version"]);
    assert!(version.starts_with("peerlog "), "{version}");
}

/// A directory that is not a database (a folder of 500 files, `/proc`) gets one line from
/// every command, saying there is no peerlog database there, not a warning per entry (issue
/// 19, item 8), and nothing in it changes.
#[test]
fn a_directory_that_is_not_a_database_gets_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..500 {
        fs::write(dir.path().join(format!("file{i}.txt")), b"not peerlog's").unwrap();
    }
    let before = snapshot(dir.path());
    let d = path_str(dir.path());
    let node = "11".repeat(64);
    let commands: Vec<Vec<&str>> = vec![
        vec!["stats", d],
        vec!["dump", d],
        vec!["verify", d],
        vec!["export", d],
        vec!["export", d, "--with-archive"],
        vec!["history", d, &node],
        vec!["compact", d],
        vec!["expire", d],
        vec!["salvage", d],
    ];
    for args in &commands {
        let out = peerlog(args);
        assert_one_line_error(&out, "no peerlog database here");
    }
    assert_eq!(snapshot(dir.path()), before, "the directory changed");
    if Path::new("/proc/self").is_dir() {
        assert_one_line_error(&peerlog(&["dump", "/proc"]), "no peerlog database here");
    }
}
