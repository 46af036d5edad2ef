//! The measurements. Each returns its figures beside the baseline measured
//! in the same run; numbers are printed, never asserted: tests stay free of
//! timing, and docs/performance.md records what this machine measured.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use futures::StreamExt;
use rapport_domain::{
    Channel, ContactId, ContactRegistered, NewEvent, Pii, ReplyReceived, SendMode, StreamName, Timestamp,
    TouchAuthorization, TouchRecorded,
};
use rapport_store::{EventStore, ExpectedVersion, SqliteStore};
use uuid::Uuid;

use crate::figure::{Figure, percentile};
use crate::probe::Query;

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Every figure in one run, each beside its baseline, as one table (and JSON).
    ///
    /// Example: rapport-bench all --contacts 100000 --events 2000000 --json bench.json
    All {
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        /// Events in the synthetic ledger, spread evenly over the contacts:
        /// rounded up to a whole number per contact, 2 to 10,000 each.
        #[arg(long, default_value_t = 2_000_000)]
        events: usize,
        /// Fixes the contact ids (random UUIDv4, as other systems make them).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How long each timed run lasts (appends, each HTTP run).
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Also write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Durable appends, 1 writer and many (group commit), beside raw inserts and the disk's fsync rate.
    ///
    /// Example: rapport-bench append --writers 64 --seconds 10
    Append {
        #[arg(long, default_value_t = 64)]
        writers: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// A KurrentDB connection string: measure appends there instead,
        /// beside the embedded ledger's (e.g. against `rapport-kurrentdb-double`:
        /// kurrentdb://127.0.0.1:2113?tls=false).
        #[arg(long)]
        store: Option<rapport_store::LedgerLocation>,
    },
    /// Bulk import, one append per contact history, beside a raw batched insert of the same rows;
    /// then `rapport import` of the same histories as another CRM's JSONL export.
    ///
    /// Example: rapport-bench import --contacts 40000 --events-per-contact 25
    Import {
        #[arg(long, default_value_t = 40_000)]
        contacts: usize,
        #[arg(long, default_value_t = 25)]
        events_per_contact: usize,
    },
    /// Rebuild every projection from a scratch ledger, beside a raw read of its rows.
    ///
    /// Example: rapport-bench rebuild --contacts 40000 --events-per-contact 25
    Rebuild {
        #[arg(long, default_value_t = 40_000)]
        contacts: usize,
        #[arg(long, default_value_t = 25)]
        events_per_contact: usize,
    },
    /// Server start to ready: from the read-model snapshot, beside the same start rebuilding from the
    /// whole ledger; and the server's memory per contact.
    ///
    /// Example: rapport-bench restart --contacts 1000000 --events-per-contact 10
    Restart {
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        #[arg(long, default_value_t = 20)]
        events_per_contact: usize,
    },
    /// Gate decisions per second and their latency on one core, and the projection's memory per contact
    /// (in a process of its own).
    ///
    /// Example: rapport-bench gate --contacts 100000 --decisions 2000000
    Gate {
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        #[arg(long, default_value_t = 25)]
        events_per_contact: usize,
        #[arg(long, default_value_t = 2_000_000)]
        decisions: usize,
    },
    /// The `gate` GraphQL query over loopback HTTP, beside `{ __typename }` on the same server.
    ///
    /// Example: rapport-bench http --contacts 2000 --connections 32 --seconds 10
    Http {
        #[arg(long, default_value_t = 2_000)]
        contacts: usize,
        /// Concurrent keep-alive connections (one request in flight each).
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// A campaign launch to every contact, beside raw chunked appends of as many touches.
    ///
    /// Example: rapport-bench launch --contacts 100000
    Launch {
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        #[arg(long, default_value_t = 25)]
        events_per_contact: usize,
    },
    /// Group gate decisions per second on one core, beside the health figures alone, and the memory
    /// a group's fold holds.
    ///
    /// Example: rapport-bench groups --groups 1000 --decisions 200000
    Groups {
        #[arg(long, default_value_t = 1_000)]
        groups: usize,
        #[arg(long, default_value_t = 200_000)]
        decisions: usize,
    },
    /// A campaign preflight of every contact, beside the gate alone.
    ///
    /// Example: rapport-bench preflight --contacts 100000
    Preflight {
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        #[arg(long, default_value_t = 25)]
        events_per_contact: usize,
        #[arg(long, default_value_t = 7)]
        rounds: usize,
    },
    /// The HTTP load generator, in a process of its own (started by `http` and `all`).
    #[command(hide = true)]
    Load {
        #[arg(long)]
        url: String,
        #[arg(long)]
        token: String,
        #[arg(long, value_enum)]
        query: Query,
        /// A file of contact ids, one per line.
        #[arg(long)]
        ids: PathBuf,
        #[arg(long)]
        connections: usize,
        #[arg(long)]
        seconds: u64,
    },
    /// Folds a synthetic ledger and reports the memory it holds.
    #[command(hide = true)]
    MemoryProbe {
        #[arg(long)]
        contacts: usize,
        #[arg(long)]
        events_per_contact: usize,
        #[arg(long)]
        seed: u64,
    },
    /// Starts the server on a ledger as `rapport serve` does and reports its readiness and memory.
    #[command(hide = true)]
    ServeProbe {
        #[arg(long)]
        store: PathBuf,
    },
}

const BASE_MILLIS: i64 = 1_767_225_600_000;
/// Contact histories in flight at once when filling a ledger.
const FILL_CONCURRENCY: usize = 16;
/// Rows per transaction of the raw bulk insert.
const RAW_BATCH_ROWS: usize = 10_000;
/// Rows the raw one-commit-per-row baseline inserts: enough for a steady rate.
const RAW_DURABLE_ROWS: usize = 5_000;

/// Where scratch ledgers go: the directory the user names, else the
/// working directory rather than /tmp, which may be a RAM disk: durability
/// costs are only real on the disk the ledger uses.
#[derive(Clone, Debug)]
pub struct Scratch {
    pub root: PathBuf,
}

/// A scratch ledger, removed when dropped.
#[derive(Debug)]
pub struct Ledger {
    dir: tempfile::TempDir,
    pub store: SqliteStore,
}

impl Ledger {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("bench.db")
    }

    /// Closes the store, so that a server (here or in a child process)
    /// can open the ledger for writing.
    pub fn close(self) -> Closed {
        drop(self.store);
        Closed { dir: self.dir }
    }
}

