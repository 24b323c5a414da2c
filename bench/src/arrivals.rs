//! Where each message reached its recipients, counted by the receiving devices themselves.
//! A fan-out to 1,000 members is 1,000 arrivals per message; counted in place, none of them
//! is a channel message to the scenario's loop, as each was before.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify};

use crate::report::Latencies;

/// Told of every message a device receives from someone else.
pub trait OnArrival: Send + Sync {
    /// Message `seq` of its conversation was read by the generator at `at`, having reached
    /// the device's socket at `on_socket` (when the kernel stamped it).
    fn arrived(&self, seq: i64, at: Instant, on_socket: Option<Instant>);
}

/// Each arrival's times, in order (ping-pong waits for one message at a time).
impl OnArrival for mpsc::UnboundedSender<(Instant, Option<Instant>)> {
    fn arrived(&self, _seq: i64, at: Instant, on_socket: Option<Instant>) {
        let _ = self.send((at, on_socket));
    }
}

/// The latency of each round as the generator read it, and at the receiving socket.
#[derive(Default)]
pub struct RoundTrips {
    read: Latencies,
    on_socket: Latencies,
    unstamped: u64,
}

impl RoundTrips {
    /// A message sent at `sent` that arrived at `on_socket` and was read at `at`.
    pub fn record(&mut self, sent: Instant, at: Instant, on_socket: Option<Instant>) {
        self.read.record(at - sent);
        match on_socket {
            Some(t) => self.on_socket.record(t.saturating_duration_since(sent)),
            None => self.unstamped += 1,
        }
    }

    /// `latency_*` as read, `latency_on_socket_*` unless a round had no receive time, and
    /// how many had none (`rounds_without_receive_time`).
    pub fn add_to(&self, m: &mut BTreeMap<String, f64>) {
        self.read.add_to("latency", m);
        if self.unstamped == 0 {
            self.on_socket.add_to("latency_on_socket", m);
        }
        m.insert("rounds_without_receive_time".into(), self.unstamped as f64);
    }
}

/// Messages `1..=messages` of one conversation, each expected at `members` devices.
pub struct Fanout {
    epoch: Instant,
    members: usize,
    counts: Vec<AtomicUsize>,
    /// Microseconds after `epoch` of the latest arrival so far, as the generator read it.
    latest_us: Vec<AtomicU64>,
    /// The same by the sockets' receive times, of the arrivals that had one.
    latest_on_socket_us: Vec<AtomicU64>,
    /// Arrivals without a receive time, in the whole run: one of them makes every message's
    /// socket figure unknown, since its arrival may have been the last.
    unstamped: AtomicUsize,
    complete: AtomicUsize,
    done: Notify,
}

impl Fanout {
    /// Expects `messages` messages at `members` devices each; times count from `epoch`.
    pub fn new(messages: usize, members: usize, epoch: Instant) -> Self {
        Fanout {
            epoch,
            members,
            counts: (0..messages).map(|_| AtomicUsize::new(0)).collect(),
            latest_us: (0..messages).map(|_| AtomicU64::new(0)).collect(),
            latest_on_socket_us: (0..messages).map(|_| AtomicU64::new(0)).collect(),
            unstamped: AtomicUsize::new(0),
            complete: AtomicUsize::new(0),
            done: Notify::new(),
        }
    }

    /// Waits until every message has reached every member; gives up (false) once `stall`
    /// passes with no arrival at all.
    pub async fn all_arrived(&self, stall: Duration) -> bool {
        let mut seen = self.deliveries();
        loop {
            let notified = self.done.notified();
            if self.complete.load(Ordering::Acquire) == self.counts.len() {
                return true;
            }
            if tokio::time::timeout(stall, notified).await.is_err() {
                let now = self.deliveries();
                if now == seen {
                    return false;
                }
                seen = now;
            }
        }
    }

    /// When message `seq` had reached every member (microseconds after the epoch), if it has.
    pub fn last_member_us(&self, seq: i64) -> Option<u64> {
        let i = usize::try_from(seq - 1).ok()?;
        (self.counts.get(i)?.load(Ordering::Acquire) >= self.members).then(|| self.latest_us[i].load(Ordering::Acquire))
    }

    /// When message `seq` had reached every member's socket, if it has, and if every arrival
    /// of the run (of any message) had a receive time.
    pub fn last_member_on_socket_us(&self, seq: i64) -> Option<u64> {
        if self.unstamped.load(Ordering::Acquire) > 0 {
            return None;
        }
        let i = usize::try_from(seq - 1).ok()?;
        (self.counts.get(i)?.load(Ordering::Acquire) >= self.members)
            .then(|| self.latest_on_socket_us[i].load(Ordering::Acquire))
    }

    /// Adds, for every message that reached every member, the wait from its send (`sent_us[i]`
    /// for seq `i + 1`, microseconds after the epoch) until the last member had it: as the
    /// generator read it (`last_member_latency`), and at the sockets
    /// (`last_member_on_socket_latency`, only if every arrival of the run had a receive time;
    /// where any had one, `arrivals_without_receive_time` says how many had none).
    pub fn add_last_member_latencies(&self, sent_us: &[u64], m: &mut BTreeMap<String, f64>) {
        let (mut read, mut on_socket) = (Latencies::default(), Latencies::default());
        for (i, &sent) in sent_us.iter().enumerate() {
            let seq = i as i64 + 1;
            if let Some(at) = self.last_member_us(seq) {
                read.record(Duration::from_micros(at.saturating_sub(sent)));
            }
            if let Some(at) = self.last_member_on_socket_us(seq) {
                on_socket.record(Duration::from_micros(at.saturating_sub(sent)));
            }
        }
        read.add_to("last_member_latency", m);
        on_socket.add_to("last_member_on_socket_latency", m);
        let unstamped = self.unstamped.load(Ordering::Acquire) as u64;
        // Unstamped clients (a full-speed fan-out) have none at all: nothing was missed.
        if unstamped < self.deliveries() {
            m.insert("arrivals_without_receive_time".into(), unstamped as f64);
        }
    }

