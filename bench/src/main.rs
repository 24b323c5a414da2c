//! `webim-bench`: the load generator. It seeds a fresh database for each scenario, starts
//! the server (pinned to a core when asked), drives the public HTTP API as browsers do and
//! checks every message; then prints a table and writes JSON.

mod arrival_clock;
mod arrivals;
mod client;
mod nchan;
mod pacing;
mod report;
mod scenarios;
mod server;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::client::Api;
use crate::report::{print_table, Report};
use crate::server::{fresh_dir, Launch};

// The server's allocator: with glibc's, malloc and free were ~8 % of the generator's time.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Load generator for webim.
#[derive(Debug, Parser)]
#[command(name = "webim-bench", about)]
struct Args {
    /// Scenarios to run, in order.
    #[arg(value_enum, required = true)]
    scenarios: Vec<Scenario>,
    /// The `webim` binary to test (build it with --release).
    #[arg(long, default_value = "target/release/webim")]
    server: PathBuf,
    /// Pin the server to this CPU core (run the bench itself under `taskset` on another).
    #[arg(long)]
    server_cpu: Option<usize>,
    /// The server's durability mode: `full` fsyncs every group commit, `normal` survives a
    /// killed process but not a power cut.
    #[arg(long, default_value = "full")]
    sync: String,
    /// Where data directories are made.
    #[arg(long, default_value = "/tmp/webim-bench")]
    work_dir: PathBuf,
    /// Write the results here as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Round trips in `pingpong`.
    #[arg(long, default_value_t = 2000)]
    rounds: usize,
    /// Online pairs in `direct`.
    #[arg(long, default_value_t = 1000)]
    pairs: usize,
    /// Messages per second per sender in `direct` (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds each timed scenario runs.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Group size in `fanout`.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Messages sent in `fanout`.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Messages per second in `fanout` (default: as fast as sends return).
    #[arg(long)]
    fanout_rate: Option<f64>,
    /// Held polls in `idle`.
    #[arg(long, default_value_t = 15000)]
    idle: usize,
    /// Concurrent senders in `send`.
    #[arg(long, default_value_t = 64)]
    senders: usize,
    /// Messages stored before every device comes back in `catchup`.
    #[arg(long, default_value_t = 20_000)]
    backlog: usize,
    /// Concurrent connections in `baseline`.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// What to drive: webim, or for comparison Nchan (nginx) or the bare hyper relay
    /// (baseline, pingpong, direct, fanout and idle only; both keep messages in memory only).
    #[arg(long, value_enum, default_value = "webim")]
    target: Target,
    /// Port for the Nchan target (the relay takes a free one).
    #[arg(long, default_value_t = 18_990)]
    nchan_port: u16,
    /// The `hyper-relay` binary, for `--target relay`.
    #[arg(long, default_value = "target/release/hyper-relay")]
    relay: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Webim,
    Nchan,
    /// `hyper-relay`: Nchan's protocol on bare hyper, nothing stored durably (the floor).
    Relay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Baseline,
    Pingpong,
    Direct,
    Fanout,
    Idle,
    Send,
    /// Every device of `--pairs` pairs comes back at once after `--backlog` messages.
    Catchup,
}

// One thread: the generator gets one core of its own, and a multi-thread runtime would run
// the scenario's own loop on a second thread, woken across threads for every delivery (on
// one core, two context switches each: 40% of the generator's time in `fanout`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut reports: Vec<Report> = Vec::new();
    for scenario in &args.scenarios {
        let name = format!("{scenario:?}").to_lowercase();
        if args.target != Target::Webim {
            let target = format!("{:?}", args.target).to_lowercase();
            let dir = fresh_dir(&args.work_dir, &target)?;
            let nchan = if args.target == Target::Relay {
                nchan::PubSub::start_relay(&args.relay, &dir, args.server_cpu).await?
            } else {
                nchan::PubSub::start(&dir, args.nchan_port, args.server_cpu).await?
            };
            eprintln!("{name}: running against {target} at {} …", nchan.base);
            let report = match scenario {
                Scenario::Baseline => {
                    let api = Api::new(&nchan.base);
                    scenarios::baseline_with(&api, || nchan.cpu_seconds(), args.connections, args.seconds).await
                }
                Scenario::Pingpong => nchan::pingpong(&nchan, args.rounds).await,
                Scenario::Fanout => nchan::fanout(&nchan, args.members, args.messages, args.fanout_rate).await,
                Scenario::Idle => nchan::idle(&nchan, args.idle, args.seconds).await,
                Scenario::Direct => nchan::direct(&nchan, args.pairs, args.seconds).await,
                Scenario::Send | Scenario::Catchup => {
                    eprintln!("{name}: not a pub/sub scenario; skipped for {target}");
                    nchan.stop().await;
                    continue;
                }
            };
            nchan.stop().await;
            let mut report = report?;
            report.params.insert("target".into(), target);
            reports.push(report);
            continue;
        }
        let launch = Launch {
            bin: args.server.clone(),
            data_dir: fresh_dir(&args.work_dir, &name)?,
            cpu: args.server_cpu,
            sync: args.sync.clone(),
        };
        let seed: Vec<String> = match scenario {
            Scenario::Baseline => vec![],
            Scenario::Pingpong => vec!["--pairs".into(), "1".into()],
            Scenario::Direct => vec!["--pairs".into(), args.pairs.to_string()],
            Scenario::Fanout => vec!["--groups".into(), "1".into(), "--group-members".into(), args.members.to_string()],
            Scenario::Idle => vec!["--idle".into(), args.idle.to_string()],
            Scenario::Send => vec!["--pairs".into(), args.senders.to_string()],
            Scenario::Catchup => vec!["--pairs".into(), args.pairs.to_string()],
        };
        eprintln!("{name}: seeding …");
        let seeded = launch.seed(&seed).await?;
        let server = launch.start().await?;
        let api = Api::new(&server.base);
        eprintln!("{name}: running against {} …", server.base);
        let report = match scenario {
            Scenario::Baseline => scenarios::baseline(&api, &server, args.connections, args.seconds).await,
            Scenario::Pingpong => scenarios::pingpong(&api, &server, &seeded, args.rounds).await,
            Scenario::Direct => scenarios::direct(&api, &server, &seeded, args.seconds, args.rate).await,
            Scenario::Fanout => scenarios::fanout(&api, &server, &seeded, args.messages, args.fanout_rate).await,
            Scenario::Idle => scenarios::idle(&api, &server, &seeded, args.seconds).await,
            Scenario::Send => scenarios::send(&api, &server, &seeded, args.senders, args.seconds).await,
            Scenario::Catchup => scenarios::catchup(&api, &server, &seeded, args.backlog).await,
        };
        server.stop().await;
        let mut report = report?;
        report.params.insert("sync".into(), args.sync.clone());
        reports.push(report);
    }
    print_table(&reports);
    let failed: Vec<&Report> = reports
        .iter()
        .filter(|r| {
            r.metrics.get("lost").copied().unwrap_or(0.0) > 0.0
                || r.metrics.get("duplicated").copied().unwrap_or(0.0) > 0.0
        })
        .collect();
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&reports)?)?;
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "messages were lost or duplicated in: {:?}",
            failed.iter().map(|r| &r.scenario).collect::<Vec<_>>()
        );
    }
    Ok(())
}
