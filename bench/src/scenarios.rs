//! The scenarios. Each simulated device holds one long poll and polls again at once with the
//! returned cursor; every received message is checked for loss, duplication and order
//! (per-conversation `seq`), and latency is read from the send time written in its body.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::arrivals::{Fanout, OnArrival, RoundTrips};
use crate::client::Api;
use crate::pacing::Pacing;
use crate::report::{Latencies, Report};
use crate::server::{Login, Seeded, Server};

/// Microseconds since the bench started: the clock written into message bodies.
fn now_us(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

/// A message this much older than its send is late: `direct` counts them per device, to
/// tell a stall of the whole run from one of a few connections.
const LATE: Duration = Duration::from_secs(1);

/// What one device saw.
#[derive(Default)]
pub struct Seen {
    /// Latency of each message from someone else.
    pub latency: Latencies,
    /// Messages from others.
    pub received: u64,
    /// Messages seen a second time (seq not above the last).
    pub duplicated: u64,
    /// Seqs skipped over.
    pub gaps: u64,
    /// Poll answers received.
    pub polls: u64,
    /// Events of any type received.
    pub events: u64,
    /// Messages that arrived more than [`LATE`] after they were sent.
    pub late: u64,
    /// Last seq per conversation.
    last: HashMap<String, i64>,
}

impl Seen {
    /// The last seq seen in `conversation` (0 before any).
    fn last_seq(&mut self, conversation: &str) -> &mut i64 {
        // Looked up by the borrowed id: a new key is made once per conversation.
        if !self.last.contains_key(conversation) {
            self.last.insert(conversation.to_owned(), 0);
        }
        self.last.get_mut(conversation).expect("just inserted")
    }
}

/// Devices whose first poll has been answered: then the server has read their catch-up.
#[derive(Default)]
struct Online(AtomicU64);

impl Online {
    /// Waits until `n` devices are online; fails after 30 s, as a run with catch-ups still
    /// in its window would measure them.
    async fn all(&self, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.0.load(Ordering::Relaxed) < n as u64 {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n} devices had their first poll answered within 30 s",
                    self.0.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// Holds one device's message connection (`api`, a connection of its own) until `stop`;
/// tells `arrivals` (if given) of each message from others with its arrival time, and
/// `online` of its first answer.
async fn hold(
    api: Api,
    login: Login,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    arrivals: Option<Arc<dyn OnArrival>>,
    online: Arc<Online>,
) -> anyhow::Result<Seen> {
    let mut cursor = login.cursor.clone();
    let mut seen = Seen::default();
    while !stop.load(Ordering::Relaxed) {
        let answer = api.poll(&login.token, &cursor, 2).await?;
        if seen.polls == 0 {
            online.0.fetch_add(1, Ordering::Relaxed);
        }
        let at = Instant::now();
        let on_socket = answer.arrived();
        let polled = answer.parse()?;
        cursor.clear();
        cursor.push_str(&polled.cursor);
        seen.polls += 1;
        seen.events += polled.events.len() as u64;
        for e in polled.events {
            let Some(m) = e.message.filter(|_| e.kind == "message.new") else { continue };
            let last = seen.last_seq(&m.conversation_id);
            let before = *last;
            if m.seq <= before {
                seen.duplicated += 1;
                continue;
            }
            *last = m.seq;
            seen.gaps += (m.seq - before - 1) as u64;
            if m.sender_id == login.user_id {
                continue;
            }
            seen.received += 1;
            if let Some(sent) = m.body.strip_prefix('t').and_then(|t| t.parse::<u64>().ok()) {
                let latency = Duration::from_micros(now_us(epoch).saturating_sub(sent));
                seen.latency.record(latency);
                seen.late += u64::from(latency > LATE);
            }
            if let Some(arrivals) = &arrivals {
                arrivals.arrived(m.seq, at, on_socket);
            }
        }
    }
    Ok(seen)
}

/// How busy each side was while the senders were sending (the run's CPU totals also count
/// the seconds after, while the last messages arrive): a share near 1 is the limit.
pub fn insert_sending_shares(m: &mut BTreeMap<String, f64>, sending_s: f64, server_cpu_s: f64, generator_cpu_s: f64) {
    m.insert("sending_s".into(), sending_s);
    m.insert("server_busy_while_sending".into(), server_cpu_s / sending_s);
    m.insert("generator_busy_while_sending".into(), generator_cpu_s / sending_s);
}

/// The generator's own CPU seconds so far: it shares the machine, and when it is saturated
/// its queueing is in the figures.
pub fn own_cpu_seconds() -> f64 {
    crate::server::cpu_seconds(std::process::id()).unwrap_or(f64::NAN)
}

fn report(name: &str, params: &[(&str, String)], metrics: BTreeMap<String, f64>) -> Report {
    Report { scenario: name.into(), params: params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(), metrics }
}

/// One pair; each message goes one way, then the answer the other way, one at a time.
pub async fn pingpong(api: &Api, server: &Server, seeded: &Seeded, rounds: usize) -> anyhow::Result<Report> {
    let [a, b] = seeded.pairs.first().context("pingpong needs a seeded pair")?.clone();
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (to_a, mut at_a) = mpsc::unbounded_channel();
    let (to_b, mut at_b) = mpsc::unbounded_channel();
    let [poll_a, poll_b]: [Api; 2] =
        api.stamped_many(2).await?.try_into().map_err(|_| anyhow::anyhow!("two clients"))?;
    let api = api.dedicated().await?;
    let online = Arc::new(Online::default());
    let ha = tokio::spawn(hold(poll_a, a.clone(), epoch, stop.clone(), Some(Arc::new(to_a)), online.clone()));
    let hb = tokio::spawn(hold(poll_b, b.clone(), epoch, stop.clone(), Some(Arc::new(to_b)), online.clone()));
    online.all(2).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cpu = server.cpu_seconds();
    let started = Instant::now();
    let mut latency = RoundTrips::default();
    for i in 0..rounds {
        let (from, to, arrivals) = if i % 2 == 0 { (&a, &b, &mut at_b) } else { (&b, &a, &mut at_a) };
        let sent = Instant::now();
        api.send(
            &from.token,
            &format!(r#"{{"user":{}}}"#, to.user_id),
            &format!("pp{i}"),
            &format!("t{}", now_us(epoch)),
        )
        .await?;
        let (at, on_socket) =
            tokio::time::timeout(Duration::from_secs(10), arrivals.recv()).await?.context("receiver ended")?;
        latency.record(sent, at, on_socket);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds() - cpu;
    stop.store(true, Ordering::Relaxed);
    let (sa, sb) = (ha.await??, hb.await??);
    let mut m = BTreeMap::new();
    latency.add_to(&mut m);
    m.insert("round_trips_per_s".into(), rounds as f64 / elapsed);
    m.insert("server_cpu_s".into(), cpu);
    m.insert("lost".into(), (sa.gaps + sb.gaps) as f64);
    m.insert("duplicated".into(), (sa.duplicated + sb.duplicated) as f64);
    Ok(report("pingpong", &[("messages", rounds.to_string())], m))
}

/// Every seeded pair chats both ways at full speed (or `rate` messages/s per sender) for
/// `seconds`.
pub async fn direct(
    api: &Api,
    server: &Server,
    seeded: &Seeded,
    seconds: f64,
    rate: Option<f64>,
) -> anyhow::Result<Report> {
    let epoch = Instant::now();
    let stop_send = Arc::new(AtomicBool::new(false));
    let stop_poll = Arc::new(AtomicBool::new(false));
    let mut holders = JoinSet::new();
    let mut polls = api.dedicated_many(seeded.pairs.len() * 2).await?;
    let online = Arc::new(Online::default());
    for pair in &seeded.pairs {
        for login in pair {
            let api = polls.pop().expect("one client per device");
            holders.spawn(hold(api, login.clone(), epoch, stop_poll.clone(), None, online.clone()));
        }
    }
    // Every device online before the first send: a device whose first poll came only after
    // sending began made the server read its catch-up among the messages meanwhile.
    online.all(seeded.pairs.len() * 2).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut clients = api.dedicated_many(seeded.pairs.len() * 2).await?;
    let sent = Arc::new(AtomicU64::new(0));
    let cpu = server.cpu_seconds();
    let own_cpu = own_cpu_seconds();
    let started = Instant::now();
    let mut senders = JoinSet::new();
    let count = seeded.pairs.len() * 2;
    for (k, pair) in seeded.pairs.iter().enumerate() {
        for (j, (from, to)) in [(&pair[0], &pair[1]), (&pair[1], &pair[0])].into_iter().enumerate() {
            let api = clients.pop().expect("one client per sender");
            let (token, to, stop, sent) = (from.token.clone(), to.user_id, stop_send.clone(), sent.clone());
            // At a set rate, senders start spread over one interval, as people would, not
            // all in the same instant (which would measure a burst of `count` sends).
            let mut due = rate.map(|r| started + Duration::from_secs_f64((2 * k + j) as f64 / count as f64 / r));
            senders.spawn(async move {
                let target = format!(r#"{{"user":{to}}}"#);
                let mut i = 0u64;
                let mut round_trip = Latencies::default();
                while !stop.load(Ordering::Relaxed) {
                    if let (Some(at), Some(r)) = (due, rate) {
                        tokio::time::sleep_until(at.into()).await;
                        // A sender that fell behind goes on from now rather than catching up
                        // in a burst.
                        due = Some((at + Duration::from_secs_f64(1.0 / r)).max(Instant::now()));
                    }
                    let t = now_us(epoch);
                    api.send(&token, &target, &format!("d{i}"), &format!("t{t}")).await?;
                    round_trip.record(Duration::from_micros(now_us(epoch) - t));
                    sent.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                anyhow::Ok(round_trip)
            });
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop_send.store(true, Ordering::Relaxed);
    let mut send_round_trip = Latencies::default();
    while let Some(r) = senders.join_next().await {
        send_round_trip.merge(&r??);
    }
    let send_elapsed = started.elapsed().as_secs_f64();
    let (cpu_sending, own_cpu_sending) = (server.cpu_seconds() - cpu, own_cpu_seconds() - own_cpu);
    // Let the last messages arrive, then stop the polls.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = server.cpu_seconds() - cpu;
    let own_cpu = own_cpu_seconds() - own_cpu;
    stop_poll.store(true, Ordering::Relaxed);
    let mut all = Seen::default();
    let mut devices_late = 0u64;
    while let Some(r) = holders.join_next().await {
        let s = r??;
        all.latency.merge(&s.latency);
        all.received += s.received;
        all.duplicated += s.duplicated;
        all.gaps += s.gaps;
        all.polls += s.polls;
        all.events += s.events;
        all.late += s.late;
        devices_late += u64::from(s.late > 0);
    }
    let sent = sent.load(Ordering::Relaxed);
    let mut m = BTreeMap::new();
    m.insert("sent".into(), sent as f64);
    m.insert("delivered".into(), all.received as f64);
    m.insert("delivered_msgs_per_s".into(), all.received as f64 / send_elapsed);
    m.insert("lost".into(), sent.saturating_sub(all.received) as f64 + all.gaps as f64);
    m.insert("duplicated".into(), all.duplicated as f64);
    m.insert("server_cpu_s".into(), cpu);
    // How much polling each message cost: answers, and events of any kind (own echoes and
    // receipts included), per message delivered.
    m.insert("poll_answers_per_delivered".into(), all.polls as f64 / all.received.max(1) as f64);
    m.insert("events_per_delivered".into(), all.events as f64 / all.received.max(1) as f64);
    m.insert("generator_cpu_s".into(), own_cpu);
    insert_sending_shares(&mut m, send_elapsed, cpu_sending, own_cpu_sending);
    all.latency.add_to("latency", &mut m);
    m.insert("late_messages".into(), all.late as f64);
    m.insert("devices_with_late_messages".into(), devices_late as f64);
    // Send to 201: separates the server's commit path from delivery to the polls.
    send_round_trip.add_to("send_round_trip", &mut m);
    let params = [
        ("pairs", seeded.pairs.len().to_string()),
        ("seconds", seconds.to_string()),
        ("rate_per_sender", rate.map_or("max".into(), |r| r.to_string())),
    ];
    Ok(report("direct", &params, m))
}

/// The owner of the first seeded group sends `messages` at `rate` per second (or as fast as
/// the sends return); every member holds a poll. Latency is until the last member has it.
pub async fn fanout(
    api: &Api,
    server: &Server,
    seeded: &Seeded,
    messages: usize,
    rate: Option<f64>,
) -> anyhow::Result<Report> {
    let group = seeded.groups.first().context("fanout needs a seeded group")?.clone();
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let receivers = group.members.len() - 1;
    let arrivals = Arc::new(Fanout::new(messages, receivers, epoch));
    let mut holders = JoinSet::new();
    let mut polls = members_clients(api, receivers, rate).await?;
    let online = Arc::new(Online::default());
    for login in &group.members[1..] {
        let api = polls.pop().expect("one client per member");
        holders.spawn(hold(api, login.clone(), epoch, stop.clone(), Some(arrivals.clone()), online.clone()));
    }
    online.all(receivers).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let owner = group.members[0].clone();
    let owner_api = api.dedicated().await?;
    let cpu = server.cpu_seconds();
    let own_cpu = own_cpu_seconds();
    let started = Instant::now();
    let send_times = Arc::new(parking_send_times(messages));
    let sender = {
        let (api, send_times) = (owner_api, send_times.clone());
        let target = format!(r#"{{"group":{}}}"#, group.id);
        tokio::spawn(async move {
            let mut pacing = Pacing::new(rate);
            for i in 0..messages {
                pacing.sending(Instant::now());
                let t = now_us(epoch);
                send_times[i].store(t, Ordering::Relaxed);
                api.send(&owner.token, &target, &format!("f{i}"), &format!("t{t}")).await?;
                pacing.pause(i + 1).await;
            }
            anyhow::Ok(())
        })
    };
    arrivals.all_arrived(Duration::from_secs(10)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let sent_us: Vec<u64> = send_times.iter().map(|t| t.load(Ordering::Relaxed)).collect();
    let complete = arrivals.complete();
    let cpu = server.cpu_seconds() - cpu;
    let own_cpu = own_cpu_seconds() - own_cpu;
    sender.await??;
    stop.store(true, Ordering::Relaxed);
    let mut all = Seen::default();
    while let Some(r) = holders.join_next().await {
        let s = r??;
        all.received += s.received;
        all.duplicated += s.duplicated;
        all.gaps += s.gaps;
    }
    if complete < messages {
        bail!("only {complete} of {messages} messages reached every member");
    }
    let mut m = BTreeMap::new();
    m.insert("deliveries".into(), all.received as f64);
    m.insert("deliveries_per_s".into(), all.received as f64 / elapsed);
    m.insert("lost".into(), (messages * receivers) as f64 - all.received as f64 + all.gaps as f64);
    m.insert("duplicated".into(), all.duplicated as f64);
    m.insert("server_cpu_s".into(), cpu);
    // Per delivery, to tell the server's cost from the generator's: at full speed both
    // cores may be busy, and then the figure above is the slower side's.
    m.insert("server_cpu_us_per_delivery".into(), cpu * 1e6 / all.received.max(1) as f64);
    m.insert("generator_cpu_s".into(), own_cpu);
    arrivals.add_last_member_latencies(&sent_us, &mut m);
    let params = [
        ("members", group.members.len().to_string()),
        ("messages", messages.to_string()),
        ("rate", rate.map_or("max".into(), |r| r.to_string())),
    ];
    Ok(report("fanout", &params, m))
}

/// The members' clients of a fan-out. At a set rate, where the figure is the last member's
/// wait, they are stamped: their answers' arrival at the socket is known. At full speed,
/// where the figure is deliveries per second and the generator near its limit, they are
/// not: stamped reads cost it (BENCHMARKS.md, nineteenth measurement).
pub async fn members_clients(api: &Api, n: usize, rate: Option<f64>) -> anyhow::Result<Vec<Api>> {
    match rate {
        Some(_) => api.stamped_many(n).await,
        None => api.dedicated_many(n).await,
    }
}

fn parking_send_times(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// Waits (at most 30 s) until `cpu_seconds` has not grown for half a second, so that memory
/// is read once a start or a burst of connections is over. Read after a fixed wait only,
/// on a slow machine it was read before most of 15,000 polls had arrived (2.8 KB per poll,
/// with the server busy for seconds afterwards).
pub async fn until_quiet(cpu_seconds: impl Fn() -> f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = cpu_seconds();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = cpu_seconds();
        // /proc counts in 10-ms ticks: one tick in half a second is quiet.
        if now - last <= 0.011 {
            return;
        }
        last = now;
    }
}

/// Holds one poll for every seeded idle user; measures server memory per held poll and CPU
/// while they wait.
pub async fn idle(api: &Api, server: &Server, seeded: &Seeded, settle_s: f64) -> anyhow::Result<Report> {
    until_quiet(|| server.cpu_seconds()).await;
    let before = server.rss_bytes();
    let n = seeded.idle.len();
    let mut polls = JoinSet::new();
    for login in seeded.idle.clone() {
        let api = api.clone();
        polls.spawn(async move { api.poll(&login.token, &login.cursor, 90).await.map(|_| ()) });
    }
    // Wait until every poll is on the wire and held.
    tokio::time::sleep(Duration::from_secs_f64(2.0 + n as f64 / 5000.0)).await;
    // Quiet on both sides: the generator's too, or polls not yet written would be missed.
    until_quiet(|| server.cpu_seconds() + own_cpu_seconds()).await;
    let held = server.rss_bytes();
    let cpu = server.cpu_seconds();
    tokio::time::sleep(Duration::from_secs_f64(settle_s)).await;
    let cpu = server.cpu_seconds() - cpu;
    let answered_early = polls.len() < n || polls.try_join_next().is_some();
    polls.abort_all();
    let mut m = BTreeMap::new();
    m.insert("held_polls".into(), n as f64);
    m.insert("rss_before_mib".into(), before as f64 / 1048576.0);
    m.insert("rss_held_mib".into(), held as f64 / 1048576.0);
    m.insert("bytes_per_held_poll".into(), held.saturating_sub(before) as f64 / n.max(1) as f64);
    m.insert("idle_cpu_percent".into(), cpu / settle_s * 100.0);
    m.insert("answered_early".into(), if answered_early { 1.0 } else { 0.0 });
    Ok(report("idle", &[("polls", n.to_string()), ("idle_seconds", settle_s.to_string())], m))
}

/// `senders` friends send to their pair as fast as each 201 returns; nobody polls.
pub async fn send(api: &Api, server: &Server, seeded: &Seeded, senders: usize, seconds: f64) -> anyhow::Result<Report> {
    if seeded.pairs.len() < senders {
        bail!("send needs {senders} seeded pairs");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stored = Arc::new(AtomicU64::new(0));
    let mut clients = api.dedicated_many(senders).await?;
    let cpu = server.cpu_seconds();
    let own_cpu = own_cpu_seconds();
    let rss = server.rss_bytes();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (k, pair) in seeded.pairs.iter().take(senders).enumerate() {
        let api = clients.pop().expect("one client per sender");
        let (token, to, stop, stored) = (pair[0].token.clone(), pair[1].user_id, stop.clone(), stored.clone());
        tasks.spawn(async move {
            let target = format!(r#"{{"user":{to}}}"#);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                api.send(&token, &target, &format!("s{k}-{i}"), "payload of a typical short chat message").await?;
                stored.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            anyhow::Ok(())
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut m = BTreeMap::new();
    let stored = stored.load(Ordering::Relaxed);
    m.insert("stored".into(), stored as f64);
    m.insert("durable_msgs_per_s".into(), stored as f64 / elapsed);
    m.insert("server_cpu_s".into(), server.cpu_seconds() - cpu);
    m.insert("generator_cpu_s".into(), own_cpu_seconds() - own_cpu);
    m.insert("rss_growth_mib".into(), (server.rss_bytes() as f64 - rss as f64) / 1048576.0);
    Ok(report("send", &[("senders", senders.to_string()), ("seconds", seconds.to_string())], m))
}

/// Every device comes back at once (a restart, a network cut) after `backlog` messages were
/// sent while none of them polled: 64 senders store the backlog, each to their pair, then each
/// device polls once from its first cursor without waiting. Measures the server CPU per
/// catch-up and how long the answers took; fails unless each device got exactly what others
/// sent it (or a first page of it), from seq 1 in order.
pub async fn catchup(api: &Api, server: &Server, seeded: &Seeded, backlog: usize) -> anyhow::Result<Report> {
    const SENDERS: usize = 64;
    let senders = SENDERS.min(seeded.pairs.len());
    if senders == 0 {
        bail!("catchup needs seeded pairs");
    }
    let mut clients = api.dedicated_many(senders).await?;
    let mut tasks = JoinSet::new();
    for (k, pair) in seeded.pairs.iter().take(senders).enumerate() {
        let api = clients.pop().expect("one client per sender");
        let (token, to) = (pair[0].token.clone(), pair[1].user_id);
        let count = share(backlog, senders, k);
        tasks.spawn(async move {
            let target = format!(r#"{{"user":{to}}}"#);
            for i in 0..count {
                api.send(&token, &target, &format!("c{k}-{i}"), "payload of a typical short chat message").await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    drop(clients);
    until_quiet(|| server.cpu_seconds() + own_cpu_seconds()).await;
    // Each device with the number of messages others sent it.
    let devices: Vec<(usize, Login)> = seeded
        .pairs
        .iter()
        .enumerate()
        .flat_map(|(k, pair)| {
            let got = if k < senders { share(backlog, senders, k) } else { 0 };
            [(0, pair[0].clone()), (got, pair[1].clone())]
        })
        .collect();
    let mut clients = api.dedicated_many(devices.len()).await?;
    let cpu = server.cpu_seconds();
    let started = Instant::now();
    let mut polls = JoinSet::new();
    for (sent, login) in devices.clone() {
        let api = clients.pop().expect("one client per device");
        polls.spawn(async move {
            let answer = api.poll(&login.token, &login.cursor, 0).await?;
            let took = started.elapsed();
            let polled = answer.parse()?;
            let got: Vec<(&str, i64)> = polled
                .events
                .iter()
                .filter_map(|e| e.message.as_ref().filter(|m| e.kind == "message.new" && m.sender_id != login.user_id))
                .map(|m| (&*m.conversation_id, m.seq))
                .collect();
            // The first page of the one conversation, from its first message, with no gap;
            // all of it unless the answer says there is more.
            let in_order = got.iter().enumerate().all(|(i, (conv, seq))| *conv == got[0].0 && *seq == i as i64 + 1);
            let whole =
                if polled.more { got.len() <= sent && (sent == 0 || !got.is_empty()) } else { got.len() == sent };
            anyhow::Ok((took, in_order && whole))
        });
    }
    let mut took = Latencies::default();
    let mut wrong = 0u64;
    while let Some(r) = polls.join_next().await {
        let (t, right) = r??;
        took.record(t);
        wrong += u64::from(!right);
    }
    if wrong > 0 {
        bail!("{wrong} of {} returning devices did not get what was sent to them, from seq 1 in order", devices.len());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_answering = server.cpu_seconds() - cpu;
    // What the answers set off (presence to friends) is part of coming back.
    until_quiet(|| server.cpu_seconds() + own_cpu_seconds()).await;
    let cpu = server.cpu_seconds() - cpu;
    let mut m = BTreeMap::new();
    let n = devices.len() as f64;
    m.insert("devices".into(), n);
    m.insert("all_answered_s".into(), elapsed);
    m.insert("server_cpu_answering_s".into(), cpu_answering);
    m.insert("server_cpu_s".into(), cpu);
    m.insert("server_cpu_us_per_device".into(), cpu / n * 1e6);
    took.add_to("answered", &mut m);
    Ok(report("catchup", &[("devices", devices.len().to_string()), ("backlog", backlog.to_string())], m))
}

/// Sender `k`'s part of `total` messages shared among `senders`.
fn share(total: usize, senders: usize, k: usize) -> usize {
    total / senders + usize::from(k < total % senders)
}

/// `GET /health` from `connections` loops: the ceiling of this machine and client.
pub async fn baseline(api: &Api, server: &Server, connections: usize, seconds: f64) -> anyhow::Result<Report> {
    baseline_with(api, || server.cpu_seconds(), connections, seconds).await
}

/// [`baseline`] against any server whose CPU time `cpu_seconds` reads.
pub async fn baseline_with(
    api: &Api,
    cpu_seconds: impl Fn() -> f64,
    connections: usize,
    seconds: f64,
) -> anyhow::Result<Report> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = api.dedicated_many(connections).await?;
    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        let (api, stop) = (clients.pop().expect("one client per loop"), stop.clone());
        tasks.spawn(async move {
            let mut lat = Latencies::default();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                api.health().await?;
                lat.record(t.elapsed());
            }
            anyhow::Ok(lat)
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Latencies::default();
    while let Some(r) = tasks.join_next().await {
        all.merge(&r??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut m = BTreeMap::new();
    m.insert("requests_per_s".into(), all.count() as f64 / elapsed);
    m.insert("server_cpu_s".into(), cpu_seconds() - cpu);
    all.add_to("latency", &mut m);
    Ok(report("baseline", &[("connections", connections.to_string()), ("seconds", seconds.to_string())], m))
}