/// A scratch ledger no store holds open, removed when dropped.
#[derive(Debug)]
pub struct Closed {
    dir: tempfile::TempDir,
}

impl Closed {
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("bench.db")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Scratch {
    pub fn ledger(&self) -> anyhow::Result<Ledger> {
        std::fs::create_dir_all(&self.root).with_context(|| format!("creating {}", self.root.display()))?;
        let dir = tempfile::Builder::new()
            .prefix(".rapport-bench-")
            .tempdir_in(&self.root)
            .with_context(|| format!("creating a scratch directory in {}", self.root.display()))?;
        let store = SqliteStore::open(dir.path().join("bench.db")).context("opening the scratch ledger")?;
        Ok(Ledger { dir, store })
    }
}

/// Contact ids shaped like real users': random UUIDv4 from other systems,
/// fixed by the seed.
fn random_ids(count: usize, seed: u64) -> Vec<ContactId> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count)
        .map(|_| ContactId(uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid()))
        .collect()
}

/// A synthetic ledger: every contact registered, then touches and replies.
#[derive(Clone, Debug)]
pub struct Synthetic {
    ids: Arc<Vec<ContactId>>,
    events_per_contact: usize,
}

impl Synthetic {
    pub fn new(contacts: usize, events_per_contact: usize, seed: u64) -> Self {
        Synthetic {
            ids: Arc::new(random_ids(contacts.max(1), seed)),
            events_per_contact: events_per_contact.clamp(1, 10_000),
        }
    }

    pub fn contacts(&self) -> usize {
        self.ids.len()
    }

    pub fn events(&self) -> usize {
        self.ids.len() * self.events_per_contact
    }

    fn stream(&self, contact: usize) -> StreamName {
        StreamName::Contact(self.ids[contact])
    }

    /// A contact's history: registration, then touches and replies.
    fn history(&self, contact: usize) -> Vec<NewEvent> {
        let registered = ContactRegistered {
            owner: format!("staff-{}", contact % 4),
            primary_channel: Channel::Wechat,
            time_zone: None,
            tags: if contact.is_multiple_of(10) {
                vec!["vip".to_owned()]
            } else {
                vec![]
            },
        };
        let at = Timestamp::from_millis_unchecked(BASE_MILLIS);
        // Personal data as a CRM holds it: a name and a phone number, sealed
        // by the writer like every user's.
        let pii = Pii {
            display_name: Some(format!("Customer {contact}")),
            phone: Some(format!(
                "+86 138 {:04} {:04}",
                contact / 10_000 % 10_000,
                contact % 10_000
            )),
            wechat_id: None,
            email: None,
        };
        let mut events = vec![NewEvent::new(Uuid::now_v7(), registered, at, "bench").with_pii(pii)];
        events.extend((1..self.events_per_contact as u64).map(|n| touch(contact, n)));
        events
    }

