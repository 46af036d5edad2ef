//! Snapshots of the read model, so that a restart folds only the events
//! recorded since the last one instead of the whole ledger.
//!
//! A snapshot is a cache, never a source of truth. It is used only when
//! every check passes, and otherwise set aside with the reason logged
//! while the read model is rebuilt from the ledger:
//! - every frame's checksum (SHA-256) matches and the file ends with the
//!   frame that counts them, so a torn or damaged file is never read as a
//!   read model;
//! - it was written by a build with the same fold: the fingerprint covers
//!   the sources of every crate whose code or data layout shapes the read
//!   model, and `Cargo.lock`, so any change to them starts afresh;
//! - the ledger still holds the last event it folded, at the same position
//!   with the same stream and version (a ledger restored from an older
//!   backup, or another ledger's snapshot, fails this).
//!
//! The file is a sequence of frames (a kind, a length, postcard bytes, their
//! SHA-256): the header, the rest of the projection, then the relationships,
//! the directory's entries and the violations a chunk at a time, then the
//! end. Neither writing nor reading holds more than a few frames besides
//! the read model itself (the largest, the projection's rest, holds the
//! policies, names and campaigns), and on load a second thread decodes the
//! relationships while this one reads and decodes the rest.
//!
//! Written to a temporary file in the same directory, synced, then renamed
//! over the old one: a crash leaves the old snapshot or the new one, never
//! half of one. The directory's frames, the only ones with personal data,
//! are sealed with a key derived from the ledger's master key, so no
//! personal data reaches the disk in the clear; the file is readable by
//! its owner only. An erasure writes the snapshot again at once.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rapport_domain::{Position, StreamName, Timestamp};
use rapport_projections::{Horizon, LoadedRest, Projection, RestoredRelationships, Violation};
use rapport_store::sealing::SealingKey;
use rapport_store::{EventStore, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::read_model::{Directory, LastEvent, LoadedEntry, ReadModel, fold_onto, rebuild_read_model};

const MAGIC: &[u8] = b"rapport read-model snapshot\n";
/// The layout of the frames; the read model's own layout is covered by
/// `FOLD_FINGERPRINT`.
const FORMAT: u32 = 3;
/// Bound into every sealed frame, with the snapshot's last event and the
/// frame's place: a sealed frame opens in its own snapshot and place only.
const SEALED_DIRECTORY: &[u8] = b"rapport/snapshot/directory";

fn sealed_place(last_event: uuid::Uuid, frame: u64) -> Vec<u8> {
    let mut place = SEALED_DIRECTORY.to_vec();
    place.extend_from_slice(last_event.as_bytes());
    place.extend_from_slice(&frame.to_le_bytes());
    place
}
/// Made by the build script from the sources that shape the read model.
const FOLD_FINGERPRINT: &str = env!("RAPPORT_FOLD_FINGERPRINT");
/// A larger file is not read: no read model this machine can hold is that big.
pub const SNAPSHOT_BYTES_MAX: u64 = 8 << 30;
/// A larger frame is damage, not data (the largest, the projection's rest,
/// holds the campaigns).
const FRAME_BYTES_MAX: usize = 1 << 30;
/// Directory entries and violations a frame.
const ENTRIES_PER_FRAME: usize = 2_048;
/// Relationship frames read ahead of the thread decoding them.
const FRAMES_QUEUED: usize = 8;

const HEADER: u8 = 1;
const REST: u8 = 2;
const RELATIONSHIPS: u8 = 3;
const DIRECTORY: u8 = 4;
const VIOLATIONS: u8 = 5;
const END: u8 = 6;

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

/// The last frame: how many came before it, and what the read model
/// keeps besides the projection and the directory.
#[derive(serde::Serialize, serde::Deserialize)]
struct Trailer {
    frames: u64,
    recorded_at: Option<Timestamp>,
    last_event: LastEvent,
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
/// usable and not past `until`; otherwise rebuilt from the start. Without
/// the key its directory is sealed with, no snapshot can be used.
pub async fn load_or_rebuild(
    store: &(impl EventStore + Clone),
    path: &Path,
    key: Option<&SealingKey>,
    until: Option<Position>,
) -> Result<(ReadModel, Start), StoreError> {
    let rebuilt = Start::default();
    let Some(key) = key else {
        return Ok((rebuild_read_model(store, until).await?, rebuilt));
    };
    match load(store, path, key).await {
        Ok(model) if until.is_none_or(|until| model.projection.position().is_some_and(|at| at <= until)) => {
            let start = Start {
                snapshot: model.projection.position(),
                snapshot_events: model.projection.events_applied(),
            };
            let horizon = Horizon {
                known_at: until,
                occurred_by: None,
            };
            let model = fold_onto(store, model, horizon).await?;
            tracing::info!(
                snapshot = ?start.snapshot,
                folded_after = model.projection.events_applied() - start.snapshot_events,
                "read model from its snapshot"
            );
            Ok((model, start))
        }
        Ok(_) | Err(Unusable::Missing(_)) => Ok((rebuild_read_model(store, until).await?, rebuilt)),
        Err(unusable) => {
            tracing::warn!(%unusable, "rebuilding the read model from the whole ledger");
            Ok((rebuild_read_model(store, until).await?, rebuilt))
        }
    }
}

/// Writes `model` to `path` (nothing for a model that folded no event).
pub fn save(path: &Path, key: &SealingKey, model: &ReadModel) -> std::io::Result<Option<Saved>> {
    encode(path, key, model)?.map(Encoded::commit).transpose()
}

/// A snapshot written to its temporary file, not yet in place.
#[derive(Debug)]
pub struct Encoded {
    file: tempfile::NamedTempFile,
    path: PathBuf,
    saved: Saved,
}

impl Encoded {
    /// Syncs it and puts it in place of the old one. Needs no read model:
    /// a caller that holds one locked can let go before this.
    pub fn commit(self) -> std::io::Result<Saved> {
        self.file.as_file().sync_all()?;
        self.file.persist(&self.path).map_err(|e| e.error)?;
        std::fs::File::open(directory_of(&self.path))?.sync_all()?;
        Ok(self.saved)
    }
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// The prefix of this snapshot's temporary files, its own so that ledgers
/// sharing a directory never remove one another's.
fn temporary_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    format!(".{name}.writing-")
}

/// Writes `model`'s frames to a temporary file beside `path` (nothing for
/// a model that folded no event), first removing any a crash left behind:
/// each holds personal data.
pub fn encode(path: &Path, key: &SealingKey, model: &ReadModel) -> std::io::Result<Option<Encoded>> {
    let Some(last) = model.last_event else {
        return Ok(None);
    };
    let directory = directory_of(path);
    let prefix = temporary_prefix(path);
    for entry in std::fs::read_dir(directory)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_file(entry.path())?;
        }
    }
    let file = tempfile::Builder::new().prefix(&prefix).tempfile_in(directory)?;
    let mut out = Frames {
        out: BufWriter::with_capacity(1 << 20, file),
        payload: Vec::new(),
        frames: 0,
        bytes: MAGIC.len() as u64,
    };
    out.out.write_all(MAGIC)?;
    out.write(
        HEADER,
        &Header {
            format: FORMAT,
            fold: FOLD_FINGERPRINT.to_owned(),
            position: last.position,
            stream: last.stream,
            version: last.version,
            event_id: last.event_id,
        },
    )?;
    let projection = &model.projection;
    out.write(REST, &projection.saved_rest().map_err(std::io::Error::other)?)?;
    // Interleaved, so that both loading threads have work all along.
    let mut relationships = projection.relationship_chunks();
    let mut entries = model.directory.saved_chunks(ENTRIES_PER_FRAME);
    loop {
        let (chunk, entry_chunk) = (relationships.next(), entries.next());
        if chunk.is_none() && entry_chunk.is_none() {
            break;
        }
        if let Some(chunk) = chunk {
            out.write(RELATIONSHIPS, &chunk)?;
        }
        if let Some(entry_chunk) = entry_chunk {
            out.write_sealed(DIRECTORY, &entry_chunk, key, last.event_id)?;
        }
    }
    for violations in projection.violations().chunks(ENTRIES_PER_FRAME) {
        out.write(VIOLATIONS, &violations)?;
    }
    let trailer = Trailer {
        frames: out.frames,
        recorded_at: model.recorded_at,
        last_event: last,
    };
    out.write(END, &trailer)?;
    let bytes = out.bytes;
    let file = out.out.into_inner().map_err(|e| e.into_error())?;
    Ok(Some(Encoded {
        file,
        path: path.to_owned(),
        saved: Saved {
            position: last.position,
            events: projection.events_applied(),
            bytes,
        },
    }))
}

