//! The in-process router: keeps who-receives-what (memberships, friendships), a bounded
//! in-memory inbox of recent events per active user, and one notifier per user that wakes
//! that user's held polls. A held poll costs no CPU and no query while it waits.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::fast_map::{FastMap, FastSet};
use crate::model::{ConvId, ConvRef, Pos, StoredEvent, Stream, UserId};
use crate::store::{CommitSink, Committed, Delta, Snapshot};

/// Most events kept in memory per user; older ones are read from the store.
const INBOX_CAP: usize = 1024;

/// The router; shared by every request.
#[derive(Default)]
pub struct Hub {
    state: Mutex<State>,
    head: AtomicI64,
    floor: AtomicI64,
}

#[derive(Default)]
struct State {
    conv_ids: FastMap<ConvRef, ConvId>,
    conv_refs: FastMap<ConvId, ConvRef>,
    members: FastMap<ConvId, Vec<(UserId, Pos)>>,
    friends: FastMap<UserId, FastSet<UserId>>,
    inboxes: FastMap<UserId, Inbox>,
}

/// Recent events of one user. Invariant: every event for the user with a position above
/// `covered_from` is in `events`, ascending.
struct Inbox {
    events: VecDeque<Arc<StoredEvent>>,
    covered_from: Pos,
    /// A plain `Notify` rather than a `watch` channel: a poll needs to know only that
    /// something came, and a watch wakes through eight notifiers, locking each, for every
    /// send (~600 instructions a delivery in a fan-out, BENCHMARKS.md, fifteenth
    /// measurement). An inbox must never be removed or replaced while a poll holds this
    /// (`strong_count > 1`): the poll could not learn that its notifier is gone.
    wake: Arc<Notify>,
    used: Instant,
}

/// What [`Hub::read`] found.
pub enum Read {
    /// Events after the cursor (possibly none) and whether more remain.
    Events(Vec<Arc<StoredEvent>>, bool),
    /// The cursor is older than memory covers; events up to this position must come from
    /// the store.
    Miss(Pos),
}

impl Hub {
    /// Builds the router from the store's state at start.
    pub fn load(&self, snap: Snapshot) {
        let mut st = self.state.lock();
        for d in &snap.deltas {
            st.apply(d);
        }
        self.head.store(snap.head, Ordering::Release);
        self.floor.store(snap.floor, Ordering::Release);
    }

    /// The highest position whose events every inbox has received.
    pub fn head(&self) -> Pos {
        self.head.load(Ordering::Acquire)
    }

    /// Events at or below this position may have been removed by retention.
    pub fn floor(&self) -> Pos {
        self.floor.load(Ordering::Acquire)
    }

    /// Records a retention sweep.
    pub fn set_floor(&self, floor: Pos) {
        self.floor.fetch_max(floor, Ordering::AcqRel);
    }

    /// The internal id of a conversation, if it exists.
    pub fn conv_id(&self, conv: ConvRef) -> Option<ConvId> {
        self.state.lock().conv_ids.get(&conv).copied()
    }

    /// The external id of a conversation.
    pub fn conv_ref(&self, conv: ConvId) -> Option<ConvRef> {
        self.state.lock().conv_refs.get(&conv).copied()
    }

    /// Whether `user` currently receives the conversation.
    pub fn is_member(&self, conv: ConvId, user: UserId) -> bool {
        self.state.lock().members.get(&conv).is_some_and(|m| m.iter().any(|(u, _)| *u == user))
    }

    /// Whether the two are friends.
    pub fn are_friends(&self, a: UserId, b: UserId) -> bool {
        self.state.lock().friends.get(&a).is_some_and(|f| f.contains(&b))
    }

    /// What wakes `user`'s polls whenever an event for them is committed. Make its
    /// `notified()` before reading: it counts every wake-up from its making, so an event
    /// committed in between still ends the wait. Holding it keeps the user's inbox.
    pub fn notifier(&self, user: UserId) -> Arc<Notify> {
        let mut st = self.state.lock();
        // The head is read under the lock: commits advance it under the same lock, so a new
        // inbox never claims to cover an event it did not receive.
        let head = self.head();
        let inbox = st.inbox(user, head);
        inbox.used = Instant::now();
        inbox.wake.clone()
    }

    /// The user's events after `after`, at most `limit`, from memory.
    pub fn read(&self, user: UserId, after: Pos, limit: usize) -> Read {
        let mut st = self.state.lock();
        let head = self.head();
        let inbox = st.inbox(user, head);
        if after < inbox.covered_from {
            return Read::Miss(inbox.covered_from);
        }
        let start = first_after(&inbox.events, after);
        let end = inbox.events.len().min(start + limit);
        let events = inbox.events.range(start..end).cloned().collect();
        Read::Events(events, end < inbox.events.len())
    }

    /// Records that the store holds nothing for `user` after `from` up to `to`, where their
    /// inbox's memory began: it covers from `from` now, unless it has moved past `to`
    /// meanwhile (an overflow dropped events above `to`).
    pub fn covered(&self, user: UserId, from: Pos, to: Pos) {
        if let Some(inbox) = self.state.lock().inboxes.get_mut(&user) {
            if inbox.covered_from <= to {
                inbox.covered_from = inbox.covered_from.min(from);
            }
        }
    }