    /// Every event, recorded in order as the store would have them, to fold without a store.
    fn recorded(&self) -> impl Iterator<Item = rapport_domain::RecordedEvent> + '_ {
        let mut position = 0u64;
        (0..self.contacts())
            .flat_map(move |contact| {
                let stream = self.stream(contact);
                self.history(contact)
                    .into_iter()
                    .enumerate()
                    .map(move |(version, event)| (stream, version as u64, event))
            })
            .map(move |(stream, version, event)| {
                position += 1;
                rapport_domain::RecordedEvent {
                    event_id: event.event_id,
                    stream,
                    version,
                    position: rapport_domain::Position::from_sequence(position),
                    schema_version: event.event.schema_version(),
                    event: event.event,
                    pii: event.pii,
                    occurred_at: event.occurred_at,
                    recorded_at: event.occurred_at,
                    actor: event.actor,
                    correlation_id: event.correlation_id,
                    causation_id: None,
                }
            })
    }

    /// A read model of every history, as a server holds it.
    fn read_model(&self) -> rapport_app::read_model::ReadModel {
        let mut model = rapport_app::read_model::ReadModel::default();
        for event in self.recorded() {
            model.apply(&event);
        }
        model
    }

    /// A moment a few days after every history ends: 11:00 in Shanghai.
    fn after_histories(&self, days: i64) -> Timestamp {
        Timestamp::from_millis_unchecked(
            BASE_MILLIS + (self.events_per_contact as i64 * 2 + days) * 86_400_000 + 3 * 3_600_000,
        )
    }

    /// Appends every history with `FILL_CONCURRENCY` appends in flight.
    pub async fn fill(&self, store: &SqliteStore) -> anyhow::Result<()> {
        let next_contact = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..FILL_CONCURRENCY)
            .map(|_| {
                let (store, next_contact, synthetic) = (store.clone(), Arc::clone(&next_contact), self.clone());
                tokio::spawn(async move {
                    loop {
                        let contact = next_contact.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if contact >= synthetic.contacts() {
                            return anyhow::Ok(());
                        }
                        let events = synthetic.history(contact);
                        store
                            .append(synthetic.stream(contact), ExpectedVersion::NoStream, events)
                            .await?;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.context("import task")??;
        }
        Ok(())
    }
}

/// The `n`th event of a synthetic history: every other day at a varying
/// hour; a reply after every second touch; mass sends at most weekly.
fn touch(contact: usize, n: u64) -> NewEvent {
    let at = Timestamp::from_millis_unchecked(BASE_MILLIS + (n as i64) * 2 * 86_400_000 + (n as i64 % 14) * 3_600_000);
    if n % 3 == 2 {
        NewEvent::new(
            Uuid::now_v7(),
            ReplyReceived {
                channel: Channel::Wechat,
            },
            at,
            "bench",
        )
    } else {
        let event = TouchRecorded {
            mode: if n.is_multiple_of(4) {
                SendMode::Mass
            } else {
                SendMode::OneToOne
            },
            channel: Channel::Wechat,
            campaign_id: None,
            sender: format!("staff-{}", contact % 4),
            authorization: TouchAuthorization::External { source: "bench".into() },
        };
        NewEvent::new(Uuid::now_v7(), event, at, "bench")
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Durable appends of one event each from `writers` tasks for `seconds`:
/// events per second, and the latencies of the appends.
async fn timed_appends<S: EventStore + Clone>(
    store: &S,
    writers: usize,
    seconds: u64,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let ids = Arc::new(random_ids(writers * 500, writers as u64));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let (store, ids) = (store.clone(), Arc::clone(&ids));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let contact = writer * 500 + (n % 500) as usize;
                    let sent = Instant::now();
                    store
                        .append(
                            StreamName::Contact(ids[contact]),
                            ExpectedVersion::Any,
                            vec![touch(contact, n)],
                        )
                        .await?;
                    latencies.push(sent.elapsed());
                    n += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("writer task")??);
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok((rate, latencies))
}

fn latency_note(latencies: &[Duration]) -> String {
    format!(
        "append latency p50 {:.2} ms, p99 {:.2} ms",
        millis(percentile(latencies, 0.50)),
        millis(percentile(latencies, 0.99))
    )
}

/// One writer, then `writers` at once, beside the same rows inserted raw
/// with a commit each, and the disk's fsync rate.
pub async fn append(scratch: &Scratch, writers: usize, seconds: u64) -> anyhow::Result<Vec<Figure>> {
    let single = scratch.ledger()?;
    let (one, one_latencies) = timed_appends(&single.store, 1, seconds).await?;
    let raw_dir = scratch.ledger()?.close();
    let raw_path = raw_dir.dir().join("raw.db");
    let raw = tokio::task::block_in_place(|| crate::raw::copy(&single.path(), &raw_path, 1, RAW_DURABLE_ROWS))?;
    let fsyncs = crate::raw::fsync_rate(raw_dir.dir())?;
    drop((single, raw_dir));
    let many = scratch.ledger()?;
    let (group, group_latencies) = timed_appends(&many.store, writers, seconds).await?;
    let raw_what =
        "raw rusqlite insert of the 1-writer run's rows, rapport's writer settings, a commit per row, one thread";
    Ok(vec![
        Figure::new("append_1_writer", "durable append, 1 writer", one, "events/s")
            .beside(raw_what, raw)
            .ratio_at_least(0.8)
            .note(latency_note(&one_latencies)),
        Figure::new(
            "append_concurrent",
            format!("durable append, {writers} writers"),
            group,
            "events/s",
        )
        .beside(raw_what, raw)
        .at_least(75_000.0)
        .goal("≥ 15× the 1-writer figure".to_owned(), group >= 15.0 * one)
        .note(format!(
            "{}; {:.1}× the 1-writer figure",
            latency_note(&group_latencies),
            group / one.max(1.0)
        )),
        Figure::new("fsync_rate", "disk: 8-byte write + fdatasync", fsyncs, "syncs/s"),
    ])
}

/// Appends to a ledger on a KurrentDB cluster, 1 writer and `writers` at
/// once, each beside the same on the embedded ledger in this run. Against
/// the test double (`rapport-kurrentdb-double`) this is the cost of the
/// backend's path through the client, not a server's speed. Each run
/// writes under a prefix of its own.
pub async fn append_cluster(
    scratch: &Scratch,
    cluster: &rapport_store::ClusterLocation,
    writers: usize,
    seconds: u64,
) -> anyhow::Result<Vec<Figure>> {
    let mut location = cluster.clone();
    location.prefix = format!("{}bench-{}-", cluster.prefix, &Uuid::new_v4().simple().to_string()[..8]);
    let options = rapport_store::KurrentDbOptions {
        master_key: Some(rapport_store::sealing::MasterKey::generate()),
        ..rapport_store::KurrentDbOptions::default()
    };
    let store = rapport_store::KurrentDbStore::open(&location, options)
        .await
        .context("opening the ledger on the cluster")?;
    let (one, one_latencies) = timed_appends(&store, 1, seconds).await?;
    let (many, many_latencies) = timed_appends(&store, writers, seconds).await?;
    let embedded_one = scratch.ledger()?;
    let (embedded, _) = timed_appends(&embedded_one.store, 1, seconds).await?;
    drop(embedded_one);
    let embedded_many = scratch.ledger()?;
    let (embedded_group, _) = timed_appends(&embedded_many.store, writers, seconds).await?;
    Ok(vec![
        Figure::new("cluster_append_1_writer", "KurrentDB append, 1 writer", one, "events/s")
            .beside("the embedded ledger, 1 writer, this run", embedded)
            .note(latency_note(&one_latencies)),
        Figure::new(
            "cluster_append_concurrent",
            format!("KurrentDB append, {writers} writers"),
            many,
            "events/s",
        )
        .beside(
            format!("the embedded ledger, {writers} writers, this run"),
            embedded_group,
        )
        .note(latency_note(&many_latencies)),
    ])
}

/// Every history appended into a fresh ledger, beside the same rows
/// inserted raw in batches; the ledger is kept for the figures after it.
pub async fn import(scratch: &Scratch, synthetic: &Synthetic) -> anyhow::Result<(Vec<Figure>, Ledger)> {
    let ledger = scratch.ledger()?;
    rapport_app::ledger::ensure_policy(&ledger.store, "bench", Timestamp::from_millis_unchecked(BASE_MILLIS)).await?;
    let started = Instant::now();
    synthetic.fill(&ledger.store).await?;
    let rate = synthetic.events() as f64 / started.elapsed().as_secs_f64();
    // The raw copy goes into a directory of its own, removed with it.
    let raw_dir = scratch.ledger()?.close();
    let raw_path = raw_dir.dir().join("raw.db");
    let raw = tokio::task::block_in_place(|| crate::raw::copy(&ledger.path(), &raw_path, RAW_BATCH_ROWS, usize::MAX))?;
    drop(raw_dir);
    let figure = Figure::new(
        "bulk_import",
        "bulk import, one append per contact history",
        rate,
        "events/s",
    )
    .beside(
        format!("raw rusqlite insert of the same rows, {RAW_BATCH_ROWS} to a transaction"),
        raw,
    )
    .at_least(300_000.0)
    .ratio_at_least(1.2)
    .note(format!(
        "{} contacts x {} events, {FILL_CONCURRENCY} appends in flight",
        synthetic.contacts(),
        synthetic.events_per_contact
    ));
    Ok((vec![figure], ledger))
}

/// `rapport import` of another CRM's export: a JSONL file of the same
/// histories with random UUIDv4 contact ids, one event per line and no
/// event ids (derived from each line's content), beside the bulk figure.
pub fn realistic_import(
    scratch: &Scratch,
    synthetic: &Synthetic,
    bulk: f64,
    rapport: &Path,
) -> anyhow::Result<Vec<Figure>> {
    use std::io::Write;
    let ledger = scratch.ledger()?.close();
    let file = ledger.dir().join("export.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).context("writing the export file")?);
    let mut lines = 0u64;
    for contact in 0..synthetic.contacts() {
        let id = synthetic.ids[contact].0;
        let history = synthetic.history(contact);
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({
                "kind": "contact", "id": id, "displayName": format!("Customer {contact}"),
                "phone": format!("+86 138 {:04} {:04}", contact / 10_000 % 10_000, contact % 10_000),
                "owner": format!("staff-{}", contact % 4), "tags": if contact.is_multiple_of(10) { vec!["vip"] } else { vec![] },
                "registeredAt": Timestamp::from_millis_unchecked(BASE_MILLIS).to_rfc3339(),
            }),
        )?;
        writeln!(out)?;
        for event in history.iter().skip(1) {
            let payload: Box<serde_json::value::RawValue> =
                serde_json::value::RawValue::from_string(String::from_utf8(event.event.encode())?)?;
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({
                    "kind": "event", "contactId": id, "type": event.event.event_type(),
                    "occurredAt": event.occurred_at.to_rfc3339(), "payload": payload,
                }),
            )?;
            writeln!(out)?;
        }
        lines += history.len() as u64;
    }
    out.flush()?;
    drop(out);
    let store = ledger.dir().join("imported.db");
    let started = Instant::now();
    let summary = crate::probe::run_json(
        rapport,
        &[
            "--store",
            &store.display().to_string(),
            "--json",
            "import",
            &file.display().to_string(),
        ],
    )?;
    let rate = lines as f64 / started.elapsed().as_secs_f64();
    anyhow::ensure!(
        summary["imported"].as_u64() == Some(lines),
        "the import took {lines} lines as {summary}"
    );
    Ok(vec![
        Figure::new("realistic_import", "rapport import of another CRM's JSONL export", rate, "events/s")
            .beside("the bulk import figure of this run", bulk)
            .at_least(150_000.0)
            .note(format!(
                "{lines} lines, random UUIDv4 contact ids, event ids derived from content; the whole `rapport import` process ({})",
                rapport.display()
            )),
    ])
}

/// Every projection rebuilt from the ledger, beside a raw read of its rows.
pub async fn rebuild(ledger: &Ledger) -> anyhow::Result<Vec<Figure>> {
    let started = Instant::now();
    let projection = rapport_app::read_model::rebuild(&ledger.store, None).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let events = projection.events_applied();
    let path = ledger.path();
    let (rows, raw) = tokio::task::block_in_place(|| crate::raw::read(&path))?;
    anyhow::ensure!(rows == events, "the rebuild applied {events} events of {rows}");
    Ok(vec![
        Figure::new(
            "rebuild",
            "full rebuild of all projections",
            events as f64 / elapsed,
            "events/s",
        )
        .beside("raw read of the same rows, every column, no decoding", raw)
        .at_least(1_000_000.0)
        .ratio_at_least(0.5)
        .note(format!("{events} events, {} contacts", projection.contact_count())),
    ])
}

/// The server started on the ledger in a process of its own, as an operator
/// would: time to ready, and its anonymous memory per contact.
pub fn server_start(scratch: &Scratch, ledger: &Closed, contacts: usize) -> anyhow::Result<Vec<Figure>> {
    let empty = scratch.ledger()?.close();
    let idle = crate::probe::spawn_serve_probe(&empty.path())?;
    drop(empty);
    let snapshot = rapport_app::snapshot::snapshot_path(&ledger.path());
    match std::fs::remove_file(&snapshot) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(anyhow::Error::new(e).context(format!("removing {}", snapshot.display())));
        }
        _ => {}
    }
    // The first start rebuilds from the whole ledger and leaves a snapshot
    // as it stops; the second starts from that.
    let started = crate::probe::spawn_serve_probe(&ledger.path())?;
    let restarted = crate::probe::spawn_serve_probe(&ledger.path())?;
    anyhow::ensure!(
        !started.from_snapshot && restarted.from_snapshot,
        "the restart did not start from the snapshot the first start left"
    );
    let snapshot_bytes = std::fs::metadata(&snapshot)
        .with_context(|| format!("the snapshot {}", snapshot.display()))?
        .len();
    // Signed: at a tiny ledger the difference is noise either way.
    let grown = started.anonymous_rss as f64 - idle.anonymous_rss as f64;
    Ok(vec![
        Figure::new(
            "restart_to_ready",
            "server restart to ready, from a snapshot",
            restarted.ready_seconds,
            "s",
        )
        .beside("the same start rebuilding from the whole ledger", started.ready_seconds)
        .at_most(1.0)
        .note(format!(
            "snapshot {:.1} MB ({:.0} B/contact), written in {:.2} s as the first start stopped; anonymous RSS after a start from it {:.0} B/contact",
            snapshot_bytes as f64 / 1e6,
            snapshot_bytes as f64 / contacts as f64,
            started.stop_seconds,
            (restarted.anonymous_rss as f64 - idle.anonymous_rss as f64) / contacts as f64
        )),
        Figure::new(
            "server_anonymous_rss",
            "server anonymous RSS after start",
            grown / contacts as f64,
            "B/contact",
        )
        .at_most(400.0)
        .note(format!(
            "{:.0} MB anonymous for {contacts} contacts, less {:.0} MB for the same server on an empty ledger; the mapped ledger file is not counted",
            started.anonymous_rss as f64 / 1e6,
            idle.anonymous_rss as f64 / 1e6
        )),
    ])
}

