//! House rules that keep the architecture honest, checked from the
//! manifests: dependencies between crates point one way, and the pure
//! crates (domain, projections) depend on no I/O or async runtime.

use std::collections::BTreeSet;
use std::path::Path;

/// The dependencies named in a manifest's `[dependencies]` section.
fn dependencies(crate_dir: &str) -> BTreeSet<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(crate_dir)
        .join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("read manifest");
    let mut in_dependencies = false;
    let mut names = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if in_dependencies && let Some((name, _)) = line.split_once(['=', '.']) {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

fn internal(crate_dir: &str) -> BTreeSet<String> {
    dependencies(crate_dir)
        .into_iter()
        .filter(|name| name.starts_with("rapport-"))
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[test]
fn crate_dependencies_point_one_way() {
    assert_eq!(internal("domain"), set(&[]));
    assert_eq!(internal("projections"), set(&["rapport-domain"]));
    assert_eq!(internal("store"), set(&["rapport-domain"]));
    let below_app = ["rapport-domain", "rapport-projections", "rapport-store"];
    assert!(internal("app").is_subset(&set(&below_app)));
    let below_api = ["rapport-app", "rapport-domain", "rapport-projections", "rapport-store"];
    assert!(internal("api").is_subset(&set(&below_api)));
    let below_cli = [
        "rapport-api",
        "rapport-app",
        "rapport-domain",
        "rapport-projections",
        "rapport-store",
    ];
    assert!(internal("cli").is_subset(&set(&below_cli)));
    assert!(internal("bench").is_subset(&set(&below_cli)));
}

#[test]
fn each_adapter_knows_only_its_own_protocol() {
    let knows = |crate_dir: &str, library: &str| dependencies(crate_dir).contains(library);
    for library in ["clap", "async-graphql", "async-graphql-axum", "axum", "hyper"] {
        assert!(!knows("app", library), "app depends on {library}");
    }
    assert!(!knows("api", "clap"), "api depends on clap");
    assert!(!knows("cli", "async-graphql"), "cli depends on async-graphql");
}

#[test]
fn pure_crates_have_no_io_or_async_dependencies() {
    let impure = set(&[
        "tokio",
        "rusqlite",
        "async-trait",
        "futures",
        "eventstore",
        "axum",
        "async-graphql",
    ]);
    for crate_dir in ["domain", "projections"] {
        let found: Vec<_> = dependencies(crate_dir).intersection(&impure).cloned().collect();
        assert!(found.is_empty(), "{crate_dir} depends on {found:?}");
    }
}
