//! The SQLite store on its own: group commit isolation, ordering, retention.

use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;

use super::SqliteStore;
use crate::config::SyncMode;
use crate::model::{ConvRef, EventBody, NewEvent, Pos, StoredEvent, Stream};
use crate::store::{
    AccountStore, CommitSink, Committed, ContactStore, Delta, EventStore, GroupStore, MessageStore, NewMessage, Span,
    StoreError, StoreResult,
};

#[derive(Default)]
struct Recorder(Mutex<Vec<Pos>>);

impl CommitSink for Recorder {
    fn committed(&self, batch: &Committed) {
        self.0.lock().extend(batch.events.iter().map(|e| e.pos));
    }
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("webim-store-{tag}-{}-{n}", std::process::id()))
}

async fn open(tag: &str) -> (SqliteStore, Arc<Recorder>, std::path::PathBuf) {
    let dir = temp_dir(tag);
    let rec = Arc::new(Recorder::default());
    (SqliteStore::open(&dir, SyncMode::Normal, rec.clone()).unwrap(), rec, dir)
}

/// Two friends with their direct conversation; returns its internal id.
async fn friends(store: &SqliteStore) -> i64 {
    let a = store.create_user("a_user".into(), "A".into(), "h".into()).await.unwrap();
    let b = store.create_user("b_user".into(), "B".into(), "h".into()).await.unwrap();
    let req = store.create_friend_request(a.id, b.id, String::new(), Box::new(|_| vec![])).await.unwrap();
    store.answer_friend_request(req.id, b.id, true, vec![]).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    snap.deltas
        .iter()
        .find_map(|d| match d {
            Delta::Conversation { id, conv: ConvRef::Direct(..) } => Some(*id),
            _ => None,
        })
        .unwrap()
}

impl SqliteStore {
    /// The catch-up read over the given spans of streams.
    async fn events_in(
        &self,
        spans: Vec<Span>,
        after: Pos,
        until: Pos,
        limit: usize,
    ) -> StoreResult<Vec<Arc<StoredEvent>>> {
        let newest = self.newest.clone();
        self.readers.read(move |conn| super::catch_up::events_between(conn, &spans, after, until, limit, &newest)).await
    }
}