/// Gate decisions on one thread: throughput over all of them, latency of
/// each over a sample.
pub fn gate(synthetic: &Synthetic, decisions: usize) -> Vec<Figure> {
    let mut projection = rapport_projections::Projection::new();
    for event in synthetic.recorded() {
        projection.apply(&event);
    }
    let at = synthetic.after_histories(3);
    let ids = &synthetic.ids;
    let decide = |i: usize| {
        let mode = if i.is_multiple_of(2) {
            SendMode::Mass
        } else {
            SendMode::OneToOne
        };
        let moment = at.plus_millis((i as i64 % 1_440) * 60_000);
        projection
            .gate(ids[i % ids.len()], mode, None, moment)
            .map(|decision| std::hint::black_box(decision).gate.allowed())
    };
    let started = Instant::now();
    let mut allowed = 0usize;
    for i in 0..decisions {
        allowed += usize::from(decide(i) == Some(true));
    }
    let rate = decisions as f64 / started.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = (0..decisions.min(200_000))
        .map(|i| {
            let sent = Instant::now();
            std::hint::black_box(decide(i));
            sent.elapsed()
        })
        .collect();
    latencies.sort_unstable();
    let micros = |fraction: f64| percentile(&latencies, fraction).as_secs_f64() * 1e6;
    vec![
        Figure::new(
            "gate_decisions",
            "gate decision in process, one core",
            rate,
            "decisions/s",
        )
        .at_least(1_000_000.0)
        .note(format!(
            "{decisions} decisions over {} contacts, {:.1} % allowed",
            synthetic.contacts(),
            allowed as f64 * 100.0 / decisions as f64
        )),
        Figure::new("gate_p99", "gate decision p99, one core", micros(0.99), "µs")
            .at_most(5.0)
            .note(format!("p50 {:.2} µs, each decision timed on its own", micros(0.50))),
    ]
}

