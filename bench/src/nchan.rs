//! The same pingpong, direct, fan-out and idle scenarios against Nchan (nginx's pub/sub
//! module with long-poll subscribers) on this machine, for comparison, or against
//! `hyper-relay` (`bin/hyper-relay.rs`), which speaks the same protocol on bare hyper. Both
//! keep messages in memory only; webim stores each one durably first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hyper::{Method, StatusCode};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::arrivals::{Fanout, OnArrival, RoundTrips};
use crate::client::Api;
use crate::pacing::Pacing;
use crate::report::{Latencies, Report};
use crate::server::{cpu_seconds, pinned, rss_bytes};

/// A running nginx with Nchan, or the bare hyper relay that speaks the same protocol.
pub struct PubSub {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    dir: PathBuf,
    /// The relay is one process; nginx a master and its worker.
    single: bool,
}

impl PubSub {
    /// Starts nginx (one worker, pinned to `cpu` when given) on `port` with a pub/sub config.
    pub async fn start(dir: &Path, port: u16, cpu: Option<usize>) -> anyhow::Result<Self> {
        let module = ["/usr/lib/nginx/modules/ngx_nchan_module.so", "/usr/share/nginx/modules/ngx_nchan_module.so"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("Nchan is not installed (apt-get install nginx-light libnginx-mod-nchan)")?;
        std::fs::create_dir_all(dir)?;
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "load_module {module};\nworker_processes 1;\nworker_rlimit_nofile 20000;\ndaemon off;\npid {pid};\nerror_log stderr error;\n\
                 events {{ worker_connections 19000; }}\n\
                 http {{\n access_log off;\n client_body_temp_path {tmp};\n\
                 server {{\n  listen 127.0.0.1:{port};\n\
                   location = /pub {{ nchan_publisher; nchan_channel_id $arg_id; nchan_message_buffer_length 64; nchan_message_timeout 5m; }}\n\
                   location = /sub {{ nchan_subscriber longpoll; nchan_channel_id $arg_id; nchan_subscriber_timeout 90s; }}\n\
                   location = /health {{ return 200 ok; }}\n }}\n}}\n",
                pid = dir.join("nginx.pid").display(),
                tmp = dir.display(),
            ),
        )?;
        let child = pinned("nginx", cpu)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        Self::answering(child, base, dir, false).await
    }

    /// Starts `bin` (the `hyper-relay` binary, pinned to `cpu` when given) on a free port.
    pub async fn start_relay(bin: &Path, dir: &Path, cpu: Option<usize>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut child = pinned(bin, cpu)
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // Its first line names the address it took.
        let stdout = child.stdout.take().context("the relay's output")?;
        let (mut line, mut stdout) = (String::new(), tokio::io::BufReader::new(stdout));
        let read = tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line);
        tokio::time::timeout(Duration::from_secs(10), read).await.context("the relay did not start in 10 s")??;
        let addr = line.trim().strip_prefix("listening on ").with_context(|| format!("the relay said {line:?}"))?;
        Self::answering(child, format!("http://{addr}"), dir, true).await
    }

    /// Waits until the server just started answers its health check; fails at once if it
    /// exits (its port taken, say), rather than drive whatever else answers there.
    async fn answering(mut child: Child, base: String, dir: &Path, single: bool) -> anyhow::Result<Self> {
        let api = Api::new(&base);
        for _ in 0..100 {
            if let Some(status) = child.try_wait()? {
                bail!("the pub/sub server exited ({status}) before answering on {base}");
            }
            if api.health().await.is_ok() {
                return Ok(PubSub { child, base, dir: dir.to_owned(), single });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the pub/sub server did not answer on {base}")
    }

    /// The worker's pid: the process whose parent is the master (the relay is its own).
    fn worker_pid(&self) -> Option<u32> {
        let master = self.child.id()?;
        if self.single {
            return Some(master);
        }
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: u32 = stat[stat.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok()?;
            (ppid == master).then_some(pid)
        })
    }

    /// CPU seconds of nginx's master and worker, or of the relay.
    pub fn cpu_seconds(&self) -> f64 {
        let master = self.child.id().and_then(cpu_seconds).unwrap_or(0.0);
        if self.single {
            return master;
        }
        master + self.worker_pid().and_then(cpu_seconds).unwrap_or(0.0)
    }

    /// Resident memory of nginx's worker, or of the relay.
    pub fn rss_bytes(&self) -> u64 {
        self.worker_pid().and_then(rss_bytes).unwrap_or(0)
    }

    /// Stops the server. For nginx, TERM lets the master take its worker down too (a killed
    /// master would leave the worker holding the port).
    pub async fn stop(mut self) {
        // The relay has no worker; its own pid, once reaped, could belong to anything.
        let worker = if self.single { None } else { self.worker_pid() };
        if let Some(master) = self.child.id() {
            let _ = Command::new("kill").arg("-TERM").arg(master.to_string()).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
        if let Some(worker) = worker {
            // Usually gone already with its master.
            let _ = Command::new("kill").arg("-KILL").arg(worker.to_string()).stderr(Stdio::null()).status().await;
        }
        let _ = std::fs::remove_file(self.dir.join("nginx.pid"));
    }
}

/// A long-poll subscriber: follows Last-Modified / Etag, tells `arrived` of each message's
/// body, when it was read, and when it reached the socket.
async fn subscribe(
    api: Api,
    channel: String,
    stop: Arc<AtomicBool>,
    mut arrived: impl FnMut(&[u8], Instant, Option<Instant>) + Send + 'static,
) -> anyhow::Result<u64> {
    let (mut since, mut etag) = (String::new(), String::new());
    let mut received = 0;
    while !stop.load(Ordering::Relaxed) {
        let headers: Vec<(&str, String)> = if since.is_empty() {
            vec![]
        } else {
            vec![("if-modified-since", since.clone()), ("if-none-match", etag.clone())]
        };
        let (status, h, body, on_socket) =
            api.exchange(Method::GET, &format!("/sub?id={channel}"), None, None, &headers).await?;
        let at = Instant::now();
        match status {
            StatusCode::OK => {
                since = h.get("last-modified").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                etag = h.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                received += 1;
                arrived(&body, at, on_socket);
            }
            StatusCode::NOT_MODIFIED | StatusCode::REQUEST_TIMEOUT => {}
            other => bail!("a subscriber got {other}"),
        }
    }
    Ok(received)
}

async fn publish(api: &Api, channel: &str, body: String) -> anyhow::Result<()> {
    let (status, ..) = api.exchange(Method::POST, &format!("/pub?id={channel}"), None, Some(body), &[]).await?;
    if !status.is_success() {
        bail!("a publish was answered {status}");
    }
    Ok(())
}

/// A report; `main` adds which target it was.
fn report(name: &str, params: &[(&str, String)], metrics: BTreeMap<String, f64>) -> Report {
    let params: BTreeMap<String, String> = params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    Report { scenario: name.into(), params, metrics }
}

/// Ping-pong between two channels.
pub async fn pingpong(nchan: &PubSub, rounds: usize) -> anyhow::Result<Report> {
    let api = Api::new(&nchan.base);
    let stop = Arc::new(AtomicBool::new(false));
    let (to_a, mut at_a) = mpsc::unbounded_channel();
    let (to_b, mut at_b) = mpsc::unbounded_channel();
    let [sub_a, sub_b]: [Api; 2] = api.stamped_many(2).await?.try_into().map_err(|_| anyhow::anyhow!("two clients"))?;
    let publisher = api.dedicated().await?;
    let bodies = |tx: mpsc::UnboundedSender<(String, Instant, Option<Instant>)>| {
        move |body: &[u8], at, on_socket| drop(tx.send((String::from_utf8_lossy(body).into_owned(), at, on_socket)))
    };
    let sa = tokio::spawn(subscribe(sub_a, "pa".into(), stop.clone(), bodies(to_a)));
    let sb = tokio::spawn(subscribe(sub_b, "pb".into(), stop.clone(), bodies(to_b)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu = nchan.cpu_seconds();
    let started = Instant::now();
    let mut latency = RoundTrips::default();
    let mut stale = 0u64;
    for i in 0..rounds {
        let (channel, arrivals) = if i % 2 == 0 { ("pb", &mut at_b) } else { ("pa", &mut at_a) };
        let sent = Instant::now();
        let body = format!("m{i}");
        publish(&publisher, channel, body.clone()).await?;
        // Only this round's message counts: a subscriber may be handed an older one again.
        loop {
            let (got, at, on_socket) =
                tokio::time::timeout(Duration::from_secs(10), arrivals.recv()).await?.context("subscriber ended")?;
            if got == body {
                latency.record(sent, at, on_socket);
                break;
            }
            stale += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sa.abort();
    sb.abort();
    let mut m = BTreeMap::new();
    latency.add_to(&mut m);
    m.insert("round_trips_per_s".into(), rounds as f64 / elapsed);
    m.insert("server_cpu_s".into(), nchan.cpu_seconds() - cpu);
    m.insert("stale_messages_skipped".into(), stale as f64);
    Ok(report("pingpong", &[("messages", rounds.to_string())], m))
}

/// `members` subscribers of one channel; `messages` published at `rate` (or back to back).
pub async fn fanout(nchan: &PubSub, members: usize, messages: usize, rate: Option<f64>) -> anyhow::Result<Report> {
    let api = Api::new(&nchan.base);
    let stop = Arc::new(AtomicBool::new(false));
    let arrivals = Arc::new(Fanout::new(messages, members, Instant::now()));
    let mut subs = JoinSet::new();
    for api in crate::scenarios::members_clients(&api, members, rate).await? {
        let arrivals = arrivals.clone();
        // Message `i` (its body) is the channel's `i + 1`th.
        let arrived = move |body: &[u8], at, on_socket| {
            if let Some(i) = std::str::from_utf8(body).ok().and_then(|b| b.parse::<i64>().ok()) {
                arrivals.arrived(i + 1, at, on_socket);
            }
        };
        subs.spawn(subscribe(api, "fan".into(), stop.clone(), arrived));
    }
    tokio::time::sleep(Duration::from_millis(500 + members as u64)).await;
    crate::scenarios::until_quiet(|| nchan.cpu_seconds() + crate::scenarios::own_cpu_seconds()).await;
    let publisher_api = api.dedicated().await?;
    let epoch = Instant::now();
    let cpu = nchan.cpu_seconds();
    let mut sent_at = vec![epoch; messages];
    let publisher = {
        let api = publisher_api;
        let (times_tx, times_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut times = Vec::with_capacity(messages);
            let mut pacing = Pacing::new(rate);
            for i in 0..messages {
                let now = Instant::now();
                pacing.sending(now);
                times.push(now);
                publish(&api, "fan", format!("{i}")).await?;
                pacing.pause(i + 1).await;
            }
            let _ = times_tx.send(times);
            anyhow::Ok(())
        });
        (task, times_rx)
    };
    arrivals.all_arrived(Duration::from_secs(10)).await;
    let elapsed = epoch.elapsed().as_secs_f64();
    let cpu = nchan.cpu_seconds() - cpu;
    publisher.0.await??;
    if let Ok(times) = publisher.1.await {
        sent_at = times;
    }
    stop.store(true, Ordering::Relaxed);
    subs.abort_all();
    let sent_us: Vec<u64> = sent_at.iter().map(|t| t.duration_since(arrivals.epoch()).as_micros() as u64).collect();
    let deliveries = arrivals.deliveries();
    let mut m = BTreeMap::new();
    m.insert("deliveries".into(), deliveries as f64);
    m.insert("deliveries_per_s".into(), deliveries as f64 / elapsed);
    m.insert("lost".into(), (messages * members) as f64 - deliveries as f64);
    m.insert("server_cpu_s".into(), cpu);
    arrivals.add_last_member_latencies(&sent_us, &mut m);
    let params = [
        ("members", members.to_string()),
        ("messages", messages.to_string()),
        ("rate", rate.map_or("max".into(), |r| r.to_string())),
    ];
    Ok(report("fanout", &params, m))
}

/// What one subscriber of [`direct`] saw: publishers number their messages from 0, one
/// publisher per channel, so anything but the next number is a gap or a repeat.
#[derive(Default)]
struct DirectSeen {
    latency: Latencies,
    received: u64,
    duplicated: u64,
    gaps: u64,
    next: u64,
}

/// webim's `direct` without the storing: `pairs` pairs of subscribers, each on a channel of
/// its own, and one publisher per subscriber publishing to its peer's channel as fast as the
/// publishes return, for `seconds`.
pub async fn direct(nchan: &PubSub, pairs: usize, seconds: f64) -> anyhow::Result<Report> {
    let api = Api::new(&nchan.base);
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let devices = pairs * 2;
    let seen: Vec<Arc<std::sync::Mutex<DirectSeen>>> = (0..devices).map(|_| Arc::default()).collect();
    let mut subs = JoinSet::new();
    for (i, api) in api.dedicated_many(devices).await?.into_iter().enumerate() {
        let seen = seen[i].clone();
        let arrived = move |body: &[u8], at: Instant, _on_socket: Option<Instant>| {
            let Some((n, sent_us)) = std::str::from_utf8(body).ok().and_then(|b| b.split_once(' ')) else { return };
            let (Ok(n), Ok(sent_us)) = (n.parse::<u64>(), sent_us.parse::<u64>()) else { return };
            let mut s = seen.lock().expect("one subscriber");
            if n < s.next {
                s.duplicated += 1;
                return;
            }
            s.gaps += n - s.next;
            s.next = n + 1;
            s.received += 1;
            let at_us = at.duration_since(epoch).as_micros() as u64;
            s.latency.record(Duration::from_micros(at_us.saturating_sub(sent_us)));
        };
        subs.spawn(subscribe(api, format!("d{i}"), stop.clone(), arrived));
    }
    tokio::time::sleep(Duration::from_millis(500 + devices as u64 / 2)).await;
    crate::scenarios::until_quiet(|| nchan.cpu_seconds() + crate::scenarios::own_cpu_seconds()).await;
    let stop_publishing = Arc::new(AtomicBool::new(false));
    // Connected before the clock starts, as in webim's `direct`.
    let clients = api.dedicated_many(devices).await?;
    let cpu = nchan.cpu_seconds();
    let own_cpu = crate::scenarios::own_cpu_seconds();
    let started = Instant::now();
    let mut publishers = JoinSet::new();
    for (i, api) in clients.into_iter().enumerate() {
        // Device 2k publishes to 2k + 1 and the other way round.
        let (channel, stop) = (format!("d{}", i ^ 1), stop_publishing.clone());
        publishers.spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                publish(&api, &channel, format!("{n} {}", epoch.elapsed().as_micros())).await?;
                n += 1;
            }
            anyhow::Ok(n)
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop_publishing.store(true, Ordering::Relaxed);
    let mut sent = 0;
    while let Some(n) = publishers.join_next().await {
        sent += n??;
    }
    let send_elapsed = started.elapsed().as_secs_f64();
    let (cpu_sending, own_cpu_sending) = (nchan.cpu_seconds() - cpu, crate::scenarios::own_cpu_seconds() - own_cpu);
    // Let the last messages arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = nchan.cpu_seconds() - cpu;
    let own_cpu = crate::scenarios::own_cpu_seconds() - own_cpu;
    stop.store(true, Ordering::Relaxed);
    subs.abort_all();
    let mut all = DirectSeen::default();
    for s in &seen {
        let s = s.lock().expect("subscribers stopped");
        all.latency.merge(&s.latency);
        all.received += s.received;
        all.duplicated += s.duplicated;
        all.gaps += s.gaps;
    }
    let mut m = BTreeMap::new();
    m.insert("sent".into(), sent as f64);
    m.insert("delivered".into(), all.received as f64);
    m.insert("delivered_msgs_per_s".into(), all.received as f64 / send_elapsed);
    // Nchan keeps the last 64 messages of a channel: a subscriber further behind loses some
    // (the relay keeps them all).
    m.insert("lost".into(), sent.saturating_sub(all.received) as f64);
    m.insert("duplicated".into(), all.duplicated as f64);
    // Numbers a subscriber jumped over (already among the lost, unless they came later).
    m.insert("skipped".into(), all.gaps as f64);
    m.insert("server_cpu_s".into(), cpu);
    m.insert("generator_cpu_s".into(), own_cpu);
    crate::scenarios::insert_sending_shares(&mut m, send_elapsed, cpu_sending, own_cpu_sending);
    all.latency.add_to("latency", &mut m);
    let params = [("pairs", pairs.to_string()), ("seconds", seconds.to_string())];
    Ok(report("direct", &params, m))
}

/// `n` subscribers waiting on their own channels: memory per held poll and idle CPU.
pub async fn idle(nchan: &PubSub, n: usize, settle_s: f64) -> anyhow::Result<Report> {
    let api = Api::new(&nchan.base);
    crate::scenarios::until_quiet(|| nchan.cpu_seconds()).await;
    let before = nchan.rss_bytes();
    let stop = Arc::new(AtomicBool::new(false));
    let mut subs = JoinSet::new();
    for i in 0..n {
        subs.spawn(subscribe(api.clone(), format!("idle{i}"), stop.clone(), |_: &[u8], _, _| {}));
    }
    tokio::time::sleep(Duration::from_secs_f64(2.0 + n as f64 / 5000.0)).await;
    crate::scenarios::until_quiet(|| nchan.cpu_seconds() + crate::scenarios::own_cpu_seconds()).await;
    let held = nchan.rss_bytes();
    let cpu = nchan.cpu_seconds();
    tokio::time::sleep(Duration::from_secs_f64(settle_s)).await;
    let cpu = nchan.cpu_seconds() - cpu;
    stop.store(true, Ordering::Relaxed);
    subs.abort_all();
    let mut m = BTreeMap::new();
    m.insert("held_polls".into(), n as f64);
    m.insert("rss_before_mib".into(), before as f64 / 1048576.0);
    m.insert("rss_held_mib".into(), held as f64 / 1048576.0);
    m.insert("bytes_per_held_poll".into(), held.saturating_sub(before) as f64 / n.max(1) as f64);
    m.insert("idle_cpu_percent".into(), cpu / settle_s * 100.0);
    Ok(report("idle", &[("polls", n.to_string()), ("idle_seconds", settle_s.to_string())], m))
}
