//! Prometheus text metrics: requests by status class, request latency,
//! appends and gate verdicts. A handful of atomics is all this needs; a
//! metrics crate would add a registry and a dependency for no gain.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rapport_domain::Verdict;

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BOUNDS_SECS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];
const STATUS_CLASSES: [&str; 4] = ["2xx", "4xx", "5xx", "other"];
const VERDICTS: [Verdict; 4] = [Verdict::Allow, Verdict::Defer, Verdict::RouteOneToOne, Verdict::Deny];

#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 4],
    latency_buckets: [AtomicU64; 10],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    appended_events: AtomicU64,
    verdicts: [AtomicU64; 4],
}

impl Metrics {
    pub fn record_request(&self, status: u16, elapsed: Duration) {
        let class = match status {
            200..=299 => 0,
            400..=499 => 1,
            500..=599 => 2,
            _ => 3,
        };
        self.requests[class].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(bucket) = LATENCY_BOUNDS_SECS.iter().position(|bound| secs <= *bound) {
            self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn record_appended(&self, events: u64) {
        self.appended_events.fetch_add(events, Ordering::Relaxed);
    }

    pub fn record_verdict(&self, verdict: Verdict) {
        if let Some(index) = VERDICTS.iter().position(|known| *known == verdict) {
            self.verdicts[index].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let _ = writeln!(
            text,
            "# HELP rapport_http_requests_total HTTP requests answered, by status class."
        );
        let _ = writeln!(text, "# TYPE rapport_http_requests_total counter");
        for (class, counter) in STATUS_CLASSES.iter().zip(&self.requests) {
            let _ = writeln!(
                text,
                "rapport_http_requests_total{{status=\"{class}\"}} {}",
                get(counter)
            );
        }
        let _ = writeln!(
            text,
            "# HELP rapport_http_request_duration_seconds Time to answer an HTTP request."
        );
        let _ = writeln!(text, "# TYPE rapport_http_request_duration_seconds histogram");
        let mut cumulative = 0;
        for (bound, counter) in LATENCY_BOUNDS_SECS.iter().zip(&self.latency_buckets) {
            cumulative += get(counter);
            let _ = writeln!(
                text,
                "rapport_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            text,
            "rapport_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = get(&self.latency_sum_micros) as f64 / 1e6;
        let _ = writeln!(text, "rapport_http_request_duration_seconds_sum {sum}");
        let _ = writeln!(text, "rapport_http_request_duration_seconds_count {count}");
        let _ = writeln!(
            text,
            "# HELP rapport_appended_events_total Events appended to the ledger through the API."
        );
        let _ = writeln!(text, "# TYPE rapport_appended_events_total counter");
        let _ = writeln!(text, "rapport_appended_events_total {}", get(&self.appended_events));
        let _ = writeln!(
            text,
            "# HELP rapport_gate_verdicts_total Gate decisions answered, by verdict."
        );
        let _ = writeln!(text, "# TYPE rapport_gate_verdicts_total counter");
        for (verdict, counter) in VERDICTS.iter().zip(&self.verdicts) {
            let _ = writeln!(
                text,
                "rapport_gate_verdicts_total{{verdict=\"{}\"}} {}",
                verdict.as_str(),
                get(counter)
            );
        }
        text
    }
}
