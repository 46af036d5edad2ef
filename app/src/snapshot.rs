//! Snapshots of the read model, so that a restart folds only the events
//! recorded since the last one instead of the whole ledger.
//!
//! A snapshot is a cache, never a source of truth. It is used only when
//! every check passes, and otherwise set aside with the reason logged
//! while the read model is rebuilt from the ledger:
//! - its checksum (SHA-256 over everything before it) matches, so a torn or
//!   altered file is never read as a read model;
//! - it was written by a build with the same fold: the fingerprint covers
//!   the sources of every crate whose code or data layout shapes the read
//!   model, and `Cargo.lock`, so any change to them starts afresh;
//! - the ledger still holds the last event it folded, at the same position
//!   with the same stream and version (a ledger restored from an older
//!   backup, or another ledger's snapshot, fails this).
//!
//! Written to a temporary file in the same directory, synced, then renamed
//! over the old one: a crash leaves the old snapshot or the new one, never
//! half of one. The file holds personal data as the ledger does, readable
//! by its owner only.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rapport_domain::{Position, StreamName};
use rapport_projections::Horizon;
use rapport_store::{EventStore, StoreError};
use sha2::{Digest, Sha256};

use crate::read_model::{ReadModel, fold_onto, rebuild_read_model};

const MAGIC: &[u8] = b"rapport read-model snapshot\n";
/// The layout of the file around the read model; the read model's own
/// layout is covered by `FOLD_FINGERPRINT`.
const FORMAT: u32 = 1;
/// Made by the build script from the sources that shape the read model.
const FOLD_FINGERPRINT: &str = env!("RAPPORT_FOLD_FINGERPRINT");
const CHECKSUM_BYTES: usize = 32;
/// A larger file is not read: no read model this machine can hold is that big.
pub const SNAPSHOT_BYTES_MAX: u64 = 8 << 30;

/// The snapshot kept beside a ledger file.
pub fn snapshot_path(ledger: &Path) -> PathBuf {
    let mut name = ledger.as_os_str().to_owned();
    name.push(".snapshot");
    PathBuf::from(name)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    format: u32,
    fold: String,
    /// The last event folded, as the ledger must still hold it.
    position: Position,
    stream: StreamName,
    version: u64,
    event_id: uuid::Uuid,
}

/// What a written snapshot covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saved {
    pub position: Position,
    pub events: u64,
    pub bytes: u64,
}

/// Why a snapshot was not used.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("there is no snapshot at {0}")]
    Missing(PathBuf),
    #[error("the snapshot {path} is set aside: {why}")]
    SetAside { path: PathBuf, why: String },
    #[error("the ledger could not be read to check the snapshot: {0}")]
    Store(#[from] StoreError),
}

/// Where a read model started from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Start {
    /// The snapshot's position; `None` when it was rebuilt from the start.
    pub snapshot: Option<Position>,
    /// Events the snapshot had folded (0 for a rebuild).
    pub snapshot_events: u64,
}

/// The read model as known at `until` (the whole ledger if `None`): the
/// snapshot at `path` with the events after it folded on, when it is
/// usable and not past `until`; otherwise rebuilt from the start.
pub async fn load_or_rebuild(
    store: &(impl EventStore + Clone),
    path: &Path,
    until: Option<Position>,
) -> Result<(ReadModel, Start), StoreError> {
    let rebuilt = Start::default();
    match load(store, path).await {
        Ok(model) if until.is_none_or(|until| model.projection.position().is_some_and(|at| at <= until)) => {
            let start = Start {
                snapshot: model.projection.position(),
                snapshot_events: model.projection.events_applied(),
            };
            let horizon = Horizon {
                known_at: until,
                occurred_by: None,
            };
            Ok((fold_onto(store, model, horizon).await?, start))
        }
        Ok(_) | Err(Unusable::Missing(_)) => Ok((rebuild_read_model(store, until).await?, rebuilt)),
        Err(unusable) => {
            tracing::warn!(%unusable, "rebuilding the read model from the whole ledger");
            Ok((rebuild_read_model(store, until).await?, rebuilt))
        }
    }
}