/// Frames out: a kind, the payload's length (4 bytes, little-endian), the
/// postcard payload, its SHA-256.
struct Frames<W> {
    out: W,
    /// Reused from frame to frame.
    payload: Vec<u8>,
    frames: u64,
    bytes: u64,
}

impl<W: Write> Frames<W> {
    fn write(&mut self, kind: u8, value: &impl Serialize) -> std::io::Result<()> {
        self.payload.clear();
        let payload = postcard::to_extend(value, std::mem::take(&mut self.payload)).map_err(std::io::Error::other)?;
        self.emit(kind, payload)
    }

    /// As `write`, the payload sealed with `key`.
    fn write_sealed(
        &mut self,
        kind: u8,
        value: &impl Serialize,
        key: &SealingKey,
        last_event: uuid::Uuid,
    ) -> std::io::Result<()> {
        self.payload.clear();
        let payload = postcard::to_extend(value, std::mem::take(&mut self.payload)).map_err(std::io::Error::other)?;
        let sealed = key.seal(&sealed_place(last_event, self.frames), &payload);
        self.payload = payload;
        self.emit(kind, sealed)
    }

    fn emit(&mut self, kind: u8, payload: Vec<u8>) -> std::io::Result<()> {
        let length = u32::try_from(payload.len())
            .ok()
            .filter(|length| *length as usize <= FRAME_BYTES_MAX)
            .ok_or_else(|| std::io::Error::other(format!("a snapshot frame of {} bytes", payload.len())))?;
        self.out.write_all(&[kind])?;
        self.out.write_all(&length.to_le_bytes())?;
        self.out.write_all(&payload)?;
        self.out.write_all(&Sha256::digest(&payload))?;
        self.frames += 1;
        self.bytes += 1 + 4 + payload.len() as u64 + 32;
        if payload.capacity() >= self.payload.capacity() {
            self.payload = payload;
        }
        Ok(())
    }
}

