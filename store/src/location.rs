//! Where a ledger lives, as `--store` / `RAPPORT_STORE` name it: a path to
//! an embedded SQLite file, or a KurrentDB (EventStoreDB) connection string
//! such as `kurrentdb://host:2113?tls=false`, `esdb://…` or
//! `kurrentdb+discover://…`. Two settings in the query are rapport's own
//! and taken out before the rest reaches the client: `prefix` (the streams'
//! prefix, so several ledgers share one cluster) and `local` (where this
//! node keeps its own files: the read-model snapshot, the tokens, the
//! master key file).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The connection-string schemes the KurrentDB client reads.
const CLUSTER_SCHEMES: [&str; 8] = [
    "kurrentdb",
    "kurrentdb+discover",
    "esdb",
    "esdb+discover",
    "kurrent",
    "kurrent+discover",
    "kdb",
    "kdb+discover",
];
pub const DEFAULT_PREFIX: &str = "rapport-";
/// This node's files are named `<prefix>node.*` by default, so two ledgers
/// on one host never share tokens, keys or snapshots.
pub const DEFAULT_LOCAL_SUFFIX: &str = "node";
pub const PREFIX_BYTES_MAX: usize = 64;
/// KurrentDB's default `MaxAppendSize`: one append's bytes at most.
pub const DEFAULT_APPEND_BYTES_MAX: usize = 1_048_576;
/// The most a server can be configured to take in one append.
pub const APPEND_BYTES_MAX_CEILING: usize = 16 * 1_048_576;
pub const CONNECTION_BYTES_MAX: usize = 4_096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerLocation {
    /// The embedded ledger: one SQLite file.
    File(PathBuf),
    KurrentDb(ClusterLocation),
}

#[derive(Clone, PartialEq, Eq)]
pub struct ClusterLocation {
    /// The connection string as the client takes it (rapport's own
    /// settings removed). It may carry credentials: never print it.
    pub connection: String,
    /// Every stream of this ledger starts with it.
    pub prefix: String,
    /// The base name of this node's own files (`<local>.snapshot`, …).
    pub local: PathBuf,
    /// One append's bytes at most: the server's `MaxAppendSize`
    /// (`appendBytesMax=`, default 1 MiB).
    pub append_bytes_max: usize,
}

impl fmt::Debug for ClusterLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterLocation")
            .field("connection", &masked(&self.connection))
            .field("prefix", &self.prefix)
            .field("local", &self.local)
            .field("append_bytes_max", &self.append_bytes_max)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--store {shown}: {problem}")]
pub struct LocationError {
    shown: String,
    problem: String,
}

impl LedgerLocation {
    /// The path rapport's files for this ledger are named after: the
    /// ledger file itself, or the cluster node's `local` base.
    pub fn local_path(&self) -> &Path {
        match self {
            LedgerLocation::File(path) => path,
            LedgerLocation::KurrentDb(cluster) => &cluster.local,
        }
    }
}

impl From<PathBuf> for LedgerLocation {
    fn from(path: PathBuf) -> Self {
        LedgerLocation::File(path)
    }
}

impl From<&Path> for LedgerLocation {
    fn from(path: &Path) -> Self {
        LedgerLocation::File(path.to_path_buf())
    }
}

impl From<&PathBuf> for LedgerLocation {
    fn from(path: &PathBuf) -> Self {
        LedgerLocation::File(path.clone())
    }
}

impl From<&LedgerLocation> for LedgerLocation {
    fn from(location: &LedgerLocation) -> Self {
        location.clone()
    }
}

impl FromStr for LedgerLocation {
    type Err = LocationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let scheme = text.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
        match scheme {
            Some(scheme) if CLUSTER_SCHEMES.contains(&scheme.as_str()) => {
                ClusterLocation::parse(text).map(LedgerLocation::KurrentDb)
            }
            Some(_) if !Path::new(text).exists() => Err(LocationError {
                shown: masked(text),
                problem: format!(
                    "not a ledger file, and not a connection string rapport knows (schemes: {})",
                    CLUSTER_SCHEMES.join(", ")
                ),
            }),
            _ => Ok(LedgerLocation::File(PathBuf::from(text))),
        }
    }
}

