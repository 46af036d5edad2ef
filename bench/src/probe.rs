//! The parts of a run that live in a process of their own: the HTTP load
//! generator, so that client and server never share a runtime or a heap,
//! and the server as an operator starts it, so that its time to ready and
//! its memory are the server's alone. Each prints one JSON line; the
//! parent starts them with `rapport-bench` itself (hidden subcommands).
//! `rapport import` of a realistic file runs the `rapport` binary itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

/// What `load` measured.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The queries `load` sends: the gate, and the trivial one that measures
/// the server stack alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Query {
    Gate,
    Typename,
}

const GATE_QUERY: &str = "query($id: UUID!, $mode: SendMode!) { gate(contactId: $id, mode: $mode) { verdict allowed reasons { code message blocking } nextAllowedAt score band policyVersion position } }";

/// The load generator: `connections` keep-alive connections, one request
/// in flight each, for `seconds`, asking about the contacts in `ids`.
pub async fn load(
    url: &str,
    token: &str,
    query: Query,
    ids: &Path,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let ids: Vec<String> = std::fs::read_to_string(ids)
        .context("reading the contact ids")?
        .lines()
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!ids.is_empty(), "no contact ids to ask about");
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let ids = std::sync::Arc::new(ids);
    let tasks: Vec<_> = (0..connections)
        .map(|task| {
            let (client, url, token, ids) = (client.clone(), url.to_owned(), token.to_owned(), ids.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = task;
                while Instant::now() < deadline {
                    let body = match query {
                        Query::Gate => {
                            let mode = if n.is_multiple_of(2) { "MASS" } else { "ONE_TO_ONE" };
                            json!({ "query": GATE_QUERY, "variables": { "id": ids[n % ids.len()], "mode": mode } })
                        }
                        Query::Typename => json!({ "query": "{ __typename }" }),
                    };
                    let sent = Instant::now();
                    let response = client.post(&url).bearer_auth(&token).json(&body).send().await?;
                    anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
                    let bytes = response.bytes().await?;
                    anyhow::ensure!(
                        !bytes.windows(8).any(|w| w == b"\"errors\""),
                        "GraphQL errors in the answer: {}",
                        String::from_utf8_lossy(&bytes)
                    );
                    latencies.push(sent.elapsed());
                    n += connections;
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
    latencies.sort_unstable();
    let at = |fraction: f64| crate::figure::percentile(&latencies, fraction).as_secs_f64() * 1e3;
    println!(
        "{}",
        json!({
            "requestsPerSecond": latencies.len() as f64 / elapsed,
            "p50Ms": at(0.50),
            "p99Ms": at(0.99),
        })
    );
    Ok(())
}

/// Runs `load` in a child process against `url`.
pub fn spawn_load(
    url: &str,
    token: &str,
    query: Query,
    ids: &Path,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<Load> {
    let query = match query {
        Query::Gate => "gate",
        Query::Typename => "typename",
    };
    let answer = child(&[
        "load",
        "--url",
        url,
        "--token",
        token,
        "--query",
        query,
        "--ids",
        &ids.display().to_string(),
        "--connections",
        &connections.to_string(),
        "--seconds",
        &seconds.to_string(),
    ])?;
    let number = |key: &str| {
        answer[key]
            .as_f64()
            .with_context(|| format!("the load generator gave no {key}"))
    };
    Ok(Load {
        requests_per_second: number("requestsPerSecond")?,
        p50_ms: number("p50Ms")?,
        p99_ms: number("p99Ms")?,
    })
}

/// What `serve-probe` measured.
#[derive(Clone, Copy, Debug)]
pub struct Started {
    pub ready_seconds: f64,
    pub anonymous_rss: u64,
    pub from_snapshot: bool,
    /// Stopping: requests in flight, then writing the snapshot.
    pub stop_seconds: f64,
}

/// The server as `rapport serve` starts it: open the ledger, load the
/// read model's snapshot or rebuild it, listen; then its anonymous
/// resident memory. Stopping leaves a snapshot, as `rapport serve` does.
pub async fn serve_probe(store: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let state = rapport_api::server::open_state(store).await?;
    let server = rapport_api::server::Server::start_with(state, "127.0.0.1:0".parse()?).await?;
    let ready = started.elapsed().as_secs_f64();
    let rss = crate::raw::anonymous_rss().context("this system does not report anonymous memory")?;
    let from_snapshot = server.state.core.live.started_from_snapshot().is_some();
    let stopping = Instant::now();
    server.stop().await?;
    let stop = stopping.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({ "readySeconds": ready, "anonymousRss": rss, "fromSnapshot": from_snapshot, "stopSeconds": stop })
    );
    Ok(())
}

pub fn spawn_serve_probe(store: &Path) -> anyhow::Result<Started> {
    let answer = child(&["serve-probe", "--store", &store.display().to_string()])?;
    Ok(Started {
        ready_seconds: answer["readySeconds"].as_f64().context("no readySeconds")?,
        anonymous_rss: answer["anonymousRss"].as_u64().context("no anonymousRss")?,
        from_snapshot: answer["fromSnapshot"].as_bool().context("no fromSnapshot")?,
        stop_seconds: answer["stopSeconds"].as_f64().context("no stopSeconds")?,
    })
}

/// The `rapport` binary beside this one (a `cargo build --release` puts
/// them side by side), or `RAPPORT_BIN`.
pub fn rapport_binary() -> Option<PathBuf> {
    if let Some(named) = std::env::var_os("RAPPORT_BIN") {
        return Some(PathBuf::from(named));
    }
    let beside = std::env::current_exe().ok()?.with_file_name("rapport");
    beside.is_file().then_some(beside)
}

/// Runs this binary with `arguments` and reads the one JSON line it prints.
pub fn child(arguments: &[&str]) -> anyhow::Result<Value> {
    let exe: PathBuf = std::env::current_exe().context("finding rapport-bench itself")?;
    run_json(&exe, arguments)
}

/// Runs `binary` with `arguments` and reads the one JSON document it prints.
pub fn run_json(binary: &Path, arguments: &[&str]) -> anyhow::Result<Value> {
    let output = std::process::Command::new(binary)
        .args(arguments)
        .output()
        .with_context(|| format!("starting {}", binary.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} {} failed: {}",
        binary.display(),
        arguments.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim()).with_context(|| format!("{} printed {text}", binary.display()))
}
