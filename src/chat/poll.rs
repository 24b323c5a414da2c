//! The message connection: a long poll per device that answers as soon as the user has
//! events after the cursor, or empty when its time is up, superseded or the server stops.
//! The cursor sent with a poll acknowledges everything before it, which is what delivery
//! receipts are made from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{Auth, Chat, ChatError, ChatResult};
use crate::bus::hub::Read;
use crate::model::{ConvId, DeviceId, EventBody, NewEvent, Pos, StoredEvent, Stream, UserId};

/// One poll's answer.
#[derive(Debug)]
pub struct Batch {
    /// Covers every event in `events`; the next poll sends it back.
    pub cursor: Pos,
    /// In order.
    pub events: Vec<Arc<StoredEvent>>,
    /// A batch limit cut the list: poll again at once.
    pub more: bool,
}

/// Per-device state of the message connection.
#[derive(Default)]
struct Session {
    /// Highest cursor the device acknowledged.
    acked: Pos,
    /// Highest acknowledged cursor saved to the store.
    saved: Pos,
    /// Answers the device's held poll when a newer one arrives.
    cancel: Option<oneshot::Sender<()>>,
    /// Identifies the newest poll.
    generation: u64,
    /// Messages from others handed out in the last answer, by conversation: delivered once
    /// the device acknowledges `delivery_cursor`.
    delivered: Vec<(ConvId, i64)>,
    delivery_cursor: Pos,
}

/// Every device that polled since start.
#[derive(Default)]
pub(super) struct Sessions(Mutex<HashMap<DeviceId, Session>>);

/// Parses a cursor string; cursors are opaque to clients.
pub fn parse_cursor(s: &str) -> ChatResult<Pos> {
    let ok =
        !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    ok.then(|| s.parse().ok()).flatten().ok_or_else(|| ChatError::BadRequest {
        code: "invalid_cursor",
        message: "cursor is not one this server gave out".into(),
    })
}

/// The string form of a cursor.
pub fn format_cursor(pos: Pos) -> String {
    pos.to_string()
}

/// Ends the poll's presence and forgets its cancel handle, however the poll ends.
struct Held<'a> {
    chat: &'a Chat,
    user: UserId,
    device: DeviceId,
    generation: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.chat.inner.presence.poll_ended(self.user);
        if let Some(s) = self.chat.inner.sessions.0.lock().get_mut(&self.device) {
            if s.generation == self.generation {
                s.cancel = None;
            }
        }
    }
}

impl Chat {
    /// Answers with the user's events after `cursor` (or the device's acknowledged cursor),
    /// holding the request up to `timeout` seconds while there are none.
    pub async fn poll(&self, auth: &Auth, cursor: Option<&str>, timeout: Option<u64>) -> ChatResult<Batch> {
        let config = self.config();
        let timeout =
            timeout.map(Duration::from_secs).unwrap_or(config.poll_timeout_default).min(config.poll_timeout_max);
        let given = cursor.map(parse_cursor).transpose()?;
        if let Some(c) = given {
            self.check_cursor(c)?;
        }
        let (cursor, cancelled, generation, delivered) = self.begin_poll(auth, given);
        self.check_cursor(cursor)?;
        if !delivered.is_empty() {
            self.inner.deliveries.add(auth.user, delivered);
        }
        if self.inner.presence.poll_started(auth.user) {
            self.announce_presence(auth.user, true).await;
        }
        let _held = Held { chat: self, user: auth.user, device: auth.device, generation };
        let batch = self.wait_for_events(auth.user, cursor, timeout, cancelled).await?;
        if !batch.events.is_empty() {
            self.remember_deliveries(auth, generation, &batch);
        }
        Ok(batch)
    }

    /// A cursor below the retention floor, or beyond anything committed (a cursor from a
    /// database that was reset), makes the client resync.
    fn check_cursor(&self, cursor: Pos) -> ChatResult<()> {
        if cursor > self.hub().head() || cursor < self.hub().floor() {
            Err(ChatError::CursorExpired)
        } else {
            Ok(())
        }
    }

    /// Acknowledges `given`, supersedes the device's held poll and returns where to read
    /// from, the new poll's cancel signal, its generation and any deliveries now confirmed.
    fn begin_poll(&self, auth: &Auth, given: Option<Pos>) -> (Pos, oneshot::Receiver<()>, u64, Vec<(ConvId, i64)>) {
        let mut sessions = self.inner.sessions.0.lock();
        let s = sessions.entry(auth.device).or_insert_with(|| Session {
            acked: auth.acked,
            saved: auth.acked,
            ..Default::default()
        });
        let cursor = given.unwrap_or(s.acked);
        s.acked = s.acked.max(cursor);
        let delivered = if cursor >= s.delivery_cursor { std::mem::take(&mut s.delivered) } else { Vec::new() };
        if let Some(old) = s.cancel.take() {
            let _ = old.send(());
        }
        let (tx, rx) = oneshot::channel();
        s.cancel = Some(tx);
        s.generation += 1;
        (cursor, rx, s.generation, delivered)
    }

