//! API tokens: random secrets shown once at creation, stored only as
//! SHA-256 hashes, revocable. They live in their own SQLite file beside the
//! ledger (`<ledger>.tokens`): secrets are not ledger facts, and `rapport
//! token` may run while a server holds the ledger's write lock.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

/// What a token's holder may do (see docs/api.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sees and writes only the contacts they own.
    Sales,
    /// All contacts, and overrides of the gate.
    Manager,
    /// Reads everything, replays and verifies; writes nothing.
    Auditor,
    /// The policy, and everything else.
    Admin,
    /// Only `ingestEvents`.
    Ingest,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Sales, Role::Manager, Role::Auditor, Role::Admin, Role::Ingest];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Sales => "sales",
            Role::Manager => "manager",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Ingest => "ingest",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| anyhow::anyhow!("unknown role '{text}': use sales, manager, auditor, admin or ingest"))
    }
}

/// Who is calling: the token's name (for sales, the owner id of their
/// contacts) and its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// Which tokens a revocation ends: one by its id, or every token of a
/// name (a name may be all digits: the two are never guessed apart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoke {
    Id(i64),
    Named(String),
}

/// A token as listed: never the secret itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub revoked: bool,
}

const TOKEN_PREFIX: &str = "rpt_";
/// A token's name is the owner name of a sales user's contacts.
const NAME_CHARS_MAX: usize = rapport_domain::event::OWNER_CHARS_MAX;
/// Tokens a deployment may hold; a limit like every other.
const TOKENS_MAX: i64 = 10_000;

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn tokens_path(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".tokens");
    PathBuf::from(name)
}

type ValidTokens = HashMap<[u8; 32], Principal>;

/// The token file, and in memory the valid tokens by hash. Authenticating
/// reads that map without a lock and without SQL (it is swapped whole);
/// it is reloaded after this process writes a token, and by `refresh` when
/// the file changed underneath (another process created or revoked one).
#[derive(Debug)]
pub struct TokenStore {
    connection: Mutex<Connection>,
    valid: ArcSwap<ValidTokens>,
    /// The file's `data_version` when `valid` was loaded.
    loaded_version: AtomicI64,
}

impl TokenStore {
    pub fn open(ledger: &Path) -> anyhow::Result<Self> {
        let path = tokens_path(ledger);
        let connection = Connection::open(&path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS tokens (
                 id         INTEGER PRIMARY KEY,
                 name       TEXT    NOT NULL,
                 role       TEXT    NOT NULL,
                 hash       BLOB    NOT NULL UNIQUE,
                 created_at TEXT    NOT NULL,
                 revoked_at TEXT
             ) STRICT;",
        )?;
        let store = TokenStore {
            valid: ArcSwap::from_pointee(HashMap::new()),
            loaded_version: AtomicI64::new(0),
            connection: Mutex::new(connection),
        };
        store.reload(&*store.connection()?)?;
        Ok(store)
    }

    fn reload(&self, connection: &Connection) -> anyhow::Result<()> {
        let data_version: i64 = connection.pragma_query_value(None, "data_version", |row| row.get(0))?;
        self.valid.store(Arc::new(load_valid(connection)?));
        self.loaded_version.store(data_version, Ordering::Release);
        Ok(())
    }

    /// Reloads the valid tokens if another process changed the file since.
    pub fn refresh(&self) -> anyhow::Result<()> {
        let connection = self.connection()?;
        let data_version: i64 = connection.pragma_query_value(None, "data_version", |row| row.get(0))?;
        if data_version != self.loaded_version.load(Ordering::Acquire) {
            self.reload(&connection)?;
        }
        Ok(())
    }

    /// Refreshes every `interval` on a background task for as long as the
    /// store lives, so a token revoked by `rapport token revoke` in another
    /// process stops working in a running server within that interval.
    pub fn keep_fresh(self: &Arc<Self>, interval: std::time::Duration) {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                let Some(store) = store.upgrade() else { return };
                if let Err(error) = store.refresh() {
                    tracing::warn!(%error, "reloading the tokens failed; the last ones loaded still hold");
                }
            }
        });
    }

    fn connection(&self) -> anyhow::Result<std::sync::MutexGuard<'_, Connection>> {
        self.connection
            .lock()
            .map_err(|_| anyhow::anyhow!("the token store is unusable after a panic"))
    }

    /// Creates a token and returns its secret: the only time it is shown.
    pub fn create(&self, role: Role, name: &str, now: &str) -> anyhow::Result<String> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > NAME_CHARS_MAX || name.chars().any(char::is_control) {
            anyhow::bail!("a token name must be 1 to {NAME_CHARS_MAX} printable characters");
        }
        let connection = self.connection()?;
        let count: i64 = connection.query_row("SELECT count(*) FROM tokens", [], |row| row.get(0))?;
        if count >= TOKENS_MAX {
            anyhow::bail!("there are already {TOKENS_MAX} tokens; revoke unused ones first");
        }
        let secret = format!(
            "{TOKEN_PREFIX}{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        connection.execute(
            "INSERT INTO tokens (name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), hash(&secret), now],
        )?;
        // `data_version` only moves for other connections' writes: reload
        // after our own.
        self.reload(&connection)?;
        Ok(secret)
    }

    pub fn list(&self) -> anyhow::Result<Vec<TokenInfo>> {
        let connection = self.connection()?;
        let mut statement =
            connection.prepare("SELECT id, name, role, created_at, revoked_at IS NOT NULL FROM tokens ORDER BY id")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get::<_, String>(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?;
        rows.map(|row| {
            let (id, name, role, created_at, revoked) = row?;
            Ok(TokenInfo {
                id,
                name,
                role: role.parse()?,
                created_at,
                revoked,
            })
        })
        .collect()
    }

    /// Revokes the token with this id, or every token with this name.
    /// Returns how many were revoked.
    pub fn revoke(&self, which: &Revoke, now: &str) -> anyhow::Result<usize> {
        let connection = self.connection()?;
        let revoked = match which {
            Revoke::Id(id) => connection.execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, now],
            )?,
            Revoke::Named(name) => connection.execute(
                "UPDATE tokens SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, now],
            )?,
        };
        self.reload(&connection)?;
        Ok(revoked)
    }

    /// The principal a bearer token stands for, if it is valid: no lock,
    /// no SQL.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 100 {
            return None;
        }
        self.valid.load().get(&hash(token)).cloned()
    }
}

fn load_valid(connection: &Connection) -> anyhow::Result<ValidTokens> {
    let mut statement = connection.prepare("SELECT hash, name, role FROM tokens WHERE revoked_at IS NULL")?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, Vec<u8>>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    let mut valid = HashMap::new();
    for row in rows {
        let (hash, name, role) = row?;
        if let Ok(hash) = <[u8; 32]>::try_from(hash) {
            valid.insert(
                hash,
                Principal {
                    name,
                    role: role.parse()?,
                },
            );
        }
    }
    Ok(valid)
}