impl fmt::Display for LedgerLocation {
    /// Safe to print: credentials are masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerLocation::File(path) => write!(f, "{}", path.display()),
            LedgerLocation::KurrentDb(cluster) => f.write_str(&masked(&cluster.connection)),
        }
    }
}

impl ClusterLocation {
    fn parse(text: &str) -> Result<Self, LocationError> {
        let refuse = |problem: String| LocationError {
            shown: masked(text),
            problem,
        };
        if text.len() > CONNECTION_BYTES_MAX {
            return Err(refuse(format!("longer than {CONNECTION_BYTES_MAX} bytes")));
        }
        let (base, query) = text.split_once('?').unwrap_or((text, ""));
        let mut prefix = DEFAULT_PREFIX.to_owned();
        let mut local = None;
        let mut append_bytes_max = DEFAULT_APPEND_BYTES_MAX;
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name.to_ascii_lowercase().as_str() {
                "prefix" => prefix = value.to_owned(),
                "local" if !value.is_empty() => local = Some(PathBuf::from(value)),
                "local" => return Err(refuse("local= needs a path".into())),
                "appendbytesmax" => {
                    append_bytes_max = value
                        .parse()
                        .ok()
                        .filter(|bytes| (1_024..=APPEND_BYTES_MAX_CEILING).contains(bytes))
                        .ok_or_else(|| {
                            refuse(format!(
                                "appendBytesMax= takes a number of bytes from 1024 to {APPEND_BYTES_MAX_CEILING}, the \
                                 server's MaxAppendSize"
                            ))
                        })?;
                }
                _ => passed.push(pair),
            }
        }
        check_prefix(&prefix).map_err(refuse)?;
        let local = local.unwrap_or_else(|| PathBuf::from(format!("{prefix}{DEFAULT_LOCAL_SUFFIX}")));
        let connection = match passed.is_empty() {
            true => base.to_owned(),
            false => format!("{base}?{}", passed.join("&")),
        };
        Ok(ClusterLocation {
            connection,
            prefix,
            local,
            append_bytes_max,
        })
    }
}

/// A prefix is lower-case letters, digits and dashes, so it needs no
/// escaping in the server's stream filter and never names a system stream.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let valid = !prefix.is_empty()
        && prefix.len() <= PREFIX_BYTES_MAX
        && prefix
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "prefix= takes 1 to {PREFIX_BYTES_MAX} lower-case letters, digits and dashes, got '{}'",
            prefix.chars().take(PREFIX_BYTES_MAX + 8).collect::<String>()
        ))
    }
}