    async fn wait_for_events(
        &self,
        user: UserId,
        cursor: Pos,
        timeout: Duration,
        mut cancelled: oneshot::Receiver<()>,
    ) -> ChatResult<Batch> {
        let limit = self.config().poll_batch_limit;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut shutdown = self.inner.shutdown.clone();
        let mut wake = self.hub().watch(user);
        let mut after = cursor;
        loop {
            wake.borrow_and_update();
            let (events, more) = match self.hub().read(user, after, limit) {
                Read::Events(events, more) => (events, more),
                Read::Miss(covered_from) => {
                    // The store may already hold commits the router has not seen yet; the
                    // answer stops at the router's head so the cursor never passes it (those
                    // newer events reach the inbox and the next read).
                    let head = self.hub().head();
                    let mut events =
                        self.store().events_after(self.hub().subscriptions(user), after, limit + 1).await?;
                    events.retain(|e| e.pos <= head);
                    if events.is_empty() {
                        // Nothing up to what memory covers: continue from memory.
                        after = covered_from;
                        continue;
                    }
                    let more = events.len() > limit;
                    events.truncate(limit);
                    (events, more)
                }
            };
            if let Some(last) = events.last() {
                return Ok(Batch { cursor: last.pos, events, more });
            }
            if *shutdown.borrow() {
                return Ok(Batch { cursor, events, more: false });
            }
            tokio::select! {
                changed = wake.changed() => if changed.is_err() { return Ok(Batch { cursor, events, more: false }) },
                _ = tokio::time::sleep_until(deadline) => return Ok(Batch { cursor, events, more: false }),
                _ = &mut cancelled => return Ok(Batch { cursor, events, more: false }),
                _ = shutdown.changed() => return Ok(Batch { cursor, events, more: false }),
            }
        }
    }

    fn remember_deliveries(&self, auth: &Auth, generation: u64, batch: &Batch) {
        let mut newest: HashMap<ConvId, i64> = HashMap::new();
        for m in batch.events.iter().filter_map(|e| e.message) {
            if m.direct && m.sender != auth.user {
                let seq = newest.entry(m.conv).or_default();
                *seq = (*seq).max(m.seq);
            }
        }
        if newest.is_empty() {
            return;
        }
        let mut sessions = self.inner.sessions.0.lock();
        if let Some(s) = sessions.get_mut(&auth.device).filter(|s| s.generation == generation) {
            s.delivered = newest.into_iter().collect();
            s.delivery_cursor = batch.cursor;
        }
    }

    /// Answers the device's held poll and forgets its session (logout).
    pub(super) fn end_session(&self, device: DeviceId) {
        if let Some(mut s) = self.inner.sessions.0.lock().remove(&device) {
            if let Some(cancel) = s.cancel.take() {
                let _ = cancel.send(());
            }
        }
    }

    /// Saves acknowledged cursors that moved since the last save.
    pub(super) async fn flush_acks(&self) {
        let dirty: Vec<(DeviceId, Pos)> = self
            .inner
            .sessions
            .0
            .lock()
            .iter()
            .filter(|(_, s)| s.acked > s.saved)
            .map(|(d, s)| (*d, s.acked))
            .collect();
        if dirty.is_empty() {
            return;
        }
        match self.store().save_acks(dirty.clone()).await {
            Ok(()) => {
                let mut sessions = self.inner.sessions.0.lock();
                for (device, pos) in dirty {
                    if let Some(s) = sessions.get_mut(&device) {
                        s.saved = s.saved.max(pos);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "acknowledged cursors not saved; will retry"),
        }
    }

    /// Tells the user's friends that they came online or went offline.
    pub(super) async fn announce_presence(&self, user: UserId, online: bool) {
        let event = NewEvent::now(Stream::Friends(user), EventBody::Presence { user_id: user, online });
        if let Err(e) = self.store().append(vec![event]).await {
            tracing::warn!(error = %e, user, "presence change not stored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for p in [0, 1, 42, 9_000_000_000] {
            assert_eq!(parse_cursor(&format_cursor(p)).unwrap(), p);
        }
        for bad in ["", "-1", "01", "1.5", "abc", "99999999999999999999"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
