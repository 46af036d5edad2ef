//! One measured figure beside its baseline and its targets, and the table
//! and JSON every run prints. On a noisy machine an absolute figure moves
//! by a third between runs; the ratio to a baseline measured minutes apart
//! in the same process is what holds.

use std::time::Duration;

use serde_json::{Value, json};

/// What a figure is compared with, measured in the same run.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub what: String,
    pub value: f64,
}

/// One target and whether this run met it.
#[derive(Clone, Debug)]
pub struct Goal {
    pub text: String,
    pub met: bool,
}

#[derive(Clone, Debug)]
pub struct Figure {
    /// Stable, for scripts reading the JSON.
    pub key: &'static str,
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub baseline: Option<Baseline>,
    pub goals: Vec<Goal>,
    /// What else the run saw: percentiles, counts, why a goal cannot be met yet.
    pub note: Option<String>,
}

impl Figure {
    pub fn new(key: &'static str, name: impl Into<String>, value: f64, unit: &'static str) -> Self {
        Figure {
            key,
            name: name.into(),
            value,
            unit,
            baseline: None,
            goals: Vec::new(),
            note: None,
        }
    }

    pub fn beside(mut self, what: impl Into<String>, value: f64) -> Self {
        self.baseline = Some(Baseline {
            what: what.into(),
            value,
        });
        self
    }

    /// The figure over its baseline.
    pub fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .filter(|baseline| baseline.value > 0.0)
            .map(|baseline| self.value / baseline.value)
    }

    pub fn at_least(mut self, target: f64) -> Self {
        let met = self.value >= target;
        self.goals.push(Goal {
            text: format!("≥ {} {}", readable(target), self.unit),
            met,
        });
        self
    }

    pub fn at_most(mut self, target: f64) -> Self {
        let met = self.value <= target;
        self.goals.push(Goal {
            text: format!("≤ {} {}", readable(target), self.unit),
            met,
        });
        self
    }

    pub fn ratio_at_least(mut self, target: f64) -> Self {
        let met = self.ratio().is_some_and(|ratio| ratio >= target);
        self.goals.push(Goal {
            text: format!("ratio ≥ {target}"),
            met,
        });
        self
    }

    /// A goal judged by the caller, such as one against another figure.
    pub fn goal(mut self, text: String, met: bool) -> Self {
        self.goals.push(Goal { text, met });
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// `None` when the figure has no target.
    pub fn met(&self) -> Option<bool> {
        (!self.goals.is_empty()).then(|| self.goals.iter().all(|goal| goal.met))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "key": self.key,
            "figure": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline.as_ref().map(|b| json!({ "what": b.what, "value": b.value })),
            "ratio": self.ratio(),
            "targets": self.goals.iter().map(|g| json!({ "target": g.text, "met": g.met })).collect::<Vec<_>>(),
            "met": self.met(),
            "note": self.note,
        })
    }
}

/// The value at `fraction` (0 to 1) of sorted durations.
pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// A number as a reader takes it in: no more digits than it means.
pub fn readable(value: f64) -> String {
    if value.abs() >= 1_000.0 {
        let whole = value.round() as i64;
        let digits = whole.unsigned_abs().to_string();
        let mut grouped = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        if whole < 0 { format!("-{grouped}") } else { grouped }
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// The targets of a figure as one cell.
fn targets_text(figure: &Figure) -> String {
    if figure.goals.is_empty() {
        return "—".to_owned();
    }
    let texts: Vec<&str> = figure.goals.iter().map(|goal| goal.text.as_str()).collect();
    texts.join(", ")
}

/// The table: figure, value, baseline, ratio, target, met.
pub fn print_table(figures: &[Figure]) {
    let targets: Vec<String> = figures.iter().map(targets_text).collect();
    let name_width = figures.iter().map(|f| f.name.chars().count()).max().unwrap_or(6).max(6);
    let target_width = targets.iter().map(|t| t.chars().count()).max().unwrap_or(6).max(6);
    println!(
        "{:<name_width$}  {:>14}  {:<12}  {:>14}  {:>6}  {:<target_width$}  met",
        "figure", "value", "unit", "baseline", "ratio", "target"
    );
    for (figure, target) in figures.iter().zip(&targets) {
        let baseline = figure
            .baseline
            .as_ref()
            .map_or_else(|| "—".to_owned(), |b| readable(b.value));
        let ratio = figure.ratio().map_or_else(|| "—".to_owned(), |r| format!("{r:.2}"));
        let met = match figure.met() {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!(
            "{:<name_width$}  {:>14}  {:<12}  {:>14}  {:>6}  {:<target_width$}  {met}",
            figure.name,
            readable(figure.value),
            figure.unit,
            baseline,
            ratio,
            target
        );
    }
    for figure in figures {
        if let Some(baseline) = &figure.baseline {
            println!("  {}: beside {}", figure.key, baseline.what);
        }
        if let Some(note) = &figure.note {
            println!("  {}: {note}", figure.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_are_met_only_when_every_one_holds() {
        let figure = Figure::new("append", "append", 80_000.0, "events/s")
            .beside("raw", 100_000.0)
            .at_least(75_000.0)
            .ratio_at_least(0.8);
        assert_eq!(figure.met(), Some(true));
        let missed = figure.clone().ratio_at_least(0.9);
        assert_eq!(missed.met(), Some(false));
        assert_eq!(Figure::new("x", "x", 1.0, "s").met(), None, "no target, no verdict");
        let no_baseline = Figure::new("x", "x", 1.0, "s").ratio_at_least(0.5);
        assert_eq!(no_baseline.met(), Some(false), "a ratio without a baseline is not met");
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(readable(1_234_567.4), "1,234,567");
        assert_eq!(readable(75_000.0), "75,000");
        assert_eq!(readable(56.54), "56.5");
        assert_eq!(readable(0.8), "0.80");
        assert_eq!(readable(400.0), "400");
    }
}