/// Writes `model` to `path` (nothing for a model that folded no event).
pub fn save(path: &Path, model: &ReadModel) -> std::io::Result<Option<Saved>> {
    let Some(last) = model.last_event else {
        return Ok(None);
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let header = Header {
        format: FORMAT,
        fold: FOLD_FINGERPRINT.to_owned(),
        position: last.position,
        stream: last.stream,
        version: last.version,
        event_id: last.event_id,
    };
    let file = tempfile::Builder::new()
        .prefix(".rapport-snapshot-")
        .tempfile_in(directory)?;
    let mut out = Checksummed {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        bytes: 0,
    };
    out.write_all(MAGIC)?;
    let out = postcard::to_io(&header, out).map_err(std::io::Error::other)?;
    let out = postcard::to_io(model, out).map_err(std::io::Error::other)?;
    let Checksummed {
        mut inner,
        hasher,
        bytes,
    } = out;
    inner.write_all(&hasher.finalize())?;
    let file = inner.into_inner().map_err(|e| e.into_error())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(directory)?.sync_all()?;
    Ok(Some(Saved {
        position: last.position,
        events: model.projection.events_applied(),
        bytes: bytes + CHECKSUM_BYTES as u64,
    }))
}

/// The snapshot at `path`, if it passes every check against `store`.
pub async fn load(store: &impl EventStore, path: &Path) -> Result<ReadModel, Unusable> {
    let owned = path.to_owned();
    let decoded = tokio::task::spawn_blocking(move || decode(&owned))
        .await
        .map_err(|stopped| set_aside(path, format!("reading it stopped: {stopped}")))??;
    let (header, model) = decoded;
    let held = store.read_event(header.stream, header.event_id).await?;
    match held {
        Some(event) if event.position == header.position && event.version == header.version => Ok(model),
        Some(event) => Err(set_aside(
            path,
            format!(
                "the ledger holds its last event {} at position {}, not {}",
                header.event_id, event.position, header.position
            ),
        )),
        None => Err(set_aside(
            path,
            format!(
                "the ledger does not hold its last event {} (position {}): it belongs to another ledger or a later one",
                header.event_id, header.position
            ),
        )),
    }
}

fn set_aside(path: &Path, why: String) -> Unusable {
    Unusable::SetAside {
        path: path.to_owned(),
        why,
    }
}

fn decode(path: &Path) -> Result<(Header, ReadModel), Unusable> {
    let size = match std::fs::metadata(path) {
        Ok(metadata) => metadata.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unusable::Missing(path.to_owned())),
        Err(e) => return Err(set_aside(path, format!("it cannot be read: {e}"))),
    };
    if size > SNAPSHOT_BYTES_MAX {
        return Err(set_aside(
            path,
            format!("it is {size} bytes, over the {SNAPSHOT_BYTES_MAX} a snapshot may have"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| set_aside(path, format!("it cannot be read: {e}")))?;
    let Some(body_end) = bytes.len().checked_sub(CHECKSUM_BYTES) else {
        return Err(set_aside(path, "it is too short to be a snapshot".to_owned()));
    };
    let (body, checksum) = bytes.split_at(body_end);
    if Sha256::digest(body).as_slice() != checksum {
        return Err(set_aside(
            path,
            "its checksum does not match (torn or altered)".to_owned(),
        ));
    }
    let Some(rest) = body.strip_prefix(MAGIC) else {
        return Err(set_aside(path, "it is not a rapport snapshot".to_owned()));
    };
    let (header, rest): (Header, _) =
        postcard::take_from_bytes(rest).map_err(|e| set_aside(path, format!("its header does not decode: {e}")))?;
    if header.format != FORMAT || header.fold != FOLD_FINGERPRINT {
        return Err(set_aside(
            path,
            "another build of rapport wrote it (the read model may be folded differently now)".to_owned(),
        ));
    }
    let (model, rest): (ReadModel, _) =
        postcard::take_from_bytes(rest).map_err(|e| set_aside(path, format!("its read model does not decode: {e}")))?;
    let consistent = rest.is_empty()
        && model.last_event.map(|last| last.position) == Some(header.position)
        && model.projection.position() == Some(header.position);
    if !consistent {
        return Err(set_aside(
            path,
            "its read model does not end where its header says".to_owned(),
        ));
    }
    Ok((header, model))
}

/// Counts and checksums what passes through to the file.
struct Checksummed<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
