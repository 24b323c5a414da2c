//! A sender's pace at a set rate, counted from its own first send.

use std::time::{Duration, Instant};

/// Spaces one sender's messages `1 / rate` seconds apart, from the moment the first went out
/// (or back to back without a rate). Counted from anything earlier, such as the start of a
/// scenario before its receivers connected, the first messages would go out back to back
/// to catch up, and a run "at 20 msg/s" would begin with a burst.
pub struct Pacing {
    rate: Option<f64>,
    first: Option<Instant>,
}

impl Pacing {
    /// A pace of `rate` messages per second, or none.
    pub fn new(rate: Option<f64>) -> Self {
        Pacing { rate, first: None }
    }

    /// Notes that a send starts `now`; the first one sets the origin.
    pub fn sending(&mut self, now: Instant) {
        self.first.get_or_insert(now);
    }

    /// How long to wait at `now`, once `sent` messages went out, before the next one is due.
    pub fn delay(&self, sent: usize, now: Instant) -> Duration {
        match (self.rate, self.first) {
            (Some(r), Some(first)) => (first + Duration::from_secs_f64(sent as f64 / r)).saturating_duration_since(now),
            _ => Duration::ZERO,
        }
    }

    /// Waits until the next send is due, once `sent` messages went out; without a rate, or
    /// when behind, not at all (not even a timer's turn).
    pub async fn pause(&self, sent: usize) {
        let wait = self.delay(sent, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_counts_from_the_first_send_not_from_when_it_was_made() {
        let made = Instant::now();
        let mut pacing = Pacing::new(Some(20.0));
        let at = |ms| made + Duration::from_millis(ms);
        // The first send goes out 1.5 s after the pacing was made, and returns after 2 ms.
        pacing.sending(at(1_500));
        assert_eq!(pacing.delay(1, at(1_502)), Duration::from_millis(48));
        pacing.sending(at(1_550));
        assert_eq!(pacing.delay(2, at(1_551)), Duration::from_millis(49));
        // Behind: the next goes at once.
        assert_eq!(pacing.delay(3, at(1_700)), Duration::ZERO);
    }

    #[test]
    fn without_a_rate_sends_go_back_to_back() {
        let mut pacing = Pacing::new(None);
        let now = Instant::now();
        pacing.sending(now);
        assert_eq!(pacing.delay(1, now), Duration::ZERO);
    }
}
