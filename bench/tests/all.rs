//! `rapport-bench all` keeps working: at a tiny size it measures every
//! figure and writes each beside its baseline. Never a timing: the values
//! are whatever this machine gives.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

/// The figures the bench promises, and whether each stands beside a
/// baseline measured in the same run.
const FIGURES: [(&str, bool); 15] = [
    ("append_1_writer", true),
    ("append_concurrent", true),
    ("fsync_rate", false),
    ("bulk_import", true),
    ("rebuild", true),
    ("restart_to_ready", true),
    ("server_anonymous_rss", false),
    ("http_gate", true),
    ("http_gate_more", true),
    ("gate_decisions", false),
    ("gate_p99", false),
    ("projection_memory", false),
    ("preflight", true),
    ("group_gate_decisions", true),
    ("group_memory", false),
];

fn listing(dir: &Path) -> Vec<OsString> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect()
}

#[test]
fn all_measures_every_figure_beside_its_baseline_into_the_named_directory() {
    let scratch = tempfile::tempdir().expect("scratch");
    let elsewhere = tempfile::tempdir().expect("a working directory");
    // Not there yet: the bench makes it.
    let named = scratch.path().join("disk-under-test");
    let json = scratch.path().join("bench.json");
    // The `rapport` binary for the realistic import: in a workspace test run,
    // the test crate's build of it lies beside this one.
    let rapport = Path::new(env!("CARGO_BIN_EXE_rapport-bench")).with_file_name("rapport-under-test");
    let mut expected: Vec<(&str, bool)> = FIGURES.to_vec();
    let mut bench = Command::new(env!("CARGO_BIN_EXE_rapport-bench"));
    if rapport.is_file() {
        bench.env("RAPPORT_BIN", &rapport);
        expected.push(("realistic_import", true));
    } else {
        eprintln!("no rapport binary beside rapport-bench: the realistic import is not measured");
        bench.env_remove("RAPPORT_BIN");
    }
    let output = bench
        .args(["--dir", &named.display().to_string()])
        .args([
            "all",
            "--contacts",
            "1000",
            "--events",
            "20000",
            "--seconds",
            "1",
            "--json",
        ])
        .arg(&json)
        .current_dir(elsewhere.path())
        .output()
        .expect("rapport-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).expect("the JSON")).expect("JSON");
    assert_eq!(
        (document["contacts"].as_u64(), document["events"].as_u64()),
        (Some(1000), Some(20000))
    );
    let figures = document["figures"].as_array().expect("figures");
    for (key, has_baseline) in expected {
        let figure = figures
            .iter()
            .find(|figure| figure["key"] == key)
            .unwrap_or_else(|| panic!("no figure {key}: {document:#}"));
        // Memory growth over an idle server may round to nothing at this size.
        let measured = figure["value"].as_f64().expect("a value");
        assert!(
            measured.is_finite() && (measured > 0.0 || key == "server_anonymous_rss"),
            "{figure}"
        );
        assert!(
            stdout.contains(figure["figure"].as_str().expect("a name")),
            "{key} not in the table:\n{stdout}"
        );
        if has_baseline {
            assert!(
                figure["baseline"]["value"].as_f64().is_some_and(|value| value > 0.0),
                "{figure}"
            );
            assert!(figure["ratio"].as_f64().is_some(), "{figure}");
        }
    }
    // Scratch ledgers went into the named directory and are removed;
    // nothing was written where the bench ran.
    assert_eq!(listing(&named), Vec::<OsString>::new());
    assert_eq!(listing(elsewhere.path()), Vec::<OsString>::new());
}

#[test]
fn a_bad_argument_is_refused_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_rapport-bench"))
        .args(["all", "--contacts", "many"])
        .output()
        .expect("rapport-bench runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid value 'many'"));
}

#[test]
fn launch_measures_a_campaign_beside_raw_appends_of_as_many_touches() {
    let scratch = tempfile::tempdir().expect("scratch");
    let output = Command::new(env!("CARGO_BIN_EXE_rapport-bench"))
        .args(["--dir", &scratch.path().display().to_string()])
        .args(["launch", "--contacts", "300", "--events-per-contact", "4"])
        .output()
        .expect("rapport-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let row = stdout
        .lines()
        .find(|line| line.starts_with("campaign launch, 300 contacts"))
        .unwrap_or_else(|| panic!("no launch figure:\n{stdout}"));
    assert!(row.contains("touches/s"), "{row}");
    assert!(
        stdout.contains("beside rapport's own append_batch"),
        "no baseline:\n{stdout}"
    );
    // Every contact is judged once: sent, routed to a personal chat,
    // deferred or denied.
    let judged = stdout
        .split("judging included: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no counts of the judgment:\n{stdout}"));
    let counts: Vec<usize> = judged
        .split(", ")
        .map(|part| {
            part.rsplit(' ')
                .next()
                .and_then(|count| count.parse().ok())
                .unwrap_or_else(|| panic!("'{part}' in '{judged}'"))
        })
        .collect();
    assert_eq!(counts.len(), 4, "{judged}");
    assert_eq!(counts.iter().sum::<usize>(), 300, "{judged}");
    assert_eq!(
        listing(scratch.path()),
        Vec::<OsString>::new(),
        "the scratch ledger is removed"
    );
}
