//! The message connection: a long poll per device that answers as soon as the user has
//! events after the cursor, or empty when its time is up, superseded or the server stops.
//! The cursor sent with a poll acknowledges everything before it, which is what delivery
//! receipts are made from.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{Auth, Chat, ChatError, ChatResult};
use crate::bus::hub::Read;
use crate::fast_map::FastMap;
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
pub(super) struct Sessions {
    devices: Mutex<FastMap<DeviceId, Session>>,
    /// Shutdown began: a poll answers at once instead of waiting. Set before the held polls
    /// are told to answer, which is done under the lock a poll registers under: a poll that
    /// registers later sees the flag, one that registered earlier is told. One flag instead
    /// of each held poll waiting on the shutdown channel as well, which registered and
    /// removed a waiter there for every poll.
    stopping: AtomicBool,
}

/// The newest seq per direct conversation among the messages from others in `events`. By
/// sorting: an answer mostly holds one or two messages, for which a map made per answer was
/// most of the cost.
fn delivered_by_others(events: &[Arc<StoredEvent>], me: UserId) -> Vec<(ConvId, i64)> {
    let mut newest: Vec<(ConvId, i64)> = events
        .iter()
        .filter_map(|e| e.message)
        .filter(|m| m.direct && m.sender != me)
        .map(|m| (m.conv, m.seq))
        .collect();
    // Each conversation's highest seq first, and only that one kept.
    newest.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    newest.dedup_by_key(|(conv, _)| *conv);
    newest
}

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
        if let Some(s) = self.chat.inner.sessions.devices.lock().get_mut(&self.device) {
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
        let mut sessions = self.inner.sessions.devices.lock();
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
        let wake = self.hub().notifier(user);
        let mut after = cursor;
        loop {
            // Made before the read, so an event committed while reading still ends the wait.
            let woken = wake.notified();
            let (events, more) = match self.hub().read(user, after, limit) {
                Read::Events(events, more) => (events, more),
                Read::Miss(covered_from) => {
                    // Only what memory does not cover: the store may already hold commits the
                    // router has not seen yet, and those reach the inbox and the next read.
                    let mut events = self.store().events_after(user, after, covered_from, limit + 1).await?;
                    if events.is_empty() {
                        // Nothing up to what memory covers: memory now covers from `after` too,
                        // so the next poll from the same cursor (an empty answer returns it)
                        // reads memory, not the store. Continue from memory.
                        self.hub().covered(user, after, covered_from);
                        after = covered_from;
                        continue;
                    }
                    if events.len() > limit {
                        events.truncate(limit);
                        (events, true)
                    } else {
                        // The rest of the answer from memory, as a poll that did not miss gets it.
                        match self.hub().read(user, covered_from, limit - events.len()) {
                            Read::Events(newer, more) => {
                                events.extend(newer);
                                (events, more)
                            }
                            // Memory moved on meanwhile: the next poll reads the store again.
                            Read::Miss(_) => (events, true),
                        }
                    }
                }
            };
            if let Some(last) = events.last() {
                return Ok(Batch { cursor: last.pos, events, more });
            }
            // An empty answer gives the cursor back as it came (API.md).
            if self.inner.sessions.stopping.load(Ordering::Acquire) {
                return Ok(Batch { cursor, events, more: false });
            }
            tokio::select! {
                () = woken => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Batch { cursor, events, more: false }),
                // Superseded, logged out, or shutdown began (`end_all_polls`).
                _ = &mut cancelled => return Ok(Batch { cursor, events, more: false }),
            }
        }
    }

    fn remember_deliveries(&self, auth: &Auth, generation: u64, batch: &Batch) {
        let newest = delivered_by_others(&batch.events, auth.user);
        if newest.is_empty() {
            return;
        }
        let mut sessions = self.inner.sessions.devices.lock();
        if let Some(s) = sessions.get_mut(&auth.device).filter(|s| s.generation == generation) {
            s.delivered = newest;
            s.delivery_cursor = batch.cursor;
        }
    }

    /// Shutdown began: answers every held poll, and every later one at once.
    pub(super) fn end_all_polls(&self) {
        self.inner.sessions.stopping.store(true, Ordering::Release);
        for s in self.inner.sessions.devices.lock().values_mut() {
            if let Some(cancel) = s.cancel.take() {
                let _ = cancel.send(());
            }
        }
    }

    /// Answers the device's held poll and forgets its session (logout).
    pub(super) fn end_session(&self, device: DeviceId) {
        if let Some(mut s) = self.inner.sessions.devices.lock().remove(&device) {
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
            .devices
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
                let mut sessions = self.inner.sessions.devices.lock();
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
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::bus::Hub;
    use crate::chat::testing::open_chat;
    use crate::chat::{SeedPlan, Target};
    use crate::config::Config;
    use crate::model::ConvRef;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{CommitSink, Committed};

    /// Hands commits to the hub, or holds them back while shut, as a slow commit path would.
    struct Gate {
        hub: Arc<Hub>,
        shut: AtomicBool,
    }

    impl CommitSink for Gate {
        fn committed(&self, batch: &Committed) {
            while self.shut.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.hub.committed(batch);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_that_reads_the_store_never_answers_past_what_the_hub_has() {
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let config = Config::with_data_dir(std::env::temp_dir().join(format!("webim-gate-{}-{n}", std::process::id())));
        let hub = Arc::new(Hub::default());
        let gate = Arc::new(Gate { hub: hub.clone(), shut: AtomicBool::new(false) });
        let store = SqliteStore::open(&config.data_dir, config.sync, gate.clone()).unwrap();
        let dir = config.data_dir.clone();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        let chat = Chat::with_store(Arc::new(store), hub, config, stopped).await.unwrap();
        let plan = SeedPlan { prefix: "gate".into(), pairs: 1, ..Default::default() };
        let [a, b] = chat.seed(&plan).await.unwrap().pairs.remove(0);
        let auth_b = chat.authenticate(&b.token).await.unwrap();
        // B comes online now (the presence write must not wait behind the gate later).
        chat.poll(&auth_b, Some(&b.cursor), Some(0)).await.unwrap();
        chat.send(a.user_id, Target::User(b.user_id), "m1", "one").await.unwrap();

        // The next message reaches the database but not yet the hub.
        gate.shut.store(true, Ordering::Release);
        let sending = {
            let chat = chat.clone();
            tokio::spawn(async move { chat.send(a.user_id, Target::User(b.user_id), "m2", "two").await })
        };
        let conv_ref = ConvRef::direct(a.user_id, b.user_id);
        let conv = chat.hub().conv_id(conv_ref).unwrap();
        let mut stored = false;
        for _ in 0..500 {
            stored = chat.store().history(conv, conv_ref, None, None, 0, 10).await.unwrap().len() == 2;
            if stored {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(stored, "the held-back message never reached the database");

        // A poll from the very start is older than anything B's inbox covers: it reads the store.
        let seqs = |batch: &Batch| batch.events.iter().filter_map(|e| e.message.map(|m| m.seq)).collect::<Vec<_>>();
        let first = chat.poll(&auth_b, Some("0"), Some(0)).await.unwrap();
        assert!(first.cursor <= chat.hub().head(), "cursor {} past the hub's head {}", first.cursor, chat.hub().head());
        assert_eq!(seqs(&first), [1]);

        gate.shut.store(false, Ordering::Release);
        sending.await.unwrap().unwrap();
        let next = chat.poll(&auth_b, Some(&format_cursor(first.cursor)), Some(5)).await.unwrap();
        assert_eq!(seqs(&next), [2]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_catch_up_gives_what_the_user_received_at_each_position_not_what_they_receive_now() {
        let (chat, mut pairs, dir, _stop) = open_chat("spans", 2).await;
        let [c, _] = pairs.remove(1);
        let [a, b] = pairs.remove(0);
        let (a, b, c) = (a.user_id, b.user_id, c.user_id);
        let group = chat.create_group(a, "spans", crate::model::JoinPolicy::Open, true).await.unwrap();
        chat.join_group(b, group.id).await.unwrap();
        // B's inbox, from here on: what memory delivers, to compare the store's read with.
        let _wake = chat.hub().notifier(b);
        let from = chat.hub().head();

        // B leaves the group and joins it again; C is a stranger, a friend, not, and a friend again.
        let to_group = Target::Group(group.id);
        chat.send(a, to_group, "g1", "before leaving").await.unwrap();
        chat.announce_presence(c, true).await;
        chat.leave_group(b, group.id).await.unwrap();
        chat.send(a, to_group, "g2", "while away").await.unwrap();
        let request = chat.request_friend(c, b, None).await.unwrap();
        chat.accept_friend(b, request.id).await.unwrap();
        chat.announce_presence(c, false).await;
        chat.join_group(b, group.id).await.unwrap();
        chat.send(a, to_group, "g3", "after rejoining").await.unwrap();
        let gone = chat.create_group(a, "gone", crate::model::JoinPolicy::Open, true).await.unwrap();
        chat.join_group(b, gone.id).await.unwrap();
        chat.dissolve_group(a, gone.id).await.unwrap();
        chat.remove_friend(b, c).await.unwrap();
        chat.announce_presence(c, true).await;
        let request = chat.request_friend(b, c, None).await.unwrap();
        chat.accept_friend(c, request.id).await.unwrap();
        chat.announce_presence(c, false).await;

        let events = chat.store().events_after(b, from, Pos::MAX, 1000).await.unwrap();
        assert!(events.windows(2).all(|w| w[0].pos < w[1].pos), "in order, each once");
        let parsed: Vec<serde_json::Value> = events.iter().map(|e| serde_json::from_str(&e.json).unwrap()).collect();
        let of = |kind: &str| parsed.iter().filter(|e| e["type"] == kind).collect::<Vec<_>>();
        let bodies: Vec<_> = of("message.new").iter().map(|e| e["message"]["body"].as_str().unwrap()).collect();
        assert_eq!(bodies, ["before leaving", "after rejoining"], "nothing from while B was away");
        let left = of("group.member_left");
        assert_eq!(left.len(), 1, "B's own leaving, though B is a member again: {parsed:?}");
        assert_eq!(left[0]["user_id"], b);
        assert_eq!(of("group.dissolved").len(), 1, "a group dissolved since");
        let presence: Vec<_> = of("presence").iter().map(|e| e["online"].as_bool().unwrap()).collect();
        assert_eq!(presence, [false, false], "C's presence only while they were friends");
        let Read::Events(delivered, _) = chat.hub().read(b, from, 1000) else { panic!("memory covers B from `from`") };
        let positions = |events: &[Arc<StoredEvent>]| events.iter().map(|e| e.pos).collect::<Vec<_>>();
        assert_eq!(positions(&events), positions(&delivered), "the store's read and memory's delivery agree");
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_from_a_position_a_sweep_just_passed_answers_expired_not_what_is_left() {
        let (chat, mut pairs, dir, _stop) = open_chat("swept", 1).await;
        let [a, b] = pairs.remove(0);
        for i in 0..3 {
            chat.send(a.user_id, Target::User(b.user_id), &format!("s{i}"), "old").await.unwrap();
        }
        // The store sweeps; the router has not heard of it yet, as between a sweep's chunks.
        let floor = chat.store().sweep(crate::model::now_ms() + 1).await.unwrap();
        assert!(floor > parse_cursor(&b.cursor).unwrap(), "the sweep passed B's cursor");
        assert!(chat.hub().floor() < floor);
        let auth_b = chat.authenticate(&b.token).await.unwrap();
        let answer = chat.poll(&auth_b, Some(&b.cursor), Some(0)).await;
        assert!(matches!(answer, Err(ChatError::CursorExpired)), "{answer:?}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_read_of_the_store_lets_memory_cover_the_cursor_it_was_read_from() {
        let (chat, mut pairs, dir, _stop) = open_chat("empty", 2).await;
        let [c, d] = pairs.remove(1);
        let [_, b] = pairs.remove(0);
        // Others' events move the head before B's first poll, so that poll reads the store.
        let auth_c = chat.authenticate(&c.token).await.unwrap();
        chat.poll(&auth_c, Some(&c.cursor), Some(0)).await.unwrap();
        chat.send(c.user_id, Target::User(d.user_id), "m1", "one").await.unwrap();
        let auth_b = chat.authenticate(&b.token).await.unwrap();
        let from = parse_cursor(&b.cursor).unwrap();
        let answer = chat.poll(&auth_b, Some(&b.cursor), Some(0)).await.unwrap();
        assert!(answer.events.is_empty(), "nothing of it is B's");
        assert_eq!(answer.cursor, from, "an empty answer gives the cursor back");
        assert!(
            !matches!(chat.hub().read(b.user_id, from, 10), Read::Miss(_)),
            "the next poll from the same cursor would read the store again"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_answers_a_held_poll_and_every_later_one_at_once() {
        let (chat, mut pairs, dir, stop) = open_chat("stopping", 1).await;
        let [_, b] = pairs.remove(0);
        let auth = chat.authenticate(&b.token).await.unwrap();
        let cursor = format_cursor(chat.poll(&auth, Some(&b.cursor), Some(0)).await.unwrap().cursor);
        let held = {
            let (chat, cursor) = (chat.clone(), cursor.clone());
            tokio::spawn(async move { chat.poll(&auth, Some(&cursor), Some(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!held.is_finished(), "held until something happens");
        stop.send(true).unwrap();
        let within = Duration::from_secs(5);
        let answer = tokio::time::timeout(within, held).await.expect("answered when shutdown began").unwrap().unwrap();
        assert_eq!((answer.events.len(), format_cursor(answer.cursor)), (0, cursor.clone()));
        let later = tokio::time::timeout(within, chat.poll(&auth, Some(&cursor), Some(30))).await;
        assert!(later.expect("a poll after it does not wait").unwrap().events.is_empty());
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn polls_registering_while_shutdown_runs_answer_at_once_too() {
        let (chat, pairs, dir, stop) = open_chat("stopping-race", 50).await;
        let mut devices = Vec::new();
        for login in pairs.iter().flatten() {
            let auth = chat.authenticate(&login.token).await.unwrap();
            devices.push((auth, login.cursor.clone()));
        }
        // Twice: the first polls bring friends online, which the second take in.
        for _ in 0..2 {
            for (auth, cursor) in &mut devices {
                *cursor = format_cursor(chat.poll(auth, Some(cursor), Some(0)).await.unwrap().cursor);
            }
        }
        // Polls start spread over the moment shutdown begins, on both of the runtime's
        // threads: some register before it, some while it tells the held ones, some after.
        let mut polls = tokio::task::JoinSet::new();
        for (i, (auth, cursor)) in devices.into_iter().enumerate() {
            let chat = chat.clone();
            polls.spawn(async move {
                tokio::time::sleep(Duration::from_micros(200 * i as u64)).await;
                chat.poll(&auth, Some(&cursor), Some(30)).await.map(|b| b.events.len())
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop.send(true).unwrap();
        let all = tokio::time::timeout(Duration::from_secs(5), async {
            let mut answered = 0;
            while let Some(answer) = polls.join_next().await {
                assert_eq!(answer.unwrap().unwrap(), 0);
                answered += 1;
            }
            answered
        })
        .await
        .expect("every poll answered within 5 s of shutdown");
        assert_eq!(all, 100);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_newest_message_from_others_per_direct_conversation_is_what_was_delivered() {
        let message = |conv, sender, seq, direct| {
            let meta = crate::model::MessageMeta { conv, sender, seq, direct };
            Arc::new(StoredEvent { pos: seq, stream: Stream::Conv(conv), json: "{}".into(), message: Some(meta) })
        };
        let events = [
            message(10, 2, 1, true),
            message(11, 3, 4, true),
            message(10, 2, 3, true),
            message(10, 1, 4, true),
            message(12, 2, 9, false),
            message(11, 3, 2, true),
            message(10, 2, 2, true),
        ];
        let mut got = delivered_by_others(&events, 1);
        got.sort_unstable();
        assert_eq!(got, [(10, 3), (11, 4)], "own messages and groups left out");
        assert!(delivered_by_others(&events[3..5], 1).is_empty());
    }

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
