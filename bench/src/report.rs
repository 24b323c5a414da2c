//! Results: latencies, one report per scenario, JSON and a human table.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Latencies in microseconds, every one kept: percentiles are exact, and recording one is
/// a push. (A histogram per simulated device, as this was, is ~170 KB of counters: with
/// thousands of devices, recording was ~3 % of the generator's time, likely cache misses.)
#[derive(Default)]
pub struct Latencies(Vec<u64>);

impl Latencies {
    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        self.0.push(d.as_micros() as u64);
    }

    /// Adds another set.
    pub fn merge(&mut self, other: &Latencies) {
        self.0.extend_from_slice(&other.0);
    }

    /// How many were recorded.
    pub fn count(&self) -> u64 {
        self.0.len() as u64
    }

    /// p50, p90, p99 and max in milliseconds, under `prefix`.
    pub fn add_to(&self, prefix: &str, m: &mut BTreeMap<String, f64>) {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let Some(&max) = sorted.last() else { return };
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
            m.insert(format!("{prefix}_{name}_ms"), nearest_rank(&sorted, q) as f64 / 1000.0);
        }
        m.insert(format!("{prefix}_max_ms"), max as f64 / 1000.0);
    }
}

/// The smallest value with at least the fraction `q` of `sorted` at or below it.
fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_the_nearest_rank() {
        let mut l = Latencies::default();
        for us in (1..=1000).rev() {
            l.record(Duration::from_micros(us * 1000));
        }
        let mut m = BTreeMap::new();
        l.add_to("x", &mut m);
        assert_eq!((m["x_p50_ms"], m["x_p90_ms"], m["x_p99_ms"], m["x_max_ms"]), (500.0, 900.0, 990.0, 1000.0));
        let mut one = Latencies::default();
        one.record(Duration::from_micros(7));
        let mut m = BTreeMap::new();
        one.add_to("y", &mut m);
        assert_eq!(m["y_p50_ms"], 0.007);
        let mut m = BTreeMap::new();
        Latencies::default().add_to("z", &mut m);
        assert!(m.is_empty());
    }
}
