//! Results: latency histograms, one report per scenario, JSON and a human table.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies in microseconds.
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"))
    }
}

impl Latencies {
    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        let _ = self.0.record((d.as_micros() as u64).max(1));
    }

    /// Adds another set.
    pub fn merge(&mut self, other: &Latencies) {
        let _ = self.0.add(&other.0);
    }

    /// How many were recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// p50, p90, p99 and max in milliseconds, under `prefix`.
    pub fn add_to(&self, prefix: &str, m: &mut BTreeMap<String, f64>) {
        if self.0.is_empty() {
            return;
        }
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
            m.insert(format!("{prefix}_{name}_ms"), self.0.value_at_quantile(q) as f64 / 1000.0);
        }
        m.insert(format!("{prefix}_max_ms"), self.0.max() as f64 / 1000.0);
    }
}

/// One scenario's outcome.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Its parameters.
    pub params: BTreeMap<String, String>,
    /// Its figures.
    pub metrics: BTreeMap<String, f64>,
}

/// Prints reports as a table: one block per scenario, one figure per line, and the ratio of
/// each rate to the baseline's when a baseline ran.
pub fn print_table(reports: &[Report]) {
    let ceiling =
        reports.iter().find(|r| r.scenario == "baseline").and_then(|r| r.metrics.get("requests_per_s")).copied();
    for r in reports {
        let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("== {} ({})", r.scenario, params.join(", "));
        for (k, v) in &r.metrics {
            let ratio = match ceiling {
                Some(c) if k.ends_with("_per_s") && r.scenario != "baseline" => format!("   ({:.2} × baseline)", v / c),
                _ => String::new(),
            };
            println!("   {k:<32} {v:>14.3}{ratio}");
        }
    }
}
