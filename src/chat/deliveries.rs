//! Delivery receipts, coalesced: acknowledged deliveries queue here, and one flush saves
//! everything that gathered while the previous one was in flight, in writes of at most
//! [`RECEIPTS_PER_WRITE`]. When idle a receipt is written at once; under load it costs a
//! share of one job instead of a job (and a round of wake-ups) per poll.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::Chat;
use crate::fast_map::FastMap;
use crate::model::{ConvId, ConvRef, EventBody, NewEvent, Stream, UserId};

/// Most receipts saved by one store write.
const RECEIPTS_PER_WRITE: usize = 100;

/// Delivered positions waiting to be saved: the newest per user and conversation.
#[derive(Default)]
pub(super) struct Deliveries {
    marks: Mutex<FastMap<(UserId, ConvId), i64>>,
    queued: Notify,
}

impl Deliveries {
    /// Queues what a device of `user` acknowledged; a later, higher seq replaces a lower one.
    pub(super) fn add(&self, user: UserId, marks: Vec<(ConvId, i64)>) {
        let mut pending = self.marks.lock();
        for (conv, seq) in marks {
            let newest = pending.entry((user, conv)).or_insert(seq);
            *newest = (*newest).max(seq);
        }
        drop(pending);
        self.queued.notify_one();
    }

    /// Completes once something was queued since the last call (or is queued now).
    pub(super) async fn queued(&self) {
        self.queued.notified().await;
    }

    fn take(&self) -> Vec<(UserId, ConvId, i64)> {
        self.marks.lock().drain().map(|((user, conv), seq)| (user, conv, seq)).collect()
    }
}

impl Chat {
    /// Saves every queued delivery in one write; each move forward gives the other side of
    /// the direct chat a `conversation.delivered` event.
    pub(super) async fn flush_deliveries(&self) {
        let marks = self.inner.deliveries.take();
        if marks.is_empty() {
            return;
        }
        let refs: Arc<HashMap<ConvId, ConvRef>> =
            Arc::new(marks.iter().filter_map(|(_, c, _)| Some((*c, self.hub().conv_ref(*c)?))).collect());
        // In slices, one write after the other: each write wakes a poll per receipt, and a
        // thousand answers at once would hold up the messages sent meanwhile.
        for slice in marks.chunks(RECEIPTS_PER_WRITE) {
            let refs = refs.clone();
            let event = Box::new(move |user_id: UserId, conv: ConvId, seq| {
                let conv_ref = refs.get(&conv).copied();
                // Only the sender's devices show delivery marks: sent to the whole
                // conversation, each receipt also woke every poll of the user who
                // acknowledged, for nothing.
                let stream = match conv_ref {
                    Some(ConvRef::Direct(a, b)) => Stream::User(if a == user_id { b } else { a }),
                    _ => Stream::Conv(conv),
                };
                let conversation_id = conv_ref.map(|c| c.to_string()).unwrap_or_default();
                NewEvent::now(stream, EventBody::ConversationDelivered { conversation_id, user_id, seq })
            });
            if let Err(e) = self.store().mark_delivered(slice.to_vec(), event).await {
                tracing::warn!(error = %e, "delivery receipts not stored");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{SeedPlan, Target};
    use crate::config::Config;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_receipt_of_a_large_flush_is_saved_and_reaches_the_sender_only() {
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("webim-receipts-{}-{n}", std::process::id()));
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let chat = Chat::open(Config::with_data_dir(&dir), stopped).await.unwrap();
        // More conversations than one write takes.
        let pairs = RECEIPTS_PER_WRITE * 2 + 50;
        let seeded = chat.seed(&SeedPlan { prefix: "rc".into(), pairs, ..Default::default() }).await.unwrap();
        for [a, b] in &seeded.pairs {
            chat.send(a.user_id, Target::User(b.user_id), "m1", "hello").await.unwrap();
            let conv = chat.hub().conv_id(ConvRef::direct(a.user_id, b.user_id)).unwrap();
            chat.inner.deliveries.add(b.user_id, vec![(conv, 1)]);
        }
        // The service's own flush task may have taken the marks first; either writes them all.
        chat.flush_deliveries().await;
        let stream_of = |user: UserId| Stream::User(user).key();
        for [a, b] in &seeded.pairs {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let rows = chat.store().conversations(a.user_id).await.unwrap();
                if rows[0].peer_delivered_seq == Some(1) {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "receipt of {} never saved", b.user_id);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            let mut receipts = Vec::new();
            for user in [a.user_id, b.user_id] {
                let events = chat.store().events_after(user, 0, crate::model::Pos::MAX, 100).await.unwrap();
                let delivered = events.into_iter().filter(|e| e.json.contains("conversation.delivered"));
                receipts.extend(delivered.map(|e| (user, e.stream.key())));
            }
            assert_eq!(receipts, [(a.user_id, stream_of(a.user_id))], "one receipt, to the sender's stream");
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn marks_merge_to_the_newest_per_user_and_conversation() {
        let d = Deliveries::default();
        d.add(1, vec![(10, 3), (11, 1)]);
        d.add(1, vec![(10, 2)]);
        d.add(2, vec![(10, 5)]);
        d.add(1, vec![(10, 7)]);
        let mut marks = d.take();
        marks.sort();
        assert_eq!(marks, vec![(1, 10, 7), (1, 11, 1), (2, 10, 5)]);
        assert!(d.take().is_empty());
    }
}
