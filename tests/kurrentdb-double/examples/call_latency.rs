//! `cargo run -p rapport-kurrentdb-double --example call_latency [--release] [-- CALLS]`:
//! times sequential calls of the official `kurrentdb` client against a fresh
//! double on loopback (CALLS appends of one event, then CALLS reads of the
//! stream; 50 each by default) and prints the time per call. A measurement
//! to run by hand, not a test: nothing here asserts a time.

use std::time::{Duration, Instant};

use kurrentdb::{AppendToStreamOptions, Client, ClientSettings, EventData, ReadStreamOptions};
use rapport_kurrentdb_double::Double;

const DEFAULT_CALLS: usize = 50;

fn client_of(double: &Double) -> Client {
    // The client sleeps `discoveryInterval` (500 ms by default) before it
    // first connects.
    let url = format!("{}&discoveryInterval=10", double.url());
    let settings: ClientSettings = url.parse().expect("the double's url is a connection string");
    Client::new(settings).expect("client")
}

fn event(n: usize) -> EventData {
    EventData::json("Timed", &serde_json::json!({ "n": n })).expect("json")
}

async fn read_whole(client: &Client, stream: &str) -> usize {
    let mut read = client
        .read_stream(stream, &ReadStreamOptions::default())
        .await
        .expect("read");
    let mut count = 0;
    while read.next().await.expect("read").is_some() {
        count += 1;
    }
    count
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let total: Duration = times.iter().sum();
    let calls = u32::try_from(times.len()).expect("a few calls");
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!(
        "{what}: {calls} calls in {:.1} ms: mean {:.2} ms, min {:.2}, median {:.2}, max {:.2} ms per call",
        ms(total),
        ms(total / calls),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    );
}

#[tokio::main]
async fn main() {
    let calls = match std::env::args().nth(1) {
        Some(calls) => calls.parse().expect("CALLS is a number"),
        None => DEFAULT_CALLS,
    };
    let double = Double::start().await;
    let client = client_of(&double);
    // The first call also connects (and discovers): not timed.
    client
        .append_to_stream("warm-up", &AppendToStreamOptions::default(), event(0))
        .await
        .expect("warm-up append");
    read_whole(&client, "warm-up").await;

    let mut appends = Vec::with_capacity(calls);
    for n in 0..calls {
        let started = Instant::now();
        client
            .append_to_stream("timed", &AppendToStreamOptions::default(), event(n))
            .await
            .expect("append");
        appends.push(started.elapsed());
    }
    let mut reads = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let read = read_whole(&client, "timed").await;
        reads.push(started.elapsed());
        assert_eq!(read, calls, "every appended event reads back");
    }
    report("append_to_stream", appends);
    report("read_stream", reads);
    double.stop().await;
}