    /// How many messages reached every member.
    pub fn complete(&self) -> usize {
        self.complete.load(Ordering::Acquire)
    }

    /// Arrivals counted, repeats included.
    pub fn deliveries(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Acquire) as u64).sum()
    }

    /// The instant arrival times count from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }
}

impl OnArrival for Fanout {
    fn arrived(&self, seq: i64, at: Instant, on_socket: Option<Instant>) {
        let Some(i) = usize::try_from(seq - 1).ok().filter(|&i| i < self.counts.len()) else { return };
        // The times first, then the count: whoever sees the count complete sees the times.
        self.latest_us[i].fetch_max(at.duration_since(self.epoch).as_micros() as u64, Ordering::AcqRel);
        match on_socket {
            Some(t) => {
                // Stamped before the epoch cannot be a message of this run's; saturates to 0.
                let us = t.saturating_duration_since(self.epoch).as_micros() as u64;
                self.latest_on_socket_us[i].fetch_max(us, Ordering::AcqRel);
            }
            None => {
                self.unstamped.fetch_add(1, Ordering::AcqRel);
            }
        }
        if self.counts[i].fetch_add(1, Ordering::AcqRel) + 1 == self.members
            && self.complete.fetch_add(1, Ordering::AcqRel) + 1 == self.counts.len()
        {
            self.done.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_message_is_complete_once_every_member_has_it_at_the_latest_arrival() {
        let epoch = Instant::now();
        let f = Fanout::new(2, 3, epoch);
        let at = |ms| epoch + Duration::from_millis(ms);
        // Read later than it reached the socket, each by a different delay.
        f.arrived(1, at(5), Some(at(4)));
        f.arrived(1, at(9), Some(at(2)));
        assert_eq!((f.last_member_us(1), f.last_member_on_socket_us(1)), (None, None));
        f.arrived(1, at(7), Some(at(6)));
        assert_eq!(f.last_member_us(1), Some(9_000));
        assert_eq!(f.last_member_on_socket_us(1), Some(6_000), "the latest socket arrival, not the latest read");
        assert!(!f.all_arrived(Duration::from_millis(10)).await);
        // Out-of-range seqs (another conversation's) are not counted.
        f.arrived(3, at(1), None);
        f.arrived(0, at(1), None);
        assert_eq!(f.last_member_on_socket_us(1), Some(6_000), "uncounted arrivals change nothing");
        for ms in [2, 3, 4] {
            f.arrived(2, at(ms), Some(at(1)));
        }
        assert!(f.all_arrived(Duration::from_millis(10)).await);
        assert_eq!((f.complete(), f.last_member_us(2)), (2, Some(4_000)));
    }

    #[test]
    fn a_round_counts_from_its_send_to_the_socket_and_to_the_read() {
        let sent = Instant::now();
        let mut rounds = RoundTrips::default();
        rounds.record(sent, sent + Duration::from_millis(3), Some(sent + Duration::from_millis(1)));
        let mut m = BTreeMap::new();
        rounds.add_to(&mut m);
        assert_eq!((m["latency_p50_ms"], m["latency_on_socket_p50_ms"]), (3.0, 1.0));
        rounds.record(sent, sent + Duration::from_millis(2), None);
        let mut m = BTreeMap::new();
        rounds.add_to(&mut m);
        assert!(m.contains_key("latency_p50_ms"));
        assert!(!m.contains_key("latency_on_socket_p50_ms"), "not from some of the rounds only");
        assert_eq!(m["rounds_without_receive_time"], 1.0);
    }

    #[test]
    fn one_arrival_without_a_receive_time_gives_no_socket_figure() {
        let epoch = Instant::now();
        let f = Fanout::new(1, 2, epoch);
        f.arrived(1, epoch + Duration::from_millis(3), Some(epoch + Duration::from_millis(1)));
        f.arrived(1, epoch + Duration::from_millis(4), None);
        assert_eq!(f.last_member_us(1), Some(4_000));
        assert_eq!(f.last_member_on_socket_us(1), None, "half a figure would understate the wait");
        let mut m = BTreeMap::new();
        f.add_last_member_latencies(&[0], &mut m);
        assert_eq!(m["last_member_latency_p50_ms"], 4.0);
        assert!(!m.contains_key("last_member_on_socket_latency_p50_ms"));
        assert_eq!(m["arrivals_without_receive_time"], 1.0, "the figure's absence is explained");

        // Clients that were never stamped: no socket figure, and nothing said missing.
        let unstamped = Fanout::new(1, 1, epoch);
        unstamped.arrived(1, epoch + Duration::from_millis(2), None);
        let mut m = BTreeMap::new();
        unstamped.add_last_member_latencies(&[0], &mut m);
        assert!(!m.contains_key("last_member_on_socket_latency_p50_ms"));
        assert!(!m.contains_key("arrivals_without_receive_time"));
    }
}