/// The snapshot at `path`, if it passes every check against `store`.
pub async fn load(store: &impl EventStore, path: &Path, key: &SealingKey) -> Result<ReadModel, Unusable> {
    let owned = path.to_owned();
    let key = key.clone();
    let decoded = tokio::task::spawn_blocking(move || decode(&owned, &key))
        .await
        .map_err(|stopped| set_aside(path, format!("reading it stopped: {stopped}")))??;
    let (header, model) = decoded;
    // The event at the header's version, read directly (a stream can be
    // long, and a walk by id would read all of it).
    let held = store
        .read_stream(header.stream, header.version, 1)
        .await?
        .into_iter()
        .next()
        .filter(|event| event.event_id == header.event_id);
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

fn decode(path: &Path, key: &SealingKey) -> Result<(Header, ReadModel), Unusable> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unusable::Missing(path.to_owned())),
        Err(e) => return Err(set_aside(path, format!("it cannot be read: {e}"))),
    };
    let size = file
        .metadata()
        .map_err(|e| set_aside(path, format!("it cannot be read: {e}")))?
        .len();
    if size > SNAPSHOT_BYTES_MAX {
        return Err(set_aside(
            path,
            format!("it is {size} bytes, over the {SNAPSHOT_BYTES_MAX} a snapshot may have"),
        ));
    }
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0; MAGIC.len()];
    if input.read_exact(&mut magic).is_err() || magic != MAGIC {
        return Err(set_aside(path, "it is not a rapport snapshot".to_owned()));
    }
    // No frame is larger than the file: a damaged length allocates nothing.
    let frame_max = FRAME_BYTES_MAX.min(usize::try_from(size).unwrap_or(usize::MAX));
    let header: Header = Frame::read(&mut input, frame_max)
        .and_then(|frame| frame.decode(HEADER))
        .map_err(|why| set_aside(path, why))?;
    if header.format != FORMAT || header.fold != FOLD_FINGERPRINT {
        return Err(set_aside(
            path,
            "another build of rapport wrote it (the read model may be folded differently now)".to_owned(),
        ));
    }
    let model = decode_model(&mut input, frame_max, key, header.event_id).map_err(|why| set_aside(path, why))?;
    let ends_there = model.last_event.map(|last| last.position) == Some(header.position)
        && model.projection.position() == Some(header.position);
    if !ends_there {
        return Err(set_aside(
            path,
            "its read model does not end where its header says".to_owned(),
        ));
    }
    Ok((header, model))
}

