//! House rules that keep the architecture honest, checked from the
//! manifests and the sources: dependencies between crates point one way,
//! each adapter knows only its own protocol, the pure crates (domain,
//! projections) do no I/O and read no clock, and no two files of a crate
//! import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The dependency a manifest line names, in any form: `name = "1"`,
/// `name = { … }`, `name.workspace = true`.
fn named(line: &str) -> Option<&str> {
    let (name, _) = line.split_once(['=', '.'])?;
    let name = name.trim();
    (!name.is_empty() && !name.starts_with('#')).then_some(name)
}

/// The normal (not dev, not build) dependencies of a crate, however the
/// manifest writes them: `[dependencies]`, `[dependencies.NAME]`, and the
/// same under `[target.'cfg(…)'.…]`.
fn dependencies(crate_dir: &str) -> BTreeSet<String> {
    let manifest = repository().join(crate_dir).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("read manifest");
    let mut in_list = false;
    let mut names = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            let header = header.trim();
            // `target.'cfg(unix)'.dependencies` → `dependencies`
            let section = header
                .strip_prefix("target.")
                .and_then(|rest| rest.rsplit_once("'.").map(|(_, section)| section))
                .unwrap_or(header);
            in_list = section == "dependencies";
            if let Some(name) = section.strip_prefix("dependencies.") {
                names.insert(name.trim().to_owned());
            }
            continue;
        }
        if in_list && let Some(name) = named(line) {
            names.insert(name.to_owned());
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
fn every_form_of_a_dependency_is_read() {
    let dir = tempfile::tempdir().expect("dir");
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nplain = \"1\"\ninline = { version = \"1\" }\nshared.workspace = true\n\n[dependencies.table]\nversion = \"1\"\n\n[target.'cfg(unix)'.dependencies]\nunix-only = \"1\"\n\n[dev-dependencies]\ntest-only = \"1\"\n";
    std::fs::create_dir(dir.path().join("x")).expect("dir");
    std::fs::write(dir.path().join("x").join("Cargo.toml"), manifest).expect("write");
    let relative = dir.path().join("x");
    let found = dependencies(relative.to_str().expect("path"));
    assert_eq!(found, set(&["inline", "plain", "shared", "table", "unix-only"]));
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

/// The `.rs` files under a crate's `src`, by path relative to it.
fn sources(crate_dir: &str) -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, root: &Path, found: &mut BTreeMap<PathBuf, String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                found.insert(path.strip_prefix(root).expect("under src").to_path_buf(), text);
            }
        }
    }
    let root = repository().join(crate_dir).join("src");
    let mut found = BTreeMap::new();
    walk(&root, &root, &mut found);
    found
}

#[test]
fn pure_crates_read_no_clock_and_touch_no_files_or_network() {
    let banned = [
        "Utc::now",
        "Local::now",
        "SystemTime",
        "Instant::now",
        "std::fs",
        "std::net",
        "std::thread",
        "std::process",
        "std::env",
    ];
    for crate_dir in ["domain", "projections"] {
        for (file, text) in sources(crate_dir) {
            for word in banned {
                assert!(
                    !text.contains(word),
                    "{crate_dir}/src/{} uses {word}: take it as an argument instead",
                    file.display()
                );
            }
        }
    }
}

/// A file's module path: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`,
/// `lib.rs` and `main.rs` the root.
fn module_of(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .with_extension("")
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The module file a `crate::…` or `super::…` path in `module` names: the
/// longest prefix of the path that is a module of its own file.
fn module_named(module: &[String], path: &str, modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut target: Vec<String> = if segments.first() == Some(&"crate") {
        segments.remove(0);
        Vec::new()
    } else {
        // `super` in `a/b.rs` is `a`, and so it is in `a/b/mod.rs`.
        let mut parent = module.to_vec();
        parent.pop();
        while segments.first() == Some(&"super") {
            segments.remove(0);
            if segments.first() == Some(&"super") {
                parent.pop();
            }
        }
        parent
    };
    let mut best = modules.contains(&target).then(|| target.clone());
    for segment in segments {
        target.push(segment.to_owned());
        if modules.contains(&target) {
            best = Some(target.clone());
        }
    }
    best
}

/// The modules a file's code names through `crate::` or `super::` paths.
fn imports(module: &[String], text: &str, modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    for (start, _) in text.match_indices("crate::").chain(text.match_indices("super::")) {
        // The second `super` of `super::super::` is part of the first's path.
        if text[..start].ends_with("::") {
            continue;
        }
        let path: String = text[start..].chars().take_while(|c| word(*c)).collect();
        let rest = &text[start + path.len()..];
        // `use crate::{a, b::C}` names each of `a` and `b`.
        let group: Vec<String> = match rest.strip_prefix('{').and_then(|inner| inner.split_once('}')) {
            Some((inner, _)) => inner
                .split(',')
                .map(|item| item.trim().chars().take_while(|c| word(*c)).collect::<String>())
                .map(|item| format!("{path}{item}"))
                .collect(),
            None => vec![path],
        };
        for path in group {
            if let Some(target) = module_named(module, &path, modules) {
                found.insert(target);
            }
        }
    }
    found
}

#[test]
fn no_two_files_of_a_crate_import_each_other() {
    for crate_dir in ["domain", "projections", "store", "app", "api", "cli", "bench"] {
        let files = sources(crate_dir);
        let modules: BTreeSet<Vec<String>> = files.keys().map(|file| module_of(file)).collect();
        // A parent naming its own children is structure, not an import.
        let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (file, text) in &files {
            let module = module_of(file);
            let targets = imports(&module, text, &modules)
                .into_iter()
                .filter(|target| !target.starts_with(&module))
                .collect();
            edges.insert(module, targets);
        }
        for (from, targets) in &edges {
            for to in targets {
                let back = reaches(&edges, to, from);
                assert!(
                    !back,
                    "{crate_dir}: {} and {} import each other (through a path back)",
                    from.join("::"),
                    to.join("::")
                );
            }
        }
    }
}

/// Whether `to` is reachable from `from` along the edges.
fn reaches(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>, from: &[String], to: &[String]) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_vec()];
    while let Some(module) = stack.pop() {
        if module == to {
            return true;
        }
        if seen.insert(module.clone())
            && let Some(next) = edges.get(&module)
        {
            stack.extend(next.iter().cloned());
        }
    }
    false
}

#[test]
fn an_import_loop_between_two_files_is_found() {
    let module = |name: &str| vec![name.to_owned()];
    let modules: BTreeSet<Vec<String>> = [vec![], module("a"), module("b"), module("c")].into();
    let a = imports(&module("a"), "use crate::{b::Thing, c};", &modules);
    let b = imports(&module("b"), "fn f() { super::a::g() }", &modules);
    assert_eq!(a, [module("b"), module("c")].into());
    assert_eq!(b, [module("a")].into());
    let edges = BTreeMap::from([(module("a"), a), (module("b"), b)]);
    assert!(reaches(&edges, &module("b"), &module("a")), "a → b → a is a loop");
}
