//! A gRPC test double of the KurrentDB (EventStoreDB) server: in memory,
//! plaintext HTTP/2 on 127.0.0.1, spoken to through the official `kurrentdb`
//! client with the connection string from [`Double::url`]
//! (`kurrentdb://127.0.0.1:PORT?tls=false`).
//!
//! It serves what the client's `append_to_stream`, `read_stream`, `read_all`,
//! `subscribe_to_stream`, `subscribe_to_all`, `delete_stream` and
//! `tombstone_stream` call, by the server's rules as read in KurrentDB's own
//! source (`Streams.*.cs`, the `Enumerator.*` classes, `IndexWriter`,
//! `AllReader`, `RpcExceptions`). Everything else answers UNIMPLEMENTED.
//!
//! # Connecting
//!
//! The client first calls `ServerFeatures.GetSupportedMethods`; the double
//! lists read, append, delete and tombstone, version 25.0.0, and not
//! BatchAppend: `append_to_stream` always uses the classic client-streaming
//! `Streams.Append` (options first, then the events), and `batch_append`
//! answers `Error::UnsupportedFeature`. The client installs its own rustls
//! provider (aws-lc-rs) when it is built: nothing to install for plaintext.
//!
//! Two things of the client 1.2.0 itself: it sleeps `discoveryInterval`
//! (500 ms) before it first connects (add `&discoveryInterval=10` to the URL
//! in tests), and it leaves Nagle's algorithm on (no `TCP_NODELAY`;
//! KurrentDB-Client-Rust issue 232, fixed after 1.2.0), so it holds back a
//! call's second write (the request's DATA frame after its HEADERS) until
//! the first is acknowledged. A server that delays its ACKs, as Linux does by
//! default, makes every call wait about 40 ms on loopback. The double does
//! not: on Linux it sets `TCP_QUICKACK` again after every read from a
//! connection (the kernel leaves quick-ack mode on its own; set once, it does
//! not help), so calls take about 1 to 2 ms (`examples/call_latency.rs`);
//! elsewhere the delay stays.
//! Connections have `TCP_NODELAY` on; at most 1,024 are open at once, one
//! more is closed as soon as it is accepted.
//!
//! # Appends (`Streams.Append`)
//!
//! - Expected revision `any`, `no_stream`, `stream_exists` or an exact
//!   revision. A conflict answers an `AppendResp` carrying
//!   `wrong_expected_version` (current revision or `current_no_stream`, and
//!   the expected one, in both the current and the 20.6.0 fields): the client
//!   turns it into `Error::WrongExpectedVersion { expected, current }`.
//! - Idempotency, as the server's `IndexWriter.CheckCommit`:
//!   - exact revision or `no_stream`, when the stream is past it: if the
//!     events at the following revisions carry exactly the proposed ids, in
//!     order, the answer is success with the revision and position of the
//!     last of them, and nothing is written; if the first differs it is a
//!     wrong expected version; if a later one differs, or the retry is longer
//!     than what follows, it is a partial retry: wrong expected version too.
//!   - `any` and `stream_exists`: each id is looked up in the stream wherever
//!     it is (the server keeps a cache of recent ids; the double keeps them
//!     all). The first id unknown: the events are new and written, duplicates
//!     of later ids included, as the server does. All known: success with the
//!     revision and position of the last id's event. Only some: wrong expected
//!     version.
//! - Each event gets `created` (one clock reading per append): the metadata
//!   key "created", ticks of 100 ns since 1970-01-01 UTC as a decimal string
//!   (the server's `ToTicksSinceEpoch`; not .NET's ticks since 0001-01-01),
//!   which the client reads into `RecordedEvent::created`, whole seconds
//!   only. The event keeps its "type"; "content-type" is kept as JSON or not (anything other than
//!   `application/json` reads back as `application/octet-stream`, like the
//!   server's Append, which drops other metadata keys too). Data and custom
//!   metadata are stored as given. "type" or "content-type" missing answers
//!   INVALID_ARGUMENT with `exception: missing-required-metadata-property`.
//! - One append carries at most 1 MiB (the server's `MaxAppendSize`; the
//!   double counts each event's bytes in its log, header included):
//!   INVALID_ARGUMENT, `exception: maximum-append-size-exceeded`.
//! - The log holds at most 5,000,000 records and 2 GiB of payload: past that,
//!   RESOURCE_EXHAUSTED (the client's `Error::Grpc`), writing nothing.
//! - An append to a tombstoned stream, or with `stream_exists` to a
//!   soft-deleted one, answers "stream deleted" (below).
//!
//! # Positions
//!
//! One transaction log: each record's position is where it starts; the next
//! one starts after its bytes (an 88-byte header plus stream name, type, data
//! and custom metadata), the first at 1,536. Positions are sparse and grow,
//! never 1, 2, 3. Commit and prepare positions are equal, as the server gives
//! for events written without an explicit transaction (each is its own
//! commit); an event read from a stream carries its position too. An append
//! answers the position of its last event.
//!
//! # Reads (`Streams.Read` with a count)
//!
//! - A stream, forwards or backwards, from the start, the end or a revision
//!   (inclusive both ways), up to the count. A missing or soft-deleted stream
//!   answers one `stream_not_found` message (the client's `next()` gives
//!   `Error::ResourceNotFound`); a tombstoned one fails the call itself with
//!   "stream deleted" (the client's `read_stream` returns
//!   `Error::ResourceDeleted`). The client asks for `compatibility` 1, so the
//!   read ends with `last_stream_position`, which `next()` skips.
//!   `first_stream_position` is never sent.
//! - `$all`, forwards or backwards, from the start, the end or a position.
//!   Forwards, the record at the start position is the first read
//!   (inclusive). Backwards, the server reads records that end at or before
//!   the position (it takes a post-position), so a backward read from an
//!   event's own position starts with the event before it.
//! - `$all` shows every record: events, the `$metadata` records a soft delete
//!   writes to `$$<stream>` and `$streamDeleted` tombstones, minus the
//!   server's own bookkeeping (`$epoch-information`, persistent subscription
//!   checkpoints). System streams (`$`-prefixed) are there unless filtered
//!   out (the client's `SubscriptionFilter::exclude_system_events`).
//! - Filters by stream name or event type, by prefixes or a regex (a regex
//!   wins when both are given, as on the server). The regex is Rust's `regex`
//!   dialect, not .NET's: no look-around or back-references; at most 1 KiB.
//!
//! # Subscriptions (`Streams.Read` with `subscription`)
//!
//! - First a confirmation with a fresh subscription id; then the events after
//!   the start (exclusive: from revision `r` the first is `r + 1`, from a
//!   position the first is the event after it; from the start, all; from the
//!   end, only new ones); then `caught_up` once the log is read, with the
//!   last revision (stream) or position (`$all`) considered, omitted when
//!   there is none; then live events as they are appended. `fell_behind` is
//!   never sent (the server does not send it either).
//! - Filtered `$all` subscriptions send `checkpoint`s: after every
//!   `checkpoint_interval_multiplier × max` records considered (the window's
//!   `max`, or 32 when the client leaves it), passing the filter or not, at
//!   the position of the record that completes the interval; and one when
//!   going live, just before `caught_up`. The server counts per page while
//!   catching up, so its checkpoints land near these, not on them. A
//!   checkpoint is always an event's position (or the start position): a
//!   valid, exclusive place to resume from. Unfiltered subscriptions send none.
//! - A stream subscription on a tombstoned stream: confirmation, then "stream
//!   deleted"; when live, the `$streamDeleted` event comes first. It never
//!   sends `stream_not_found` (the client would panic on it): a missing
//!   stream is simply caught up and waited for.
//! - Bounded: each subscription is a cursor over the log sending through a
//!   channel of 32 messages; a slow reader only makes it wait, as the server
//!   goes back to reading the log when a subscriber falls behind; the double
//!   does not drop slow subscribers (the server does not either). At most
//!   1,000 subscriptions and 1,000 streaming reads at once; one more answers
//!   RESOURCE_EXHAUSTED.
//!
//! # Deletes (`Streams.Delete`, `Streams.Tombstone`)
//!
//! - Soft delete: the same expected-revision rules (no events), then a
//!   `$metadata` record `{"$tb":9223372036854775807}` in `$$<stream>`. The
//!   stream reads as not found; an append with `any`, `no_stream` (or the
//!   exact last revision) recreates it from the next revision, writing
//!   `$metadata` `{"$tb":N}` first; its old events stay hidden.
//! - Tombstone: a `$streamDeleted` record in the stream itself, at revision
//!   9223372036854775807 (long.MaxValue). Every later append, delete or read
//!   of the stream answers "stream deleted".
//! - Both answer the new record's position. A wrong expected version here is
//!   a status, not a message (FAILED_PRECONDITION, `exception:
//!   wrong-expected-version`, with `stream-name`, `expected-version` and
//!   `actual-version` as the server's `long`s: any -2, no stream -1, stream
//!   exists -4); the client has no typed error for it: `Error::Grpc`.
//!
//! # Errors
//!
//! "Stream deleted" is FAILED_PRECONDITION "Event stream 'S' is deleted." with
//! metadata `exception: stream-deleted` and `stream-name: S`
//! (`Error::ResourceDeleted`). Malformed requests answer INVALID_ARGUMENT.
//! Stream metadata written by a client (`$maxCount`, `$tb`, ACLs) is stored
//! but not enforced; links are never resolved; there is no authentication.
//!
//! # Faults for tests
//!
//! [`Double::fail_next_appends`], [`Double::lose_next_append_answer`] and
//! [`Double::drop_subscriptions`] answer UNAVAILABLE (`Error::ServerError`).