/// The frames after the header: the relationships (the most work) on a
/// thread of their own, everything else on this one as it reads.
fn decode_model(
    input: &mut impl Read,
    frame_max: usize,
    key: &SealingKey,
    last_event: uuid::Uuid,
) -> Result<ReadModel, String> {
    let rest: LoadedRest = Frame::read(input, frame_max)?.decode(REST)?;
    let mut relationships = RestoredRelationships::for_rest(&rest);
    std::thread::scope(|scope| {
        let (to_relationships, relationship_frames) = std::sync::mpsc::sync_channel::<Frame>(FRAMES_QUEUED);
        let relationships = scope.spawn(move || -> Result<RestoredRelationships, String> {
            for frame in relationship_frames {
                let (ids, chunk) = frame.decode(RELATIONSHIPS)?;
                relationships.extend(ids, chunk)?;
            }
            Ok(relationships)
        });
        let mut frames = 2u64;
        let mut directory = Vec::new();
        let mut violations: Vec<Violation> = Vec::new();
        let trailer = loop {
            let frame = Frame::read(input, frame_max)?;
            match frame.kind {
                RELATIONSHIPS => to_relationships
                    .send(frame)
                    .map_err(|_| "the relationships stopped being decoded".to_owned())?,
                DIRECTORY => directory.extend(
                    frame
                        .decode_sealed::<Vec<LoadedEntry>>(DIRECTORY, key, &sealed_place(last_event, frames))?
                        .into_iter()
                        .map(LoadedEntry::into_entry),
                ),
                VIOLATIONS => violations.extend(frame.decode::<Vec<Violation>>(VIOLATIONS)?),
                END => break frame.decode::<Trailer>(END)?,
                other => return Err(format!("an unexpected frame of kind {other}")),
            }
            frames += 1;
        };
        drop(to_relationships);
        let relationships = relationships
            .join()
            .map_err(|_| "decoding the relationships stopped".to_owned())??;
        if trailer.frames != frames {
            return Err(format!("it has {frames} frames where {} were written", trailer.frames));
        }
        let mut after = [0; 1];
        if !matches!(input.read(&mut after), Ok(0)) {
            return Err("something follows its last frame".to_owned());
        }
        Ok(ReadModel {
            projection: Projection::restored(rest, relationships, violations)?,
            directory: Directory::restored(directory),
            recorded_at: trailer.recorded_at,
            last_event: Some(trailer.last_event),
        })
    })
}

/// One frame as read, checked when decoded (on whichever thread decodes it).
struct Frame {
    kind: u8,
    payload: Vec<u8>,
    checksum: [u8; 32],
}

impl Frame {
    fn read(input: &mut impl Read, frame_max: usize) -> Result<Frame, String> {
        let torn = |e: std::io::Error| format!("it ends inside a frame (torn): {e}");
        let mut prefix = [0; 5];
        input.read_exact(&mut prefix).map_err(torn)?;
        let [kind, length @ ..] = prefix;
        let length = u32::from_le_bytes(length) as usize;
        if length > frame_max {
            return Err(format!("a frame claims {length} bytes"));
        }
        let mut payload = vec![0; length];
        input.read_exact(&mut payload).map_err(torn)?;
        let mut checksum = [0; 32];
        input.read_exact(&mut checksum).map_err(torn)?;
        Ok(Frame {
            kind,
            payload,
            checksum,
        })
    }

    fn decode<T: DeserializeOwned>(&self, kind: u8) -> Result<T, String> {
        self.check(kind)?;
        value_of(kind, &self.payload)
    }

    /// As `decode`, for a frame sealed with `key`.
    fn decode_sealed<T: DeserializeOwned>(&self, kind: u8, key: &SealingKey, place: &[u8]) -> Result<T, String> {
        self.check(kind)?;
        let payload = key.open(place, &self.payload).ok_or_else(|| {
            format!("a frame of kind {kind} does not open under this ledger's key (another ledger's, or altered)")
        })?;
        value_of(kind, &payload)
    }

    fn check(&self, kind: u8) -> Result<(), String> {
        if self.kind != kind {
            return Err(format!("a frame of kind {} where {kind} belongs", self.kind));
        }
        if Sha256::digest(&self.payload).as_slice() != self.checksum {
            return Err(format!("a frame's checksum does not match (kind {kind}): damaged"));
        }
        Ok(())
    }
}

fn value_of<T: DeserializeOwned>(kind: u8, payload: &[u8]) -> Result<T, String> {
    match postcard::take_from_bytes::<T>(payload) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(format!("a frame of kind {kind} has bytes past its value")),
        Err(e) => Err(format!("a frame of kind {kind} does not decode: {e}")),
    }
}