    /// Drops the inboxes of users nobody has polled for `idle`, so memory follows the
    /// number of active users, not the number of messages.
    pub fn trim(&self, idle: Duration) {
        let mut st = self.state.lock();
        // A poll holding the notifier is a second owner of it.
        st.inboxes.retain(|_, inbox| Arc::strong_count(&inbox.wake) > 1 || inbox.used.elapsed() < idle);
    }
}

impl State {
    /// The user's inbox, made if missing. Only [`Hub::notifier`] marks it used: every poll
    /// takes the notifier before it reads, and reading the clock twice per poll showed in
    /// profiles.
    fn inbox(&mut self, user: UserId, head: Pos) -> &mut Inbox {
        self.inboxes.entry(user).or_insert_with(|| Inbox {
            events: VecDeque::new(),
            covered_from: head,
            wake: Arc::default(),
            used: Instant::now(),
        })
    }

    fn apply(&mut self, delta: &Delta) {
        match *delta {
            Delta::Conversation { id, conv } => {
                self.conv_ids.insert(conv, id);
                self.conv_refs.insert(id, conv);
            }
            Delta::MemberAdded { conv, user, from } => {
                let members = self.members.entry(conv).or_default();
                if !members.iter().any(|(u, _)| *u == user) {
                    members.push((user, from));
                }
            }
            Delta::MemberRemoved { conv, user } => {
                if let Some(members) = self.members.get_mut(&conv) {
                    members.retain(|(u, _)| *u != user);
                }
            }
            Delta::FriendsAdded(a, b) => {
                self.friends.entry(a).or_default().insert(b);
                self.friends.entry(b).or_default().insert(a);
            }
            Delta::FriendsRemoved(a, b) => {
                self.friends.entry(a).or_default().remove(&b);
                self.friends.entry(b).or_default().remove(&a);
            }
        }
    }
}

/// Index of the first event after `after`. A poll almost always asks for the newest few
/// events, so look from the back first: each probe of a binary search follows a pointer to
/// a different event, which cost ~6% of the server's time fanning out to 1,000 members.
fn first_after(events: &VecDeque<Arc<StoredEvent>>, after: Pos) -> usize {
    const FROM_BACK: usize = 8;
    let mut i = events.len();
    while i > 0 && events.len() - i < FROM_BACK {
        if events[i - 1].pos <= after {
            return i;
        }
        i -= 1;
    }
    events.partition_point(|e| e.pos <= after)
}

/// Appends `event` to the user's inbox, if the user has one (users without one read the
/// store when they come).
fn deliver(inboxes: &mut FastMap<UserId, Inbox>, user: UserId, event: &Arc<StoredEvent>, touched: &mut Vec<UserId>) {
    if let Some(inbox) = inboxes.get_mut(&user) {
        if inbox.events.len() == INBOX_CAP {
            let dropped = inbox.events.pop_front().expect("full inbox has a front");
            inbox.covered_from = dropped.pos;
        }
        inbox.events.push_back(event.clone());
        touched.push(user);
    }
}