/// What folding the ledger costs in memory, per contact: measured in a
/// fresh process of its own, where no earlier run's freed memory hides it.
pub fn projection_memory(synthetic: &Synthetic, seed: u64) -> anyhow::Result<Vec<Figure>> {
    let answer = crate::probe::child(&[
        "memory-probe",
        "--contacts",
        &synthetic.contacts().to_string(),
        "--events-per-contact",
        &synthetic.events_per_contact.to_string(),
        "--seed",
        &seed.to_string(),
    ])?;
    let bytes = answer["bytes"].as_u64().context("the memory probe gave no bytes")?;
    let how = answer["how"].as_str().unwrap_or("memory");
    let per_contact = |key: &str| answer[key].as_u64().unwrap_or(0) as f64 / synthetic.contacts() as f64;
    Ok(vec![
        Figure::new(
            "projection_memory",
            "projection memory after rebuild",
            bytes as f64 / synthetic.contacts() as f64,
            "B/contact",
        )
        .at_most(300.0)
        .note(format!(
            "{how} while folding the ledger in a fresh process; of it, {:.0} B/contact is the list of {} violations (touches that broke the gate); {} bytes of state per relationship before tags",
            per_contact("violationBytes"),
            answer["violations"],
            std::mem::size_of::<rapport_domain::Relationship>()
        )),
    ])
}