fn message(conv: i64, sender: i64, id: &str) -> NewMessage {
    NewMessage { conv, conv_ref: ConvRef::Direct(1, 2), sender, client_msg_id: id.into(), body: format!("body {id}") }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_rolls_back_alone_inside_a_shared_commit() {
    let (store, _, dir) = open("isolation").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        // Every name twice: exactly one of each pair may win, whatever batch they share.
        tasks.push(tokio::spawn(
            async move { store.create_user(format!("user{}", i / 2), "x".into(), "h".into()).await },
        ));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::Conflict("username")) => conflicts += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((created, conflicts), (20, 20));
    assert!(store.user_by_username("USER7").await.unwrap().is_some(), "names are unique ignoring case");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_get_gapless_seqs_and_commit_in_position_order() {
    let (store, rec, dir) = open("seq").await;
    let conv = friends(&store).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.send_message(message(conv, 1 + i % 2, &format!("m{i}"))).await.unwrap()
        }));
    }
    let mut seqs: Vec<i64> = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().message.seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    let order = rec.0.lock().clone();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "the sink sees positions strictly ascending");
    let again = store.send_message(message(conv, 1, "m0")).await.unwrap();
    assert!(!again.created);
    assert_eq!(store.history(conv, ConvRef::Direct(1, 2), None, None, 0, 500).await.unwrap().len(), 200);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_send_stores_nothing_and_takes_no_position_or_seq() {
    let (store, rec, dir) = open("repeat").await;
    let conv = friends(&store).await;
    let first = store.send_message(message(conv, 1, "r1")).await.unwrap();
    let first_pos = *rec.0.lock().last().unwrap();
    // Queued in this order, likely into one commit: a repeat, a new message, a repeat.
    let (again, next, again_later) = tokio::join!(
        store.send_message(message(conv, 1, "r1")),
        store.send_message(message(conv, 1, "r2")),
        store.send_message(message(conv, 1, "r1")),
    );
    for repeat in [again.unwrap(), again_later.unwrap()] {
        assert!(!repeat.created);
        assert_eq!(
            (repeat.message.id, repeat.message.seq, &repeat.message.body),
            (first.message.id, 1, &first.message.body)
        );
    }
    let next = next.unwrap();
    assert!(next.created);
    assert_eq!(next.message.seq, 2, "seqs stay gapless");
    assert_eq!(rec.0.lock().last(), Some(&(first_pos + 1)), "the new message takes the next position");
    assert_eq!(store.history(conv, ConvRef::Direct(1, 2), None, None, 0, 10).await.unwrap().len(), 2);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_are_recognised_while_their_keys_are_held_after_they_are_copied_and_after_a_restart() {
    let (store, _, dir) = open("keys").await;
    let conv = friends(&store).await;
    let total = super::keys::FOLD_AT * 2 + 5;
    let mut first = Vec::new();
    for i in 0..total {
        first.push(store.send_message(message(conv, 1, &format!("k{i}"))).await.unwrap().message);
    }
    let copied: i64 =
        store.readers.read(|c| c.query_row("SELECT COUNT(*) FROM message_keys", [], |r| r.get(0))).await.unwrap();
    assert_eq!(copied, 2 * super::keys::FOLD_AT as i64, "copied twice");
    let check = |store: SqliteStore, first: Vec<crate::model::Message>| async move {
        for (i, original) in first.iter().enumerate() {
            let again = store.send_message(message(conv, 1, &format!("k{i}"))).await.unwrap();
            assert!(!again.created, "k{i} is a repeat");
            assert_eq!((again.message.id, again.message.seq), (original.id, original.seq));
        }
        let other = store.send_message(NewMessage { conv: conv + 1, ..message(conv, 1, "k0") }).await;
        assert!(matches!(other, Err(StoreError::Conflict("client_msg_id"))), "{other:?}");
        // History reads indexed and not yet indexed messages as one, in order.
        let all = store.history(conv, ConvRef::Direct(1, 2), None, None, 0, 500).await.unwrap();
        assert_eq!(all.iter().map(|m| m.id).collect::<Vec<_>>(), first.iter().map(|m| m.id).collect::<Vec<_>>());
        let n = first.len() as i64;
        let newest = store.history(conv, ConvRef::Direct(1, 2), None, None, 0, 3).await.unwrap();
        assert_eq!(newest.iter().map(|m| m.seq).collect::<Vec<_>>(), [n - 2, n - 1, n]);
        let after = store.history(conv, ConvRef::Direct(1, 2), None, Some(30), 0, 4).await.unwrap();
        assert_eq!(after.iter().map(|m| m.seq).collect::<Vec<_>>(), [31, 32, 33, 34]);
    };
    check(store.clone(), first.clone()).await;
    drop(store);
    let store = SqliteStore::open(&dir, SyncMode::Normal, Arc::new(Recorder::default())).unwrap();
    check(store.clone(), first.clone()).await;
    let next = store.send_message(message(conv, 1, "new")).await.unwrap();
    assert_eq!((next.created, next.message.seq), (true, total as i64 + 1));
    // Swept messages take their index entries with them: the same id is then a new message.
    store.sweep(crate::model::now_ms() + 1).await.unwrap();
    let left: (i64, i64) = store
        .readers
        .read(|c| {
            c.query_row("SELECT (SELECT COUNT(*) FROM message_keys), (SELECT COUNT(*) FROM message_seqs)", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
        .await
        .unwrap();
    assert_eq!(left, (0, 0));
    for id in ["k0", &format!("k{}", total - 1)] {
        assert!(store.send_message(message(conv, 1, id)).await.unwrap().created, "{id} after the sweep");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conversation_list_finds_the_last_message_indexed_or_not() {
    let (store, _, dir) = open("list").await;
    let conv = friends(&store).await;
    let last_of = |store: SqliteStore| async move {
        let list = store.conversations(1).await.unwrap();
        let row = list.iter().find(|c| c.id == conv).unwrap();
        row.last_message.as_ref().map(|m| (m.seq, m.body.clone()))
    };
    assert_eq!(last_of(store.clone()).await, None, "no message yet");
    for i in 0..super::keys::FOLD_AT {
        store.send_message(message(conv, 1, &format!("l{i}"))).await.unwrap();
    }
    // Any write starts a batch, which copies the held entries.
    store.writer.write(|_| Ok(())).await.unwrap();
    let n = super::keys::FOLD_AT as i64;
    let indexed: i64 = store
        .readers
        .read(move |c| c.query_row("SELECT COUNT(*) FROM message_seqs WHERE seq = ?1", [n], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(indexed, 1, "the last message is indexed");
    assert_eq!(last_of(store.clone()).await, Some((n, format!("body l{}", n - 1))));
    store.send_message(message(conv, 1, "newest")).await.unwrap();
    assert_eq!(last_of(store.clone()).await, Some((n + 1, "body newest".to_owned())), "found by the scan");
    std::fs::remove_dir_all(dir).ok();
}

/// Conversation `conv` as `user`'s conversation list gives it.
async fn listed(store: &SqliteStore, user: i64, conv: i64) -> crate::store::ConvRow {
    store.conversations(user).await.unwrap().into_iter().find(|c| c.id == conv).expect("listed")
}

/// The rows' own marks of conversation `conv`: its last seq and each member's read seq.
async fn rows_of(store: &SqliteStore, conv: i64) -> (i64, i64, i64) {
    let sql = "SELECT c.last_seq, (SELECT read_seq FROM members WHERE conv_id = c.id AND user_id = 1),
                      (SELECT read_seq FROM members WHERE conv_id = c.id AND user_id = 2)
               FROM conversations c WHERE c.id = ?1";
    store.readers.read(move |c| c.query_row(sql, [conv], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_seqs_and_read_marks_are_right_before_their_rows_hold_them_after_and_after_a_restart() {
    let (store, _, dir) = open("marks").await;
    let conv = friends(&store).await;
    let marks_of = |store: SqliteStore, user: i64| async move {
        let row = listed(&store, user, conv).await;
        (row.last_seq, row.read_seq, row.peer_read_seq, row.last_message.map(|m| m.seq))
    };
    for i in 0..3 {
        store.send_message(message(conv, 1, &format!("a{i}"))).await.unwrap();
    }
    store.send_message(message(conv, 2, "b0")).await.unwrap();
    assert_eq!(rows_of(&store, conv).await, (0, 0, 0), "not copied yet: the test reads past the rows");
    // A sender has read what they sent; the list shows the newest message and seq.
    assert_eq!(marks_of(store.clone(), 1).await, (4, 3, Some(4), Some(4)));
    assert_eq!(marks_of(store.clone(), 2).await, (4, 4, Some(3), Some(4)));
    let read = |store: SqliteStore, seq: i64| async move {
        store
            .mark_read(
                1,
                conv,
                seq,
                Box::new(|_| NewEvent::now(Stream::User(1), EventBody::Presence { user_id: 1, online: true })),
            )
            .await
            .unwrap()
    };
    assert_eq!(read(store.clone(), 2).await, None, "read already, by sending 3");
    assert_eq!(read(store.clone(), 9).await, Some(4), "up to the last seq, which the row does not hold yet");
    assert_eq!(marks_of(store.clone(), 1).await, (4, 4, Some(4), Some(4)));

    // Enough messages for a copy; any write starts the batch that makes it.
    let n = super::keys::FOLD_AT as i64;
    for i in 4..n {
        store.send_message(message(conv, 2, &format!("b{i}"))).await.unwrap();
    }
    store.writer.write(|_| Ok(())).await.unwrap();
    assert_eq!(rows_of(&store, conv).await, (n, 4, n), "copied to the rows");
    assert_eq!(marks_of(store.clone(), 1).await, (n, 4, Some(n), Some(n)));

    // Stored but not copied when the store stops: the rows get them when it opens again.
    store.send_message(message(conv, 1, "a3")).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&dir, SyncMode::Normal, Arc::new(Recorder::default())).unwrap();
    assert_eq!(rows_of(&store, conv).await, (n + 1, n + 1, n));
    assert_eq!(marks_of(store.clone(), 2).await, (n + 1, n, Some(n + 1), Some(n + 1)));
    assert_eq!(store.send_message(message(conv, 2, "b-last")).await.unwrap().message.seq, n + 2);
    assert_eq!(marks_of(store.clone(), 1).await, (n + 2, n + 1, Some(n + 2), Some(n + 2)));
    std::fs::remove_dir_all(dir).ok();
}

/// A store where user 1 sent three messages (`s0`–`s2`) that a sweep took before their copy.
async fn three_swept_before_their_copy(tag: &str) -> (SqliteStore, i64, std::path::PathBuf) {
    let (store, _, dir) = open(tag).await;
    let conv = friends(&store).await;
    for i in 0..3 {
        store.send_message(message(conv, 1, &format!("s{i}"))).await.unwrap();
    }
    assert_eq!(rows_of(&store, conv).await, (0, 0, 0), "not copied yet");
    store.sweep(crate::model::now_ms() + 1).await.unwrap();
    assert_eq!(rows_of(&store, conv).await, (3, 3, 0), "written before the messages went");
    (store, conv, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_of_messages_swept_before_their_copy_stay_on_the_rows() {
    let (store, conv, dir) = three_swept_before_their_copy("swept-marks").await;
    drop(store);
    let store = SqliteStore::open(&dir, SyncMode::Normal, Arc::new(Recorder::default())).unwrap();
    let next = store.send_message(message(conv, 2, "after")).await.unwrap();
    assert_eq!(next.message.seq, 4, "no seq given twice");
    let row = listed(&store, 1, conv).await;
    assert_eq!((row.last_seq, row.read_seq), (4, 3), "one unread");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sweep_the_writer_goes_on_from_what_it_holds_and_the_next_copy_writes_it() {
    let (store, conv, dir) = three_swept_before_their_copy("swept-held").await;
    // The writer still holds the swept messages' keys and marks: no restart in between.
    let again = store.send_message(message(conv, 1, "s0")).await.unwrap();
    assert!(again.created, "a swept message's key is free again");
    assert_eq!(again.message.seq, 4, "no seq given twice");
    let n = super::keys::FOLD_AT as i64;
    for i in 0..n {
        store.send_message(message(conv, 2, &format!("t{i}"))).await.unwrap();
    }
    // Any write starts a batch, which copies the held entries and marks if enough are held
    // (the swept messages' keys count until a copy drops them).
    store.writer.write(|_| Ok(())).await.unwrap();
    let (indexed, through, dangling): (i64, i64, i64) = store
        .readers
        .read(|c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM message_keys), (SELECT value FROM meta WHERE key = 'keys_through'),
                        (SELECT COUNT(*) FROM message_keys k WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = k.id))",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .await
        .unwrap();
    assert!(through >= again.message.id, "copied past the message after the sweep");
    assert_eq!(indexed, through - again.message.id + 1, "each message left up to there, once");
    assert_eq!(dangling, 0, "no entry of a swept message");
    let (last, read_1, read_2) = rows_of(&store, conv).await;
    assert_eq!(read_1, 4, "1's held mark, of the message after the sweep");
    assert!(last > 4 && last == read_2, "2's newest copied message: {last} {read_2}");
    let row = listed(&store, 1, conv).await;
    assert_eq!((row.last_seq, row.read_seq), (n + 4, 4));
    assert_eq!(listed(&store, 2, conv).await.read_seq, n + 4);
    let repeat = store.send_message(message(conv, 1, "s0")).await.unwrap();
    assert_eq!((repeat.created, repeat.message.id), (false, again.message.id), "found in the index now");
    let all = store.history(conv, ConvRef::Direct(1, 2), None, None, 0, 200).await.unwrap();
    assert_eq!(all.first().map(|m| m.seq), Some(4), "the swept messages stay gone");
    assert_eq!(all.len() as i64, n + 1);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joins_at_the_newest_seq_though_its_row_does_not_hold_it_yet() {
    let (store, _, dir) = open("join-marks").await;
    friends(&store).await;
    let group =
        store.create_group(1, "g".into(), crate::model::JoinPolicy::Open, false, Box::new(|_| vec![])).await.unwrap();
    let conv =
        store.conversations(1).await.unwrap().into_iter().find(|c| c.conv == ConvRef::Group(group.id)).unwrap().id;
    for i in 0..3 {
        let sent = NewMessage { conv_ref: ConvRef::Group(group.id), ..message(conv, 1, &format!("g{i}")) };
        store.send_message(sent).await.unwrap();
    }
    assert!(matches!(
        store.add_member(group.id, 2, 10, false, Box::new(|_| vec![])).await.unwrap(),
        crate::store::Joined::Added(_)
    ));
    assert_eq!(store.visible_from(conv, 2).await.unwrap(), 3, "history before joining stays hidden");
    let row = listed(&store, 2, conv).await;
    assert_eq!((row.last_seq, row.read_seq), (3, 3), "nothing unread");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_read_merges_messages_and_events_in_order() {
    let (store, _, dir) = open("fallback").await;
    let conv = friends(&store).await;
    store.send_message(message(conv, 1, "x1")).await.unwrap();
    store
        .append(vec![NewEvent::now(
            Stream::Conv(conv),
            EventBody::MessageRecalled { conversation_id: "d1-2".into(), seq: 1 },
        )])
        .await
        .unwrap();
    store.send_message(message(conv, 2, "x2")).await.unwrap();
    store.append(vec![NewEvent::now(Stream::User(9), EventBody::FriendRemoved { user_id: 1 })]).await.unwrap();
    let events = store
        .events_in(vec![Span::since(Stream::Conv(conv), 0), Span::since(Stream::User(1), 0)], 0, Pos::MAX, 10)
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| if e.message.is_some() { "message" } else { "event" }).collect();
    assert_eq!(kinds, ["message", "event", "message"]);
    assert!(events.windows(2).all(|w| w[0].pos < w[1].pos));
    let later = store.events_in(vec![Span::since(Stream::Conv(conv), 0)], events[0].pos, Pos::MAX, 10).await.unwrap();
    assert_eq!(later.len(), 2);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_read_starts_at_exactly_the_first_message_after_any_position() {
    let (store, _, dir) = open("after").await;
    let conv = friends(&store).await;
    let mut stored = Vec::new();
    for i in 0..60 {
        let sent = store.send_message(message(conv, 1 + i % 2, &format!("a{i}"))).await.unwrap();
        stored.push(sent.message.seq);
        // Other streams take positions in between, unevenly.
        for _ in 0..i % 3 {
            store.append(vec![NewEvent::now(Stream::User(9), EventBody::FriendRemoved { user_id: 1 })]).await.unwrap();
        }
    }
    let all = store.events_in(vec![Span::since(Stream::Conv(conv), 0)], 0, Pos::MAX, 1000).await.unwrap();
    assert_eq!(all.iter().map(|e| e.message.unwrap().seq).collect::<Vec<_>>(), stored);
    let head = all.last().unwrap().pos;
    for after in 0..=head + 1 {
        let got = store.events_in(vec![Span::since(Stream::Conv(conv), 0)], after, Pos::MAX, 1000).await.unwrap();
        let want: Vec<Pos> = all.iter().map(|e| e.pos).filter(|p| *p > after).collect();
        assert_eq!(got.iter().map(|e| e.pos).collect::<Vec<_>>(), want, "after {after}");
    }
    // When a message holds the highest position, a restart continues right after it.
    store.send_message(message(conv, 1, "last")).await.unwrap();
    let last = store.events_in(vec![Span::since(Stream::Conv(conv), 0)], head, Pos::MAX, 10).await.unwrap()[0].pos;
    drop(store);
    let store = SqliteStore::open(&dir, SyncMode::Normal, Arc::new(Recorder::default())).unwrap();
    store.send_message(message(conv, 2, "after-restart")).await.unwrap();
    let newest = store.events_in(vec![Span::since(Stream::Conv(conv), 0)], last, Pos::MAX, 10).await.unwrap();
    assert_eq!(newest.iter().map(|e| e.pos).collect::<Vec<_>>(), [last + 1]);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_read_keeps_to_its_window_and_each_streams_bound_however_far_back() {
    let (store, rec, dir) = open("window").await;
    let ab = friends(&store).await;
    let c = store.create_user("c_user".into(), "C".into(), "h".into()).await.unwrap();
    let req = store.create_friend_request(1, c.id, String::new(), Box::new(|_| vec![])).await.unwrap();
    store.answer_friend_request(req.id, c.id, true, vec![]).await.unwrap();
    let ac = store
        .snapshot()
        .await
        .unwrap()
        .deltas
        .iter()
        .find_map(|d| match d {
            Delta::Conversation { id, conv: ConvRef::Direct(..) } if *id != ab => Some(*id),
            _ => None,
        })
        .unwrap();
    rec.0.lock().clear();
    // The stream of every event committed from here, in order: each write commits one.
    let mut streams_of = Vec::new();
    for i in 0..50 {
        let (conv, conv_ref) = if i % 3 == 0 { (ac, ConvRef::Direct(1, c.id)) } else { (ab, ConvRef::Direct(1, 2)) };
        let msg = NewMessage { conv, conv_ref, sender: 1, client_msg_id: format!("w{i}"), body: "x".into() };
        store.send_message(msg).await.unwrap();
        streams_of.push(Stream::Conv(conv));
        if i % 4 == 0 {
            store.append(vec![NewEvent::now(Stream::User(1), EventBody::FriendRemoved { user_id: 9 })]).await.unwrap();
            streams_of.push(Stream::User(1));
        }
    }
    let positions = rec.0.lock().clone();
    assert_eq!(positions.len(), streams_of.len());
    let (first, head) = (positions[0], *positions.last().unwrap());
    let middle = positions[positions.len() / 2];
    let quarter = positions[positions.len() / 4];
    let span = |stream, from, until| Span { stream, from, until };
    let subscriptions = [
        vec![Span::since(Stream::Conv(ab), 0), Span::since(Stream::Conv(ac), middle), Span::since(Stream::User(1), 0)],
        vec![Span::since(Stream::Conv(ac), 0)],
        // Subscriptions that ended: a conversation left and joined again, a friendship ended.
        vec![
            span(Stream::Conv(ab), 0, quarter),
            span(Stream::Conv(ab), middle, Pos::MAX),
            span(Stream::User(1), 0, middle),
        ],
        vec![span(Stream::Conv(ac), first, quarter), span(Stream::Conv(ac), quarter + 3, middle + 1)],
    ];
    for streams in &subscriptions {
        for after in first - 1..=head {
            for until in [after + 2, after + 12, Pos::MAX] {
                for limit in [1000, 5] {
                    let want: Vec<Pos> = positions
                        .iter()
                        .zip(&streams_of)
                        .filter(|&(&p, s)| {
                            p <= until
                                && streams.iter().any(|t| t.stream == *s && p > after.max(t.from) && p <= t.until)
                        })
                        .map(|(p, _)| *p)
                        .take(limit)
                        .collect();
                    let got = store.events_in(streams.clone(), after, until, limit).await.unwrap();
                    let at = format!("after {after}, until {until}, limit {limit}, streams {streams:?}");
                    assert_eq!(got.iter().map(|e| e.pos).collect::<Vec<_>>(), want, "{at}");
                    for e in &got {
                        let i = positions.iter().position(|p| *p == e.pos).unwrap();
                        assert_eq!(e.stream, streams_of[i], "{at}");
                        if let Stream::Conv(conv) = e.stream {
                            assert_eq!(e.message.map(|m| m.conv), Some(conv), "{at}");
                        }
                    }
                }
            }
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_only_what_is_older_and_keeps_the_head_across_restarts() {
    let (store, _, dir) = open("retention").await;
    let conv = friends(&store).await;
    store.send_message(message(conv, 1, "old")).await.unwrap();
    let cutoff = crate::model::now_ms() - 60_000;
    assert_eq!(store.sweep(cutoff).await.unwrap(), 0, "nothing is a minute old yet");
    assert_eq!(store.history(conv, ConvRef::Direct(1, 2), None, None, 0, 10).await.unwrap().len(), 1);
    store.remove_friend(1, 2, vec![]).await.unwrap();
    let past = |store: SqliteStore| async move {
        store
            .readers
            .read(|c| c.query_row("SELECT COUNT(*) FROM past_subscriptions", [], |r| r.get::<_, i64>(0)))
            .await
            .unwrap()
    };
    assert_eq!(past(store.clone()).await, 2, "each side's ended friendship");
    let head = store.snapshot().await.unwrap().head;
    let floor = store.sweep(crate::model::now_ms() + 1).await.unwrap();
    assert_eq!(floor, head, "everything up to the newest message was swept");
    assert_eq!(past(store.clone()).await, 0, "what ended at or below the floor goes with it");
    let read = store.events_after(1, floor - 1, Pos::MAX, 10).await;
    assert!(matches!(read, Err(StoreError::Expired)), "a read from below the floor: {read:?}");
    assert!(store.events_after(1, floor, Pos::MAX, 10).await.unwrap().is_empty());
    assert!(store.history(conv, ConvRef::Direct(1, 2), None, None, 0, 10).await.unwrap().is_empty());
    // A friendship that ends above the floor is kept by the next sweep.
    store.send_message(message(conv, 1, "new")).await.unwrap();
    let req = store.create_friend_request(1, 2, String::new(), Box::new(|_| vec![])).await.unwrap();
    store.answer_friend_request(req.id, 2, true, vec![]).await.unwrap();
    store.remove_friend(1, 2, vec![]).await.unwrap();
    assert_eq!(store.sweep(cutoff).await.unwrap(), floor, "nothing new is old enough");
    assert_eq!(past(store.clone()).await, 2, "ended above the floor");
    drop(store);
    let reopened = SqliteStore::open(&dir, SyncMode::Normal, Arc::new(Recorder::default())).unwrap();
    let snap = reopened.snapshot().await.unwrap();
    assert!(snap.head >= head, "the head never moves back");
    assert_eq!(snap.floor, floor);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searching_100k_users_uses_the_indexes_and_stays_fast() {
    let (store, _, dir) = open("search").await;
    store
        .writer
        .write(|ctx| {
            let mut insert = ctx.conn.prepare_cached(
                "INSERT INTO users (username, display_name, password_hash, created_at, display_key) VALUES (?1, ?2, 'h', 0, lower(?2))",
            )?;
            for i in 0..100_000 {
                insert.execute((format!("user{i:06}"), format!("Person {i} Smith")))?;
            }
            Ok(())
        })
        .await
        .unwrap();
    store.create_user("zorro_the_fox".into(), "Don Diego".into(), "h".into()).await.unwrap();
    let reader = store.readers.clone();
    let plan = |sql: &'static str| {
        let reader = reader.clone();
        async move {
            reader
                .read(move |c| {
                    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let rows: Vec<String> = stmt.query_map([], |r| r.get(3))?.collect::<Result<_, _>>()?;
                    Ok(rows.join(" | "))
                })
                .await
                .unwrap()
        }
    };
    let trigram =
        plan("SELECT id FROM users WHERE id IN (SELECT rowid FROM users_search WHERE users_search MATCH '\"rro_t\"')")
            .await;
    assert!(trigram.contains("VIRTUAL TABLE"), "{trigram}");
    assert!(!trigram.contains("SCAN users "), "no scan of the users table: {trigram}");
    let prefix =
        plan("SELECT id FROM users WHERE (username >= 'zo' AND username < 'zp') OR (display_key >= 'zo' AND display_key < 'zp')").await;
    assert!(!prefix.contains("SCAN users"), "prefix search uses the name indexes: {prefix}");

    let started = std::time::Instant::now();
    let found = store.search_users("rro_t", 0, 50).await.unwrap();
    let substring = started.elapsed();
    assert_eq!(found.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), ["zorro_the_fox"]);
    let started = std::time::Instant::now();
    let page = store.search_users("user0999", 0, 50).await.unwrap();
    let wide = started.elapsed();
    assert_eq!(page.len(), 50, "user099900..user099999 match; one page of 50");
    assert_eq!(page[0].username, "user099900", "prefix matches first, by name");
    let next = store.search_users("user0999", 50, 50).await.unwrap();
    assert_eq!(next.len(), 50);
    assert!(next.iter().all(|u| !page.iter().any(|p| p.id == u.id)), "pages do not overlap");
    let started = std::time::Instant::now();
    let short = store.search_users("zo", 0, 50).await.unwrap();
    let prefix_time = started.elapsed();
    assert_eq!(short.len(), 1);
    eprintln!("search over 100,001 users: substring {substring:?}, 100-match prefix {wide:?}, 2-letter prefix {prefix_time:?}");
    // Generous bound for a shared 2-core machine; a table scan would still pass it, which is
    // why the query plans are checked above.
    for t in [substring, wide, prefix_time] {
        assert!(t < std::time::Duration::from_millis(500), "{t:?}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_is_rolled_back_and_the_writer_lives_on() {
    let (store, _, dir) = open("panic").await;
    let failed = store
        .writer
        .write(|ctx| -> crate::store::StoreResult<()> {
            ctx.conn.execute("INSERT INTO meta (key, value) VALUES ('half', 1)", [])?;
            panic!("a bug in a job");
        })
        .await;
    assert!(matches!(failed, Err(StoreError::Closed)));
    let user = store.create_user("survivor".into(), "S".into(), "h".into()).await.unwrap();
    assert!(user.id > 0, "the writer still commits");
    let half: i64 = store
        .readers
        .read(|c| c.query_row("SELECT COUNT(*) FROM meta WHERE key = 'half'", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(half, 0, "the panicking job's write was rolled back");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preallocated_log_holds_commits_that_survive_a_crash() {
    let dir = temp_dir("wal");
    let store = SqliteStore::open(&dir, SyncMode::Full, Arc::new(Recorder::default())).unwrap();
    let conv = friends(&store).await;
    for id in ["m1", "m2", "m3"] {
        store.send_message(message(conv, 1, id)).await.unwrap();
    }
    let wal = |d: &std::path::Path| std::fs::metadata(d.join("webim.db-wal")).unwrap().len();
    assert!(wal(&dir) >= super::wal::full_size(), "the log was given its full size");
    // The files as a crash would leave them: the store still open, nothing checkpointed.
    let image = temp_dir("wal-image");
    std::fs::create_dir_all(&image).unwrap();
    for name in ["webim.db", "webim.db-wal"] {
        std::fs::copy(dir.join(name), image.join(name)).unwrap();
    }
    drop(store);
    let recovered = SqliteStore::open(&image, SyncMode::Full, Arc::new(Recorder::default())).unwrap();
    let bodies = |msgs: Vec<crate::model::Message>| msgs.into_iter().map(|m| m.body).collect::<Vec<_>>();
    let history = recovered.history(conv, ConvRef::Direct(1, 2), None, None, 0, 10).await.unwrap();
    assert_eq!(bodies(history), ["body m1", "body m2", "body m3"]);
    recovered.send_message(message(conv, 1, "m4")).await.unwrap();
    let history = recovered.history(conv, ConvRef::Direct(1, 2), None, None, 0, 10).await.unwrap();
    assert_eq!(history.last().map(|m| (m.seq, m.body.as_str())), Some((4, "body m4")));
    drop(recovered);
    std::fs::remove_dir_all(dir).ok();
    std::fs::remove_dir_all(image).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_starts_the_log_again_after_many_small_commits() {
    let (store, _, dir) = open("restart").await;
    let conv = friends(&store).await;
    let salt = || super::wal::salt(&dir.join("webim.db"));
    store.send_message(message(conv, 1, "first")).await.unwrap();
    let before = salt();
    // One send at a time: each its own commit, far below the log's page limit.
    for i in 0..super::checkpoint::COMMITS_PER_CHECKPOINT + 2 {
        store.send_message(message(conv, 1, &format!("m{i}"))).await.unwrap();
    }
    assert_ne!(salt(), before, "the log was checkpointed and started again");
    let last = store.history(conv, ConvRef::Direct(1, 2), None, None, 0, 1).await.unwrap();
    assert_eq!(last[0].seq, super::checkpoint::COMMITS_PER_CHECKPOINT as i64 + 3);
    std::fs::remove_dir_all(dir).ok();
}

/// Holds the writer thread inside a job until the returned sender is used: whatever is
/// queued meanwhile forms the next batch.
async fn hold_the_writer(
    store: &SqliteStore,
) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<StoreResult<()>>) {
    let (started, has_started) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let hold = store.writer.clone();
    let held = tokio::spawn(async move {
        hold.write(move |_| {
            started.send(()).unwrap();
            released.recv().unwrap();
            Ok(())
        })
        .await
    });
    tokio::task::spawn_blocking(move || has_started.recv().unwrap()).await.unwrap();
    (release, held)
}

/// Queues, in one batch behind a job that holds the writer, a guarded job that inserts `a`
/// and then an unguarded one that inserts `b` (if `write_first`) and fails.
async fn batch_with_a_failing_checked_job(
    store: &SqliteStore,
    write_first: bool,
) -> (StoreResult<()>, StoreResult<()>) {
    let (release, held) = hold_the_writer(store).await;
    let guarded = store
        .writer
        .write(|ctx| Ok(ctx.conn.execute("INSERT INTO meta (key, value) VALUES ('a', 1)", []).map(|_| ())?));
    let checked = store.writer.write_checked(move |ctx| {
        if write_first {
            ctx.conn.execute("INSERT INTO meta (key, value) VALUES ('b', 1)", [])?;
        }
        Err::<(), _>(StoreError::Conflict("test"))
    });
    let (mut guarded, mut checked) = (std::pin::pin!(guarded), std::pin::pin!(checked));
    // A write is queued when first polled: poll each once, in this order.
    for queued in [guarded.as_mut().poll(&mut noop_context()), checked.as_mut().poll(&mut noop_context())] {
        assert!(queued.is_pending());
    }
    release.send(()).unwrap();
    held.await.unwrap().unwrap();
    (guarded.await, checked.await)
}

fn noop_context() -> std::task::Context<'static> {
    std::task::Context::from_waker(std::task::Waker::noop())
}

async fn meta_keys(store: &SqliteStore) -> Vec<String> {
    store
        .readers
        .read(|c| {
            c.prepare("SELECT key FROM meta WHERE key IN ('a', 'b') ORDER BY key")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_savepoint_that_fails_before_any_change_leaves_its_batch_alone() {
    let (store, _, dir) = open("checked-ok").await;
    let (guarded, checked) = batch_with_a_failing_checked_job(&store, false).await;
    assert!(guarded.is_ok(), "{guarded:?}");
    assert!(matches!(checked, Err(StoreError::Conflict("test"))), "{checked:?}");
    assert_eq!(meta_keys(&store).await, ["a"]);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_without_savepoint_that_fails_after_a_change_fails_its_whole_batch() {
    let (store, _, dir) = open("checked-abort").await;
    let (guarded, checked) = batch_with_a_failing_checked_job(&store, true).await;
    assert!(matches!(guarded, Err(StoreError::Database(_))), "the batch's other job fails too: {guarded:?}");
    assert!(checked.is_err());
    assert!(meta_keys(&store).await.is_empty(), "nothing of the batch is stored");
    let user = store.create_user("after".into(), "A".into(), "h".into()).await.unwrap();
    assert!(user.id > 0, "the writer still commits");
    std::fs::remove_dir_all(dir).ok();
}

/// Records the thread each commit was published on.
#[derive(Default)]
struct Threads(Mutex<Vec<(std::thread::ThreadId, Option<String>)>>);

impl CommitSink for Threads {
    fn committed(&self, _: &Committed) {
        let me = std::thread::current();
        self.0.lock().push((me.id(), me.name().map(str::to_owned)));
    }
}

#[tokio::test]
async fn commits_are_published_on_the_runtime_before_their_writers_hear_back() {
    let dir = temp_dir("finish");
    let threads = Arc::new(Threads::default());
    let store = SqliteStore::open(&dir, SyncMode::Normal, threads.clone()).unwrap();
    friends(&store).await;
    // Published already when the writes returned, and by this (the runtime's only) thread:
    // wake-ups from there join the runtime's own queue.
    let seen = threads.0.lock().iter().map(|(id, _)| *id).collect::<Vec<_>>();
    assert!(!seen.is_empty() && seen.iter().all(|id| *id == std::thread::current().id()), "{seen:?}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_store_opened_outside_a_runtime_publishes_on_the_writer_thread() {
    let dir = temp_dir("finish-here");
    let threads = Arc::new(Threads::default());
    let store = SqliteStore::open(&dir, SyncMode::Normal, threads.clone()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(friends(&store));
    let seen = threads.0.lock().iter().map(|(_, name)| name.clone()).collect::<Vec<_>>();
    assert!(!seen.is_empty() && seen.iter().all(|name| name.as_deref() == Some("webim-writer")), "{seen:?}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_rolled_back_to_its_jobs_savepoint_leaves_its_seq_to_the_next_send() {
    let (store, _, dir) = open("seq-savepoint").await;
    let conv = friends(&store).await;
    store.send_message(message(conv, 1, "m1")).await.unwrap();
    // A guarded job that sends and then fails: only its savepoint is undone.
    let failed = store
        .writer
        .write(move |ctx| {
            super::send_message(ctx, message(conv, 1, "m2"))?;
            Err::<(), _>(StoreError::Conflict("test"))
        })
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict("test"))), "{failed:?}");
    let next = store.send_message(message(conv, 1, "m3")).await.unwrap();
    assert_eq!(next.message.seq, 2, "the undone seq is given again: no gap");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_rolled_back_with_its_batch_leaves_its_seq_to_the_next_send() {
    let (store, _, dir) = open("seq-rollback").await;
    let conv = friends(&store).await;
    store.send_message(message(conv, 1, "m1")).await.unwrap();
    let (release, held) = hold_the_writer(&store).await;
    // In the next batch: a send (which moves the conversation's last seq), then a job that
    // fails after a change, which takes the whole batch down.
    let lost = store.send_message(message(conv, 1, "m2"));
    let failing = store.writer.write_checked(|ctx| {
        ctx.conn.execute("INSERT INTO meta (key, value) VALUES ('b', 1)", [])?;
        Err::<(), _>(StoreError::Conflict("test"))
    });
    let (mut lost, mut failing) = (std::pin::pin!(lost), std::pin::pin!(failing));
    assert!(lost.as_mut().poll(&mut noop_context()).is_pending());
    assert!(failing.as_mut().poll(&mut noop_context()).is_pending());
    release.send(()).unwrap();
    held.await.unwrap().unwrap();
    assert!(matches!(lost.await, Err(StoreError::Database(_))), "the send fails with its batch");
    assert!(failing.await.is_err());
    let next = store.send_message(message(conv, 1, "m3")).await.unwrap();
    assert_eq!(next.message.seq, 2, "the rolled-back seq is given again: no gap");
    let history = store.history(conv, ConvRef::Direct(1, 2), None, None, 0, 10).await.unwrap();
    assert_eq!(history.iter().map(|m| (m.seq, m.client_msg_id.as_str())).collect::<Vec<_>>(), [(1, "m1"), (2, "m3")]);
    assert_eq!(listed(&store, 1, conv).await.last_seq, 2, "readers agree with what the writer gave");
    std::fs::remove_dir_all(dir).ok();
}

/// The calling thread's scheduling policy and nice value.
#[cfg(target_os = "linux")]
fn scheduling() -> (libc::c_int, libc::c_int) {
    let mut policy = 0;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: both out-pointers are live locals; the calls only read this thread's scheduling.
    unsafe {
        assert_eq!(libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param), 0);
        (policy, libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t))
    }
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_runs_as_a_batch_thread_behind_the_request_threads() {
    let (store, _, dir) = open("sched").await;
    let (writer_policy, writer_nice) = store.writer.write(|_| Ok(scheduling())).await.unwrap();
    let (policy, nice) = scheduling();
    assert_eq!(writer_policy, libc::SCHED_BATCH);
    assert_eq!(writer_nice, (nice + 5).min(19), "five nicer than the rest of the process");
    assert_eq!(policy, libc::SCHED_OTHER, "the other threads keep theirs");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn no_statement_takes_its_limit_as_a_plain_parameter() {
    // SQLite compiles such a statement again at every bind (`catch_up.rs`): every source
    // file is read, with its spacing and case evened out, for a parameter right after LIMIT.
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("sqlite/tests.rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 20, "the sources were not found");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap().to_lowercase();
        let even: String = text.split_whitespace().collect::<Vec<_>>().join(" ").replace("( ", "(");
        for plain in ["limit ?", "limit (?", "limit :", "limit @", "limit $"] {
            assert!(!even.contains(plain), "{} has `{plain}`: write `LIMIT +?N`", file.display());
        }
    }
}