impl CommitSink for Hub {
    fn committed(&self, batch: &Committed) {
        let mut st = self.state.lock();
        let mut deltas = batch.deltas.iter().peekable();
        let mut touched = Vec::new();
        for event in &batch.events {
            // A delta applies to the events stored after it, not to those before.
            while let Some((_, d)) = deltas.next_if(|(at, _)| *at < event.pos) {
                st.apply(d);
            }
            let State { members, friends, inboxes, .. } = &mut *st;
            match event.stream {
                Stream::User(u) => deliver(inboxes, u, event, &mut touched),
                Stream::Conv(c) => {
                    for &(u, from) in members.get(&c).into_iter().flatten() {
                        if event.pos > from {
                            deliver(inboxes, u, event, &mut touched);
                        }
                    }
                }
                Stream::Friends(u) => {
                    for &f in friends.get(&u).into_iter().flatten() {
                        deliver(inboxes, f, event, &mut touched);
                    }
                }
            }
        }
        for (_, d) in deltas {
            st.apply(d);
        }
        let head = batch.events.last().map_or(self.head(), |e| e.pos).max(self.head());
        self.head.store(head, Ordering::Release);
        touched.sort_unstable();
        touched.dedup();
        for u in touched {
            if let Some(inbox) = st.inboxes.get(&u) {
                inbox.wake.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(pos: Pos, stream: Stream) -> Arc<StoredEvent> {
        Arc::new(StoredEvent { pos, stream, json: format!("{{\"p\":{pos}}}").into(), message: None })
    }

    fn commit(hub: &Hub, events: Vec<Arc<StoredEvent>>, deltas: Vec<(Pos, Delta)>) {
        hub.committed(&Committed { events, deltas });
    }

    fn positions(read: Read) -> (Vec<Pos>, bool) {
        match read {
            Read::Events(e, more) => (e.iter().map(|e| e.pos).collect(), more),
            Read::Miss(p) => panic!("miss at {p}"),
        }
    }

    #[test]
    fn the_first_event_after_a_cursor_is_found_for_every_cursor() {
        for len in [0, 1, 7, 8, 9, 40] {
            // Positions 10, 12, 14, …: cursors fall on events and between them.
            let events: VecDeque<_> = (0..len).map(|k| event(10 + 2 * k as Pos, Stream::User(1))).collect();
            for after in 0..(12 + 2 * len as Pos) {
                let expected = events.iter().filter(|e| e.pos <= after).count();
                assert_eq!(first_after(&events, after), expected, "len {len}, after {after}");
            }
        }
    }

    #[test]
    fn conversation_events_reach_members_from_their_join_position() {
        let hub = Hub::default();
        hub.notifier(1);
        hub.notifier(2);
        commit(
            &hub,
            vec![],
            vec![
                (0, Delta::Conversation { id: 10, conv: ConvRef::Group(1) }),
                (0, Delta::MemberAdded { conv: 10, user: 1, from: 0 }),
                (0, Delta::MemberAdded { conv: 10, user: 2, from: 2 }),
            ],
        );
        commit(&hub, vec![event(1, Stream::Conv(10)), event(2, Stream::Conv(10)), event(3, Stream::Conv(10))], vec![]);
        assert_eq!(positions(hub.read(1, 0, 10)), (vec![1, 2, 3], false));
        assert_eq!(positions(hub.read(2, 0, 10)), (vec![3], false));
        assert_eq!(positions(hub.read(1, 1, 1)), (vec![2], true));
        assert_eq!(hub.head(), 3);
    }

    #[test]
    fn memory_covers_further_back_only_where_it_began_when_the_store_was_read() {
        let hub = Hub::default();
        commit(&hub, vec![event(5, Stream::User(9))], vec![]);
        hub.notifier(1);
        assert!(matches!(hub.read(1, 3, 10), Read::Miss(5)));
        hub.covered(1, 3, 5);
        assert_eq!(positions(hub.read(1, 3, 10)), (vec![], false), "covered from 3 now");
        assert!(matches!(hub.read(1, 1, 10), Read::Miss(3)));
        // Memory has moved past what a read covered (as after an overflow): it proves nothing.
        hub.covered(1, 0, 2);
        assert!(matches!(hub.read(1, 1, 10), Read::Miss(3)));
        // Another device's read, of a stretch memory already covers in part, still counts.
        hub.covered(1, 1, 5);
        assert_eq!(positions(hub.read(1, 1, 10)), (vec![], false));
    }

    #[test]
    fn a_committed_event_wakes_the_watcher_and_older_cursors_miss() {
        let hub = Hub::default();
        commit(&hub, vec![event(5, Stream::User(9))], vec![]);
        let wake = hub.notifier(1);
        // As a poll does: made before its read, polled only after the commit.
        let mut unpolled = std::pin::pin!(wake.notified());
        let mut waiting = std::pin::pin!(wake.notified());
        assert!(matches!(hub.read(1, 3, 10), Read::Miss(5)));
        commit(&hub, vec![event(7, Stream::User(2))], vec![]);
        assert!(!waiting.as_mut().enable(), "an event for someone else wakes no one");
        commit(&hub, vec![event(8, Stream::User(1))], vec![]);
        assert!(waiting.as_mut().enable());
        assert!(unpolled.as_mut().enable(), "a wake-up before the first poll is not lost");
        assert_eq!(positions(hub.read(1, 5, 10)), (vec![8], false));
    }

    #[test]
    fn a_member_removed_mid_batch_gets_what_came_before_and_nothing_after() {
        let hub = Hub::default();
        hub.notifier(1);
        let join = vec![
            (0, Delta::Conversation { id: 7, conv: ConvRef::Group(3) }),
            (0, Delta::MemberAdded { conv: 7, user: 1, from: 0 }),
        ];
        commit(&hub, vec![], join);
        let events = vec![event(1, Stream::Conv(7)), event(2, Stream::Conv(7)), event(3, Stream::Conv(7))];
        commit(&hub, events, vec![(2, Delta::MemberRemoved { conv: 7, user: 1 })]);
        assert_eq!(positions(hub.read(1, 0, 10)), (vec![1, 2], false));
        assert!(!hub.is_member(7, 1));
    }

    #[test]
    fn presence_goes_to_friends_only_and_the_inbox_stays_bounded() {
        let hub = Hub::default();
        hub.notifier(1);
        hub.notifier(3);
        commit(&hub, vec![], vec![(0, Delta::FriendsAdded(1, 2))]);
        let events: Vec<_> = (1..=(INBOX_CAP as Pos + 10)).map(|p| event(p, Stream::Friends(2))).collect();
        commit(&hub, events, vec![]);
        assert!(matches!(hub.read(1, 0, 10), Read::Miss(10)));
        assert_eq!(positions(hub.read(1, 10, 2000)).0.len(), INBOX_CAP);
        assert_eq!(positions(hub.read(3, 0, 10)), (vec![], false));
    }
}
