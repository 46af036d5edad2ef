//! The fold fingerprint: a digest of every source that shapes the read
//! model (its code and its data layout) and of the locked dependencies. A
//! snapshot written by a build with another fingerprint is never loaded,
//! so no change to the fold can be met by a read model folded the old way.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const SOURCES: &[&str] = &[
    "../domain/src",
    "../domain/Cargo.toml",
    "../projections/src",
    "../projections/Cargo.toml",
    // Decodes the events the fold is fed.
    "../store/src",
    "../store/Cargo.toml",
    "src/read_model.rs",
    "src/snapshot.rs",
    "Cargo.toml",
    "../Cargo.toml",
    "../Cargo.lock",
];

fn main() {
    let mut files = Vec::new();
    for source in SOURCES {
        println!("cargo::rerun-if-changed={source}");
        collect(Path::new(source), &mut files);
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let fingerprint: String = hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    println!("cargo::rustc-env=RAPPORT_FOLD_FINGERPRINT={fingerprint}");
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).unwrap_or_else(|e| panic!("listing {}: {e}", path.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("listing {}: {e}", path.display()));
            collect(&entry.path(), files);
        }
    } else if path.is_file() {
        files.push(path.to_owned());
    } else {
        panic!(
            "{} is not there: the fold fingerprint would not cover it",
            path.display()
        );
    }
}