/// The connection string with any password replaced, fit to print. It
/// fails closed: a password may hold `/`, `?` or `#`, so everything up to
/// the last `@` is taken for credentials.
pub fn masked(connection: &str) -> String {
    let Some((scheme, rest)) = connection.split_once("://") else {
        return connection.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((credentials, hosts)) => {
            let user: String = credentials
                .split([':', '/', '?', '#'])
                .next()
                .unwrap_or_default()
                .chars()
                .take(64)
                .collect();
            format!("{scheme}://{user}:***@{hosts}")
        }
        None => connection.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(text: &str) -> ClusterLocation {
        match text.parse::<LedgerLocation>() {
            Ok(LedgerLocation::KurrentDb(cluster)) => cluster,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn a_path_is_an_embedded_ledger_file() {
        assert_eq!(
            "ledgers/rapport.db".parse::<LedgerLocation>(),
            Ok(LedgerLocation::File(PathBuf::from("ledgers/rapport.db")))
        );
    }

    #[test]
    fn every_scheme_of_the_client_selects_the_cluster_and_keeps_its_settings() {
        for scheme in CLUSTER_SCHEMES {
            let found = cluster(&format!(
                "{scheme}://node1:2113,node2:2113?tls=false&nodePreference=follower"
            ));
            assert_eq!(
                found.connection,
                format!("{scheme}://node1:2113,node2:2113?tls=false&nodePreference=follower")
            );
            assert_eq!(found.prefix, DEFAULT_PREFIX);
            assert_eq!(found.local, PathBuf::from("rapport-node"));
        }
        assert_eq!(cluster("ESDB://h:1").connection, "ESDB://h:1");
    }

    #[test]
    fn rapports_own_settings_are_taken_out_of_what_the_client_sees() {
        let found =
            cluster("kurrentdb://h:2113?prefix=shop-eu-&tls=false&local=/var/lib/rapport/eu&appendBytesMax=4194304");
        assert_eq!(found.connection, "kurrentdb://h:2113?tls=false");
        assert_eq!(found.append_bytes_max, 4_194_304);
        assert_eq!(cluster("kurrentdb://h:2113").append_bytes_max, DEFAULT_APPEND_BYTES_MAX);
        // Two ledgers on one host never share a node's files by default.
        assert_eq!(
            cluster("kurrentdb://h:2113?prefix=shop-").local,
            PathBuf::from("shop-node")
        );
        assert_eq!(
            cluster("kurrentdb://h:2113?prefix=shop-eu-").local,
            PathBuf::from("shop-eu-node")
        );
        assert_eq!(found.prefix, "shop-eu-");
        assert_eq!(found.local, PathBuf::from("/var/lib/rapport/eu"));
        assert_eq!(cluster("kurrentdb://h:2113?prefix=a").connection, "kurrentdb://h:2113");
    }

    #[test]
    fn a_prefix_that_could_escape_the_filter_or_name_a_system_stream_is_refused() {
        for bad in ["", "$all", "Rapport-", "a.b", "a*", &"x".repeat(PREFIX_BYTES_MAX + 1)] {
            let text = format!("kurrentdb://h:2113?prefix={bad}");
            let error = text.parse::<LedgerLocation>().expect_err(bad);
            assert!(error.to_string().contains("prefix="), "{error}");
        }
        assert!("kurrentdb://h:2113?local=".parse::<LedgerLocation>().is_err());
        for bad in ["", "12", "lots", "99999999999"] {
            let text = format!("kurrentdb://h:2113?appendBytesMax={bad}");
            let error = text.parse::<LedgerLocation>().expect_err(bad);
            assert!(error.to_string().contains("appendBytesMax="), "{error}");
        }
    }

    #[test]
    fn an_unknown_scheme_is_refused_with_the_known_ones_named() {
        let error = "postgres://h/db".parse::<LedgerLocation>().expect_err("refused");
        assert!(error.to_string().contains("kurrentdb"), "{error}");
    }

    #[test]
    fn a_password_is_never_shown() {
        let location: LedgerLocation = "kurrentdb://admin:changeit@h:2113?tls=true".parse().expect("parses");
        let shown = location.to_string();
        assert_eq!(shown, "kurrentdb://admin:***@h:2113?tls=true");
        assert!(!format!("{location:?}").contains("changeit"));
        let error = "kurrentdb://admin:changeit@h:2113?prefix=BAD"
            .parse::<LedgerLocation>()
            .expect_err("refused");
        assert!(!error.to_string().contains("changeit"), "{error}");
        for tricky in ["pa/ss", "pa?ss", "pa#ss", "p@ss"] {
            let shown = masked(&format!("kurrentdb://admin:{tricky}@h:2113?tls=true"));
            assert!(!shown.contains(tricky) && !shown.contains("ss@"), "{shown}");
            assert!(shown.ends_with("@h:2113?tls=true"), "{shown}");
        }
    }
}
