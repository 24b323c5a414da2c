//! Delivery receipts, coalesced: acknowledged deliveries queue here, and one store write
//! takes everything that gathered while the previous write was in flight. When idle a
//! receipt is written at once; under load it costs a share of one job instead of a job (and
//! a round of wake-ups) per poll.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::Chat;
use crate::model::{ConvId, EventBody, NewEvent, Stream, UserId};

/// Delivered positions waiting to be saved: the newest per user and conversation.
#[derive(Default)]
pub(super) struct Deliveries {
    marks: Mutex<HashMap<(UserId, ConvId), i64>>,
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
    /// Saves every queued delivery in one write; each move forward gives the conversation a
    /// `conversation.delivered` event.
    pub(super) async fn flush_deliveries(&self) {
        let marks = self.inner.deliveries.take();
        if marks.is_empty() {
            return;
        }
        let refs: HashMap<ConvId, String> =
            marks.iter().filter_map(|(_, c, _)| Some((*c, self.hub().conv_ref(*c)?.to_string()))).collect();
        let event = Box::new(move |user_id: UserId, conv: ConvId, seq| {
            let conversation_id = refs.get(&conv).cloned().unwrap_or_default();
            NewEvent::now(Stream::Conv(conv), EventBody::ConversationDelivered { conversation_id, user_id, seq })
        });
        if let Err(e) = self.store().mark_delivered(marks, event).await {
            tracing::warn!(error = %e, "delivery receipts not stored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