// tonic's handlers answer `Result<_, Status>` with the status by value; the
// helpers that build those answers follow suit rather than box it.
#![allow(clippy::result_large_err)]

mod filter;
mod incoming;
mod log;
mod proto;
mod reading;
mod service;
mod state;
mod status;
mod subscription;
mod wire;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;

use crate::incoming::{CONNECTIONS_MAX, Incoming};
use crate::proto::event_store::client::server_features::server_features_server::ServerFeaturesServer;
use crate::proto::event_store::client::streams::streams_server::StreamsServer;
use crate::service::{FeaturesService, StreamsService};
use crate::state::Shared;

/// How long `stop` waits for open calls to finish before it cuts them off.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running double. Dropping it stops it, as [`Double::stop`] does, without
/// waiting.
#[derive(Debug)]
pub struct Double {
    shared: Arc<Shared>,
    address: SocketAddr,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Double {
    /// Starts a double on 127.0.0.1 and a free port.
    ///
    /// # Panics
    ///
    /// When no port on 127.0.0.1 can be bound: a test cannot go on then.
    pub async fn start() -> Double {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        match Double::start_on(loopback).await {
            Ok(double) => double,
            Err(error) => panic!("the KurrentDB test double cannot bind 127.0.0.1: {error}"),
        }
    }

    /// Starts a double on the given address (port 0: a free one).
    pub async fn start_on(address: SocketAddr) -> io::Result<Double> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let router = Server::builder()
            .add_service(StreamsServer::new(StreamsService::new(shared.clone())))
            .add_service(ServerFeaturesServer::new(FeaturesService));
        let incoming = Incoming::new(listener, CONNECTIONS_MAX);
        let server = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            if let Err(error) = router.serve_with_incoming_shutdown(incoming, stopped).await {
                eprintln!("the KurrentDB test double stopped serving: {error}");
            }
        });
        Ok(Double {
            shared,
            address,
            shutdown: Mutex::new(Some(shutdown)),
            server: Mutex::new(Some(server)),
        })
    }

    /// The connection string for the `kurrentdb` client:
    /// `kurrentdb://127.0.0.1:PORT?tls=false`.
    pub fn url(&self) -> String {
        let host = match self.address.ip() {
            ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            ip => ip,
        };
        let host = match host {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        format!("kurrentdb://{host}:{}?tls=false", self.address.port())
    }

    /// The address the double listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Ends every subscription open now with UNAVAILABLE, ahead of anything
    /// still queued for it, as a dropped connection would: the client sees
    /// `Error::ServerError` (and resubscribes after its last event when its
    /// retry options say so). Subscriptions opened later are not affected.
    pub fn drop_subscriptions(&self) {
        self.shared.drop_subscriptions();
    }

    /// The next `count` appends answer UNAVAILABLE without writing anything
    /// (`Error::ServerError`). Replaces any count still armed.
    pub fn fail_next_appends(&self, count: u64) {
        self.shared.fail_next_appends(count);
    }

    /// The next append that succeeds (a write, or an idempotent retry) is
    /// applied, but its client gets UNAVAILABLE instead of the answer: the
    /// lost-acknowledgement case a retry must survive. Appends refused in the
    /// meantime (wrong expected version, failures injected by
    /// [`Double::fail_next_appends`]) leave it armed.
    pub fn lose_next_append_answer(&self) {
        self.shared.lose_next_append_answer();
    }

    /// Records in the log: every event, plus the `$metadata` records soft
    /// deletes write and the tombstones; what an unfiltered forward read of
    /// `$all` returns.
    pub fn event_count(&self) -> usize {
        self.shared.log().len()
    }

    /// Subscriptions open now.
    pub fn subscription_count(&self) -> usize {
        self.shared.subscription_count()
    }

    /// Stops serving: ends open subscriptions, stops accepting connections and
    /// waits (up to 5 s) for calls in flight. Calling it again does nothing.
    pub async fn stop(&self) {
        self.begin_stop();
        let server = self.server.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(server) = server {
            let abort = server.abort_handle();
            if tokio::time::timeout(STOP_GRACE, server).await.is_err() {
                abort.abort();
            }
        }
    }

    fn begin_stop(&self) {
        self.shared.drop_subscriptions();
        if let Some(shutdown) = self.shutdown.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = shutdown.send(());
        }
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.begin_stop();
        if let Some(server) = self.server.lock().unwrap_or_else(PoisonError::into_inner).take() {
            server.abort();
        }
    }
}