/// The child's side of `projection_memory`: one JSON line.
pub fn memory_probe(synthetic: &Synthetic) -> anyhow::Result<()> {
    let heap_before = crate::heap_bytes();
    let rss_before = crate::raw::anonymous_rss();
    let mut projection = rapport_projections::Projection::new();
    for event in synthetic.recorded() {
        projection.apply(&event);
    }
    let (bytes, how) = match (heap_before, crate::heap_bytes()) {
        (Some(before), Some(after)) => (after.saturating_sub(before) as u64, "live heap"),
        _ => {
            let before = rss_before.context("this system does not report anonymous memory")?;
            let after = crate::raw::anonymous_rss().context("this system does not report anonymous memory")?;
            (
                after.saturating_sub(before),
                "anonymous RSS growth (build with --features heap-accounting for the live heap)",
            )
        }
    };
    let violations = projection.violations();
    println!(
        "{}",
        serde_json::json!({
            "bytes": bytes, "how": how,
            "violations": violations.len(), "violationBytes": std::mem::size_of_val(violations),
        })
    );
    Ok(())
}

/// A campaign preflight of every contact, beside the bare gate loop over
/// the same contacts in the same process.
pub fn preflight(synthetic: &Synthetic, rounds: usize) -> anyhow::Result<Vec<Figure>> {
    use rapport_app::preflight::{PreflightRequest, VERDICTS};
    let model = synthetic.read_model();
    let at = synthetic.after_histories(3);
    let request = PreflightRequest {
        audience: rapport_domain::audience::Audience::default(),
        mode: SendMode::Mass,
        channel: None,
        at,
    };
    let auditor = rapport_app::tokens::Principal {
        name: "bench".to_owned(),
        role: rapport_app::tokens::Role::Auditor,
    };
    let mut preflights = Vec::with_capacity(rounds);
    let mut gates = Vec::with_capacity(rounds);
    let mut last = None;
    for _ in 0..rounds {
        let started = Instant::now();
        let answer = rapport_app::preflight::preflight(&model, &auditor, &request, at)?;
        preflights.push(started.elapsed());
        last = Some(answer);
        let started = Instant::now();
        let mut allowed = 0usize;
        for (contact_id, _) in model.projection.contacts() {
            if let Some(decision) = model.projection.gate(contact_id, SendMode::Mass, None, at) {
                allowed += usize::from(std::hint::black_box(decision).gate.allowed());
            }
        }
        std::hint::black_box(allowed);
        gates.push(started.elapsed());
    }
    preflights.sort();
    gates.sort();
    let median = |sorted: &[Duration]| sorted[sorted.len() / 2];
    let verdicts: Vec<String> = last
        .map(|answer| {
            VERDICTS
                .iter()
                .map(|verdict| format!("{} {}", verdict.as_str(), answer.bucket(*verdict).len()))
                .collect()
        })
        .unwrap_or_default();
    Ok(vec![
        Figure::new(
            "preflight",
            format!("campaign preflight, {} contacts", synthetic.contacts()),
            millis(median(&preflights)),
            "ms",
        )
        .beside("the gate alone for every contact, one thread", millis(median(&gates)))
        .at_most(100.0)
        .note(format!(
            "median of {rounds}, min {:.1} ms, on the machine's cores (up to 4); {}",
            millis(preflights[0]),
            verdicts.join(", ")
        )),
    ])
}

