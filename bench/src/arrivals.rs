//! Where each message reached its recipients, counted by the receiving devices themselves.
//! A fan-out to 1,000 members is 1,000 arrivals per message; counted in place, none of them
//! is a channel message to the scenario's loop, as each was before.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify};

/// Told of every message a device receives from someone else.
pub trait OnArrival: Send + Sync {
    /// Message `seq` of its conversation arrived at `at`.
    fn arrived(&self, seq: i64, at: Instant);
}

/// Each arrival's time, in order (ping-pong waits for one message at a time).
impl OnArrival for mpsc::UnboundedSender<Instant> {
    fn arrived(&self, _seq: i64, at: Instant) {
        let _ = self.send(at);
    }
}

/// Messages `1..=messages` of one conversation, each expected at `members` devices.
pub struct Fanout {
    epoch: Instant,
    members: usize,
    counts: Vec<AtomicUsize>,
    /// Microseconds after `epoch` of the latest arrival so far.
    latest_us: Vec<AtomicU64>,
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
    fn arrived(&self, seq: i64, at: Instant) {
        let Some(i) = usize::try_from(seq - 1).ok().filter(|&i| i < self.counts.len()) else { return };
        // The time first, then the count: whoever sees the count complete sees the time.
        self.latest_us[i].fetch_max(at.duration_since(self.epoch).as_micros() as u64, Ordering::AcqRel);
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
        f.arrived(1, at(5));
        f.arrived(1, at(9));
        assert_eq!(f.last_member_us(1), None);
        f.arrived(1, at(7));
        assert_eq!(f.last_member_us(1), Some(9_000));
        assert!(!f.all_arrived(Duration::from_millis(10)).await);
        // Out-of-range seqs (another conversation's) are not counted.
        f.arrived(3, at(1));
        f.arrived(0, at(1));
        for ms in [2, 3, 4] {
            f.arrived(2, at(ms));
        }
        assert!(f.all_arrived(Duration::from_millis(10)).await);
        assert_eq!((f.complete(), f.last_member_us(2)), (2, Some(4_000)));
    }
}
