//! Throughput measurements on a scratch ledger. Numbers are printed, never
//! asserted: tests stay free of timing, and docs/performance.md records
//! what this machine measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use futures::StreamExt;
use rapport_domain::{
    Channel, ContactId, ContactRegistered, NewEvent, ReplyReceived, SendMode, StreamName, Timestamp,
    TouchAuthorization, TouchRecorded,
};
use rapport_store::{EventStore, ExpectedVersion, SqliteStore};
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Durable appends from many concurrent writers (group commit).
    ///
    /// Example: rapport-bench append --writers 64 --seconds 10
    Append {
        #[arg(long, default_value_t = 64)]
        writers: usize,
        /// Events per append call.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Rebuild every projection from a scratch ledger of synthetic histories.
    ///
    /// Example: rapport-bench rebuild --contacts 40000 --events-per-contact 25
    Rebuild {
        #[arg(long, default_value_t = 40_000)]
        contacts: usize,
        #[arg(long, default_value_t = 25)]
        events_per_contact: usize,
    },
    /// Gate decisions per second on one core, and memory per contact.
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
    /// The `gate` GraphQL query over loopback HTTP against a real server.
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
    /// A campaign launch to every contact, beside raw chunked appends of
    /// as many touches.
    ///
    /// Example: rapport-bench launch --contacts 100000
    Launch {
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        #[arg(long, default_value_t = 25)]
        events_per_contact: usize,
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
    /// Bulk import: whole contact histories, one append per contact.
    ///
    /// Example: rapport-bench import --contacts 40000 --events-per-contact 25
    Import {
        #[arg(long, default_value_t = 40_000)]
        contacts: usize,
        #[arg(long, default_value_t = 25)]
        events_per_contact: usize,
        /// Appends in flight at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
}

const BASE_MILLIS: i64 = 1_767_225_600_000;

fn scratch_ledger() -> anyhow::Result<(tempfile::TempDir, SqliteStore)> {
    // Beside the working directory rather than in /tmp, which may be a RAM
    // disk: durability costs are only real on the disk the ledger uses.
    let dir = tempfile::Builder::new()
        .prefix(".rapport-bench-")
        .tempdir_in(".")
        .context("creating a scratch directory")?;
    let store = SqliteStore::open(dir.path().join("bench.db")).context("opening the scratch ledger")?;
    Ok((dir, store))
}

/// The `n`th event of a synthetic history: every other day at a varying
/// hour; a reply after every second touch; mass sends at most weekly.
fn touch(contact: u64, n: u64) -> NewEvent {
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

fn contact_stream(contact: u64) -> StreamName {
    StreamName::Contact(ContactId(Uuid::from_u64_pair(0x5241_5050, contact)))
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub async fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Append {
            writers,
            batch,
            seconds,
        } => append(writers.max(1), batch.clamp(1, 10_000), seconds).await,
        Bench::Import {
            contacts,
            events_per_contact,
            concurrency,
        } => import(contacts.max(1), events_per_contact.clamp(1, 10_000), concurrency.max(1)).await,
        Bench::Rebuild {
            contacts,
            events_per_contact,
        } => rebuild(contacts.max(1), events_per_contact.clamp(1, 10_000)).await,
        Bench::Gate {
            contacts,
            events_per_contact,
            decisions,
        } => gate(contacts.max(1), events_per_contact.clamp(1, 10_000), decisions.max(1)),
        Bench::Launch {
            contacts,
            events_per_contact,
        } => launch(contacts.max(1), events_per_contact.clamp(4, 10_000)).await,
        Bench::Preflight {
            contacts,
            events_per_contact,
            rounds,
        } => preflight(
            contacts.max(1),
            events_per_contact.clamp(1, 10_000),
            rounds.clamp(1, 100),
        ),
        Bench::Http {
            contacts,
            connections,
            seconds,
        } => http(contacts.max(1), connections.clamp(1, 1_024), seconds.clamp(1, 600)).await,
    }
}

async fn append(writers: usize, batch: usize, seconds: u64) -> anyhow::Result<()> {
    let (_dir, store) = scratch_ledger()?;
    let deadline = Instant::now() + Duration::from_secs(seconds.clamp(1, 600));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers as u64)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let contact = writer * 1_000_000 + n % 500;
                    let events = (0..batch as u64).map(|i| touch(contact, n + i)).collect();
                    let sent = Instant::now();
                    store
                        .append(contact_stream(contact), ExpectedVersion::Any, events)
                        .await?;
                    latencies.push(sent.elapsed());
                    n += batch as u64;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("writer task")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let appends = latencies.len();
    let events = appends * batch;
    println!("durable appends: {writers} writers, {batch} event(s) per append, {elapsed:.1} s");
    println!("  events/s   {:.0}", events as f64 / elapsed);
    println!("  appends/s  {:.0}", appends as f64 / elapsed);
    println!(
        "  latency    p50 {:.2} ms, p99 {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    Ok(())
}

/// A synthetic contact history: registration, then touches and replies.
fn history(contact: u64, events_per_contact: usize) -> Vec<NewEvent> {
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
    let mut events = vec![NewEvent::new(Uuid::now_v7(), registered, at, "bench")];
    events.extend((1..events_per_contact as u64).map(|n| touch(contact, n)));
    events
}

/// Appends `contacts` histories with `concurrency` appends in flight.
async fn fill(
    store: &SqliteStore,
    contacts: usize,
    events_per_contact: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let next_contact = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let store = store.clone();
            let next_contact = Arc::clone(&next_contact);
            tokio::spawn(async move {
                loop {
                    let contact = next_contact.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if contact >= contacts as u64 {
                        return anyhow::Ok(());
                    }
                    let events = history(contact, events_per_contact);
                    store
                        .append(contact_stream(contact), ExpectedVersion::NoStream, events)
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

async fn import(contacts: usize, events_per_contact: usize, concurrency: usize) -> anyhow::Result<()> {
    let (_dir, store) = scratch_ledger()?;
    let started = Instant::now();
    fill(&store, contacts, events_per_contact, concurrency).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let events = contacts * events_per_contact;
    println!(
        "bulk import: {contacts} contacts x {events_per_contact} events, {concurrency} appends in flight, {elapsed:.1} s"
    );
    println!("  events/s   {:.0}", events as f64 / elapsed);
    Ok(())
}

async fn rebuild(contacts: usize, events_per_contact: usize) -> anyhow::Result<()> {
    let (_dir, store) = scratch_ledger()?;
    rapport_app::ledger::ensure_policy(
        &store,
        "bench",
        rapport_app::clock::Clock::now(&rapport_app::clock::SystemClock),
    )
    .await?;
    fill(&store, contacts, events_per_contact, 16).await?;
    let started = Instant::now();
    let projection = rapport_app::read_model::rebuild(&store, None).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let events = projection.events_applied();
    println!(
        "rebuild: {events} events, {} contacts, {elapsed:.2} s",
        projection.contact_count()
    );
    println!("  events/s   {:.0}", events as f64 / elapsed);
    println!("  violations {}", projection.violations().len());
    Ok(())
}

/// Launches a campaign to every contact of a scratch ledger, on a clock
/// set after their histories, then appends as many touches raw, in the
/// launch's chunks of 1,000, as the baseline.
async fn launch(contacts: usize, events_per_contact: usize) -> anyhow::Result<()> {
    use rapport_app::campaign::{LaunchRequest, launch};
    let (dir, store) = scratch_ledger()?;
    rapport_app::ledger::ensure_policy(&store, "bench", Timestamp::from_millis_unchecked(BASE_MILLIS)).await?;
    fill(&store, contacts, events_per_contact, 16).await?;
    drop(store);
    // 11:00 in Shanghai, a week and a day after the last mass touch.
    let at = Timestamp::from_millis_unchecked(
        BASE_MILLIS + (events_per_contact as i64 * 2 + 8) * 86_400_000 + 3 * 3_600_000,
    );
    let clock = rapport_store::ManualClock::starting_at(at);
    let core = rapport_app::Core::open(&dir.path().join("bench.db"), clock).await?;
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
    let ids: Vec<u64> = (0..contacts as u64).take(sent).collect();
    let store = &core.store;
    let mut answered = futures::stream::iter(ids.chunks(1_000))
        .map(|chunk| {
            let appends = chunk
                .iter()
                .map(|contact| (contact_stream(*contact), ExpectedVersion::Any, vec![touch(*contact, 1)]))
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
    println!("launch: a mass campaign to {contacts} contacts ({events_per_contact} events each)");
    println!(
        "  verdicts     sent {sent}, one-to-one {}, deferred {}, denied {}",
        launched.one_to_one.values().map(Vec::len).sum::<usize>(),
        launched.deferred.len(),
        launched.denied.len()
    );
    let reasons = core.live.read(|model| {
        let auditor = rapport_app::tokens::Principal {
            name: "bench".to_owned(),
            role: rapport_app::tokens::Role::Auditor,
        };
        let everyone = rapport_app::preflight::PreflightRequest {
            audience: rapport_domain::audience::Audience::default(),
            mode: SendMode::Mass,
            channel: None,
            at,
        };
        rapport_app::preflight::preflight(model, &auditor, &everyone, at).map(|answer| answer.reasons)
    })?;
    let reasons: Vec<String> = reasons
        .iter()
        .map(|(code, count)| format!("{} {count}", code.as_str()))
        .collect();
    println!("  after launch {}", reasons.join(", "));
    println!(
        "  launch       {launch_seconds:.2} s: {:.0} touches/s (judging included)",
        sent as f64 / launch_seconds
    );
    println!(
        "  baseline     {raw_seconds:.2} s: {:.0} touches/s (raw appends, the same chunks, 4 in flight)",
        sent as f64 / raw_seconds
    );
    Ok(())
}

/// Every event of `contacts` synthetic histories, recorded in order as the
/// store would have them, to fold without a store.
fn recorded_histories(
    contacts: usize,
    events_per_contact: usize,
) -> impl Iterator<Item = rapport_domain::RecordedEvent> {
    let mut position = 0u64;
    (0..contacts as u64)
        .flat_map(move |contact| {
            let stream = contact_stream(contact);
            history(contact, events_per_contact)
                .into_iter()
                .enumerate()
                .map(move |(version, event)| (stream, version as u64, event))
                .collect::<Vec<_>>()
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
                pii: None,
                occurred_at: event.occurred_at,
                recorded_at: event.occurred_at,
                actor: event.actor,
                correlation_id: event.correlation_id,
                causation_id: None,
            }
        })
}

/// A read model of `contacts` synthetic histories, as a server holds it.
fn read_model(contacts: usize, events_per_contact: usize) -> rapport_app::read_model::ReadModel {
    let mut model = rapport_app::read_model::ReadModel::default();
    for event in recorded_histories(contacts, events_per_contact) {
        model.apply(&event);
    }
    model
}

/// A campaign preflight of every contact, beside the bare gate loop over
/// the same contacts in the same process.
fn preflight(contacts: usize, events_per_contact: usize, rounds: usize) -> anyhow::Result<()> {
    use rapport_app::preflight::{PreflightRequest, VERDICTS};
    use rapport_domain::SendMode;
    let model = read_model(contacts, events_per_contact);
    let at = Timestamp::from_millis_unchecked(BASE_MILLIS + (events_per_contact as i64 * 2 + 3) * 86_400_000);
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
    println!("preflight: {contacts} contacts ({events_per_contact} events each), {rounds} rounds");
    println!(
        "  preflight    median {:.1} ms, min {:.1} ms (on the machine's cores, up to 4)",
        median(&preflights).as_secs_f64() * 1e3,
        preflights[0].as_secs_f64() * 1e3
    );
    println!(
        "  baseline     median {:.1} ms (the gate alone for every contact, one thread)",
        median(&gates).as_secs_f64() * 1e3
    );
    println!(
        "  ratio        {:.2} (preflight / gate alone)",
        median(&preflights).as_secs_f64() / median(&gates).as_secs_f64()
    );
    if let Some(answer) = last {
        let counts: Vec<String> = VERDICTS
            .iter()
            .map(|verdict| format!("{} {}", verdict.as_str(), answer.bucket(*verdict).len()))
            .collect();
        println!("  verdicts     {}", counts.join(", "));
    }
    Ok(())
}

fn gate(contacts: usize, events_per_contact: usize, decisions: usize) -> anyhow::Result<()> {
    use rapport_domain::{ContactId, SendMode};
    let before = crate::heap_bytes();
    let mut projection = rapport_projections::Projection::new();
    for event in recorded_histories(contacts, events_per_contact) {
        projection.apply(&event);
    }
    let ids: Vec<ContactId> = (0..contacts as u64)
        .filter_map(|contact| match contact_stream(contact) {
            StreamName::Contact(id) => Some(id),
            _ => None,
        })
        .collect();
    let after = crate::heap_bytes();
    let violation_bytes = std::mem::size_of_val(projection.violations());
    let at = Timestamp::from_millis_unchecked(BASE_MILLIS + (events_per_contact as i64 * 2 + 3) * 86_400_000);
    let started = Instant::now();
    let mut allowed = 0usize;
    for i in 0..decisions {
        let contact: ContactId = ids[i % ids.len()];
        let mode = if i % 2 == 0 { SendMode::Mass } else { SendMode::OneToOne };
        let moment = at.plus_millis((i as i64 % 1_440) * 60_000);
        if let Some(decision) = projection.gate(contact, mode, None, moment) {
            allowed += usize::from(std::hint::black_box(decision).gate.allowed());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("gate: {decisions} decisions over {contacts} contacts ({events_per_contact} events each), one thread");
    println!("  decisions/s  {:.0}", decisions as f64 / elapsed);
    println!("  allowed      {:.1} %", allowed as f64 * 100.0 / decisions as f64);
    println!("  violations   {}", projection.violations().len());
    match (before, after) {
        (Some(before), Some(after)) => {
            let held = after.saturating_sub(before);
            println!(
                "  memory       {} bytes per contact (live heap of the whole projection)",
                held / contacts
            );
            let without = held.saturating_sub(violation_bytes) / contacts;
            println!("               {without} bytes per contact without the violation list");
        }
        _ => println!("  memory       build with --features heap-accounting to count it"),
    }
    println!(
        "  state size   {} bytes per relationship (before tags)",
        std::mem::size_of::<rapport_domain::Relationship>()
    );
    Ok(())
}

async fn http(contacts: usize, connections: usize, seconds: u64) -> anyhow::Result<()> {
    let (dir, store) = scratch_ledger()?;
    rapport_app::ledger::ensure_policy(
        &store,
        "bench",
        rapport_app::clock::Clock::now(&rapport_app::clock::SystemClock),
    )
    .await?;
    fill(&store, contacts, 25, 16).await?;
    let path = store.path().to_path_buf();
    drop(store);
    let state = rapport_api::server::open_state(&path).await?;
    let token = state
        .tokens
        .create(rapport_app::tokens::Role::Manager, "bench", "bench")?;
    let server = rapport_api::server::Server::start_with(state, "127.0.0.1:0".parse()?).await?;
    let url = format!("http://{}/graphql", server.address);
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;
    let query = "query($id: UUID!, $mode: SendMode!) { gate(contactId: $id, mode: $mode) { verdict allowed reasons { code message blocking } nextAllowedAt score band policyVersion position } }";
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections as u64)
        .map(|task| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = task;
                while Instant::now() < deadline {
                    let StreamName::Contact(id) = contact_stream(n % contacts as u64) else {
                        unreachable!("a contact stream")
                    };
                    let mode = if n % 2 == 0 { "MASS" } else { "ONE_TO_ONE" };
                    let body = serde_json::json!({ "query": query, "variables": { "id": id.0, "mode": mode } });
                    let sent = Instant::now();
                    let response = client.post(&url).bearer_auth(&token).json(&body).send().await?;
                    anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
                    let bytes = response.bytes().await?;
                    anyhow::ensure!(
                        !bytes.windows(8).any(|w| w == b"\"errors\""),
                        "GraphQL errors in the answer"
                    );
                    latencies.push(sent.elapsed());
                    n += connections as u64;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("client task")??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    server.stop().await?;
    drop(dir);
    latencies.sort_unstable();
    println!(
        "gate query over loopback HTTP: {contacts} contacts, {connections} connections, {elapsed:.1} s (client and server share the machine)"
    );
    println!("  requests/s  {:.0}", latencies.len() as f64 / elapsed);
    println!(
        "  latency     p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().map_or(0.0, |max| max.as_secs_f64() * 1e3)
    );
    Ok(())
}