/// The `gate` query over loopback HTTP with each number of connections,
/// beside `{ __typename }` on the same server with the same client, which
/// runs in a process of its own.
pub async fn http(
    ledger: &Closed,
    synthetic: &Synthetic,
    connections: &[usize],
    seconds: u64,
) -> anyhow::Result<Vec<Figure>> {
    let ids_path = ledger.dir().join("ids.txt");
    let ids: Vec<String> = synthetic.ids.iter().take(100_000).map(|id| id.0.to_string()).collect();
    std::fs::write(&ids_path, ids.join("\n")).context("writing the contact ids for the load generator")?;
    let state = rapport_api::server::open_state(&ledger.path()).await?;
    let token = state
        .tokens
        .create(rapport_app::tokens::Role::Manager, "bench", "bench")?;
    let server = rapport_api::server::Server::start_with(state, "127.0.0.1:0".parse()?).await?;
    let url = format!("http://{}/graphql", server.address);
    let mut figures = Vec::new();
    for (index, &count) in connections.iter().enumerate() {
        let load = |query| {
            let (url, token, ids_path) = (url.clone(), token.clone(), ids_path.clone());
            tokio::task::spawn_blocking(move || {
                crate::probe::spawn_load(&url, &token, query, &ids_path, count, seconds)
            })
        };
        let trivial = load(Query::Typename).await.context("the load generator")??;
        let gate = load(Query::Gate).await.context("the load generator")??;
        figures.push(
            Figure::new(
                if index == 0 { "http_gate" } else { "http_gate_more" },
                format!("gate query over loopback HTTP, {count} connections"),
                gate.requests_per_second,
                "requests/s",
            )
            .beside("{ __typename } on the same server, same client", trivial.requests_per_second)
            .at_least(20_000.0)
            .ratio_at_least(0.6)
            .goal("p99 ≤ 5 ms".to_owned(), gate.p99_ms <= 5.0)
            .note(format!(
                "p50 {:.2} ms, p99 {:.2} ms (trivial: p50 {:.2} ms, p99 {:.2} ms); the client is another process on the same 2 cores",
                gate.p50_ms, gate.p99_ms, trivial.p50_ms, trivial.p99_ms
            )),
        );
    }
    server.stop().await?;
    Ok(figures)
}

