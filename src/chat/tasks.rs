//! Background work owned by the service: presence expiry, saving acknowledged cursors and
//! delivery receipts, retention and memory trimming. Each task ends when shutdown begins.

use std::future::Future;
use std::time::Duration;

use super::Chat;
use crate::model::now_ms;

/// Least time between two writes of delivery receipts.
const RECEIPT_SPACING: Duration = Duration::from_millis(500);

/// How long an inactive user's inbox stays in memory.
const INBOX_IDLE: Duration = Duration::from_secs(600);

pub(super) fn spawn_all(chat: &Chat) {
    // Held polls answer as soon as shutdown begins (or whoever would begin it is gone).
    let (polls, mut shutdown) = (chat.clone(), chat.inner.shutdown.clone());
    tokio::spawn(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
        polls.end_all_polls();
    });
    every(chat, Duration::from_secs(1), |chat| async move {
        for user in chat.inner.presence.expire(chat.config().presence_grace) {
            chat.announce_presence(user, false).await;
        }
    });
    every(chat, Duration::from_secs(1), |chat| async move { chat.flush_acks().await });
    let (receipts, mut shutdown) = (chat.clone(), chat.inner.shutdown.clone());
    tokio::spawn(async move {
        loop {
            let stopping = tokio::select! {
                _ = receipts.inner.deliveries.queued() => false,
                _ = shutdown.wait_for(|stop| *stop) => true,
            };
            if stopping {
                break;
            }
            receipts.flush_deliveries().await;
            // Server-wide spacing: a receipt is written at once if none was written in the
            // last half second; otherwise it waits for the next write, which covers every
            // message delivered meanwhile.
            tokio::time::sleep(RECEIPT_SPACING).await;
        }
    });
    every(chat, Duration::from_secs(60), |chat| async move { chat.hub().trim(INBOX_IDLE) });
    every(chat, Duration::from_secs(3600), |chat| async move { chat.sweep().await });
}

/// Runs `tick` at once and then every `period`, until shutdown.
fn every<F, Fut>(chat: &Chat, period: Duration, tick: F)
where
    F: Fn(Chat) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let chat = chat.clone();
    let mut shutdown = chat.inner.shutdown.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = interval.tick() => false,
                _ = shutdown.wait_for(|stop| *stop) => true,
            };
            if stopping {
                break;
            }
            tick(chat.clone()).await;
        }
    });
}

impl Chat {
    /// Removes messages and events older than the retention window.
    pub async fn sweep(&self) {
        let cutoff = now_ms() - self.config().retention.as_millis() as i64;
        match self.store().sweep(cutoff).await {
            Ok(floor) => self.hub().set_floor(floor),
            Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
        }
    }
}
