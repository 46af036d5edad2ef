//! One-shot reads of a stream or of `$all`: each streams its answer from its
//! own task, a page of the log at a time, through a bounded channel, so a
//! large read neither holds the log's lock nor buffers more than a page ahead
//! of a slow reader.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::codegen::BoxStream;

use crate::filter::{Filter, default_all_allows};
use crate::log::{Record, StreamView};
use crate::proto::event_store::client::streams::ReadResp;
use crate::state::{Shared, Slot};
use crate::status;
use crate::wire::{self, UuidForm};

/// Messages queued between a reading task and its client: the server's own
/// channel size.
pub(crate) const CHANNEL_CAPACITY: usize = 32;
/// Events of a stream copied out of the log per lock.
pub(crate) const STREAM_PAGE: usize = 32;
/// `$all` records copied out of the log per lock, filtered outside it.
pub(crate) const SCAN_PAGE: usize = 256;

/// Where a stream read or subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamFrom {
    Start,
    End,
    Revision(u64),
}

/// Where a `$all` read or subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AllFrom {
    Start,
    End,
    Position { commit: u64, prepare: u64 },
}

/// A read of one stream.
#[derive(Debug)]
pub(crate) struct StreamRead {
    pub stream: String,
    pub from: StreamFrom,
    pub backwards: bool,
    pub count: u64,
    /// Whether to end with `last_stream_position` (`compatibility >= 1`).
    pub ends_with_last_position: bool,
    pub form: UuidForm,
}

/// A read of `$all`.
#[derive(Debug)]
pub(crate) struct AllRead {
    pub from: AllFrom,
    pub backwards: bool,
    pub count: u64,
    pub filter: Option<Filter>,
    pub form: UuidForm,
}

/// Whether a `$all` reader with this filter sees the record.
pub(crate) fn visible(filter: Option<&Filter>, record: &Record) -> bool {
    match filter {
        Some(filter) => filter.allows(&record.stream, &record.event_type),
        None => default_all_allows(&record.stream),
    }
}

/// Sends one message; `Err` when the client has gone.
pub(crate) async fn send(tx: &mpsc::Sender<Result<ReadResp, Status>>, message: ReadResp) -> Result<(), ()> {
    tx.send(Ok(message)).await.map_err(|_| ())
}

/// Starts a stream read. A tombstoned stream fails the call itself, before
/// any message, as the server's does; a missing one answers one
/// `stream_not_found` message.
pub(crate) fn read_stream(shared: Arc<Shared>, read: StreamRead) -> Result<BoxStream<ReadResp>, Status> {
    let slot = shared
        .open_read()
        .ok_or_else(|| status::full("too many reads open on the test double"))?;
    let view = shared.log().stream_view(&read.stream);
    match view {
        StreamView::Deleted => Err(status::stream_deleted(&read.stream)),
        StreamView::NotFound => {
            let answer = wire::stream_not_found(&read.stream);
            Ok(Box::pin(tokio_stream::iter([Ok(answer)])))
        }
        StreamView::Found { .. } => {
            let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
            tokio::spawn(stream_read_task(shared, read, tx, slot));
            Ok(Box::pin(ReceiverStream::new(rx)))
        }
    }
}

async fn stream_read_task(
    shared: Arc<Shared>,
    read: StreamRead,
    tx: mpsc::Sender<Result<ReadResp, Status>>,
    _slot: Slot,
) {
    let mut next = match (read.from, read.backwards) {
        (StreamFrom::Start, _) => Some(0),
        (StreamFrom::Revision(revision), _) => Some(revision),
        (StreamFrom::End, true) => Some(u64::MAX),
        // Forwards from the end there is nothing to read.
        (StreamFrom::End, false) => None,
    };
    let mut sent = 0_u64;
    let mut last_revision = None;
    while let Some(from) = next {
        let remaining = read.count.saturating_sub(sent);
        if remaining == 0 {
            break;
        }
        let want = remaining.min(STREAM_PAGE as u64) as usize;
        let page = {
            let log = shared.log();
            let deleted = log.stream_view(&read.stream) == StreamView::Deleted;
            last_revision = log.last_revision(&read.stream);
            match (deleted, read.backwards) {
                (true, _) => None,
                (false, true) => Some(log.stream_backward(&read.stream, from, want)),
                (false, false) => Some(log.stream_forward(&read.stream, from, want)),
            }
        };
        // Tombstoned while being read: the server fails the read there.
        let Some(page) = page else {
            let _ = tx.send(Err(status::stream_deleted(&read.stream))).await;
            return;
        };
        if page.is_empty() {
            break;
        }
        for record in &page {
            if send(&tx, wire::event(record, read.form)).await.is_err() {
                return;
            }
            sent += 1;
            next = if read.backwards {
                record.revision.checked_sub(1)
            } else {
                record.revision.checked_add(1)
            };
        }
    }
    if read.ends_with_last_position {
        let last = last_revision.or_else(|| shared.log().last_revision(&read.stream));
        if let Some(last) = last {
            let _ = send(&tx, wire::last_stream_position(last)).await;
        }
    }
}

/// Starts a `$all` read. Forwards, the record at the start position is the
/// first read; backwards, the first is the record that ends at or before it.
pub(crate) fn read_all(shared: Arc<Shared>, read: AllRead) -> Result<BoxStream<ReadResp>, Status> {
    let slot = shared
        .open_read()
        .ok_or_else(|| status::full("too many reads open on the test double"))?;
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(all_read_task(shared, read, tx, slot));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

async fn all_read_task(shared: Arc<Shared>, read: AllRead, tx: mpsc::Sender<Result<ReadResp, Status>>, _slot: Slot) {
    // Forwards: the next index to read; backwards: the index after the next.
    let mut cursor = {
        let log = shared.log();
        match (read.from, read.backwards) {
            // Backwards from the start there is nothing to read.
            (AllFrom::Start, _) => 0,
            (AllFrom::End, _) => log.len(),
            (AllFrom::Position { commit, prepare }, false) => log.index_at_or_after(commit, prepare),
            (AllFrom::Position { commit, prepare }, true) => log.count_ending_by(commit, prepare),
        }
    };
    let mut sent = 0_u64;
    while sent < read.count {
        let page = {
            let log = shared.log();
            if read.backwards {
                log.records_before(cursor, SCAN_PAGE)
            } else {
                log.records_from(cursor, SCAN_PAGE)
            }
        };
        if page.is_empty() {
            return;
        }
        for record in &page {
            cursor = if read.backwards {
                cursor.saturating_sub(1)
            } else {
                cursor + 1
            };
            if !visible(read.filter.as_ref(), record) {
                continue;
            }
            if send(&tx, wire::event(record, read.form)).await.is_err() {
                return;
            }
            sent += 1;
            if sent >= read.count {
                return;
            }
        }
    }
}