/// Launches a campaign to every contact of a scratch ledger, on a clock
/// set after their histories, then appends as many touches raw, in the
/// launch's chunks of 1,000, as the baseline.
pub async fn launch(scratch: &Scratch, synthetic: &Synthetic) -> anyhow::Result<Vec<Figure>> {
    use rapport_app::campaign::{LaunchRequest, launch};
    let ledger = scratch.ledger()?;
    rapport_app::ledger::ensure_policy(&ledger.store, "bench", Timestamp::from_millis_unchecked(BASE_MILLIS)).await?;
    synthetic.fill(&ledger.store).await?;
    let ledger = ledger.close();
    // A week and a day after the last mass touch.
    let at = synthetic.after_histories(8);
    let clock = rapport_store::ManualClock::starting_at(at);
    let core = rapport_app::Core::open(&ledger.path().into(), clock).await?;
    let manager = rapport_app::tokens::Principal {
        name: "bench".to_owned(),
        role: rapport_app::tokens::Role::Manager,
    };
    let request = LaunchRequest {
        name: "bench".to_owned(),
        audience: rapport_domain::audience::Audience::default(),
        mode: SendMode::Mass,
        channel: Channel::Wechat,
        holdout_percent: 0,
        idempotency_key: Uuid::new_v4(),
    };
    let started = Instant::now();
    let launched = launch(&core, &manager, request).await?;
    let launch_seconds = started.elapsed().as_secs_f64();
    let sent = launched.deliveries.len();
    let started = Instant::now();
    let contacts: Vec<usize> = (0..synthetic.contacts()).take(sent).collect();
    let store = &core.store;
    let mut answered = futures::stream::iter(contacts.chunks(1_000))
        .map(|chunk| {
            let appends = chunk
                .iter()
                .map(|contact| {
                    (
                        synthetic.stream(*contact),
                        ExpectedVersion::Any,
                        vec![touch(*contact, 1)],
                    )
                })
                .collect();
            store.append_batch(appends)
        })
        .buffered(4);
    while let Some(results) = answered.next().await {
        for result in results? {
            result?;
        }
    }
    let raw_seconds = started.elapsed().as_secs_f64();
    Ok(vec![
        Figure::new(
            "launch",
            format!("campaign launch, {} contacts", synthetic.contacts()),
            sent as f64 / launch_seconds,
            "touches/s",
        )
        .beside(
            "rapport's own append_batch of as many touches, no judging, the same chunks, 4 in flight",
            sent as f64 / raw_seconds,
        )
        .note(format!(
            "judging included: sent {sent}, one-to-one {}, deferred {}, denied {}",
            launched.one_to_one.values().map(Vec::len).sum::<usize>(),
            launched.deferred.len(),
            launched.denied.len()
        )),
    ])
}
