//! Each conversation's last `seq` and position, and each sender's read mark, as the newest
//! messages move them: held by the writer and written to `conversations` and `members` in
//! bulk, when the newest messages' index entries are copied (`keys.rs`), not with each message.
//!
//! Written with each message, they put a conversation's row and its sender's member row in
//! every group commit's log: two more pages per conversation that sent, scattered over both
//! tables, and written again by each checkpoint. Held here, the server wrote about a third
//! fewer bytes to disk per message in `direct` and ran ~7 % fewer instructions per message;
//! `send` gained 12–15 %, `direct`'s throughput did not change measurably (BENCHMARKS.md,
//! twenty-first measurement).
//!
//! Between two copies the rows hold the marks as of the last one: the writer answers from
//! here, and a reader takes the greater of a row and what the messages not yet indexed
//! (`unindexed_messages`) say, in one read transaction, as the copy moves both together; a
//! catch-up asks [`Newest`] which conversations have any.

use std::sync::Arc;

use parking_lot::RwLock;
use rusqlite::Connection;

use super::held::{Held, Sql};
use crate::fast_map::FastMap;
use crate::model::{ConvId, Pos, UserId};

/// Each conversation's newest message position since the store opened, shared by the writer
/// and the readers: a catch-up skips a conversation with nothing after its bound, which its
/// row's `last_pos` alone no longer tells. The writer raises it when it stores a message,
/// before the commit, so that whatever a reader's snapshot holds is here already; a batch
/// rolled back leaves positions too high, which only costs a look. Never lowered nor emptied:
/// one entry per conversation that had a message since the store opened, as the router keeps
/// one per conversation anyway.
#[derive(Default)]
pub struct Newest(RwLock<FastMap<ConvId, Pos>>);

impl Newest {
    /// The newest position stored in `conv` since the store opened, or 0.
    pub fn of(&self, conv: ConvId) -> Pos {
        self.0.read().get(&conv).copied().unwrap_or(0)
    }

    fn raise(&self, conv: ConvId, pos: Pos) {
        let mut newest = self.0.write();
        let at = newest.entry(conv).or_insert(pos);
        *at = (*at).max(pos);
    }
}

/// Most conversations whose last `seq` is kept; past it only those of messages not yet
/// copied are kept, so a server with millions of conversations keeps only the busy ones.
const LAST_SEQS_MAX: usize = 1 << 16;

/// A `seq`, and the id and position of the message that took it (0: read from the row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    seq: i64,
    id: i64,
    pos: Pos,
}

/// A value as it was before a change of the open batch.
enum Undo {
    Last(ConvId, Option<Mark>),
    Sent((ConvId, UserId), Option<Mark>),
}

/// The marks of the messages above the last copy, and conversations' last seqs read since.
pub struct Marks {
    /// A conversation's last `seq`: of a message not copied yet (its id above `copied`), or
    /// as its row holds it.
    last: FastMap<ConvId, Mark>,
    /// The last `seq` a user sent in a conversation, among the messages not copied yet.
    sent: FastMap<(ConvId, UserId), Mark>,
    /// The highest message id whose marks the rows hold.
    copied: i64,
    /// Changes of the open batch, oldest first.
    undo: Vec<Undo>,
    /// Shared with the readers.
    newest: Arc<Newest>,
}

impl Marks {
    /// Nothing held; the rows hold the marks of every message up to id `copied`; positions
    /// go to `newest` too.
    pub fn new(copied: i64, newest: Arc<Newest>) -> Self {
        Marks { last: FastMap::default(), sent: FastMap::default(), copied, undo: Vec::new(), newest }
    }

    /// The conversation's last `seq`: from here, or as its row holds it.
    pub fn last_seq(&mut self, held: &mut Held<'_>, conv: ConvId) -> rusqlite::Result<i64> {
        if let Some(m) = self.last.get(&conv) {
            return Ok(m.seq);
        }
        let seq: i64 = held.get(Sql::LastSeq)?.query_row([conv], |r| r.get(0))?;
        // No undo needed: nothing in a batch moves a row that has no mark held here.
        self.make_room(conv);
        self.last.insert(conv, Mark { seq, id: 0, pos: 0 });
        Ok(seq)
    }

    /// The highest `seq` `user` sent in the conversation since the last copy, or 0: their
    /// read mark is at least that.
    pub fn sent_seq(&self, conv: ConvId, user: UserId) -> i64 {
        self.sent.get(&(conv, user)).map_or(0, |m| m.seq)
    }

    /// Message `id` took `seq` and position `pos` in the conversation, sent by `sender`, in
    /// the open batch.
    pub fn stored(&mut self, conv: ConvId, sender: UserId, seq: i64, id: i64, pos: Pos) {
        self.newest.raise(conv, pos);
        let mark = Mark { seq, id, pos };
        self.make_room(conv);
        let before = self.last.insert(conv, mark);
        self.undo.push(Undo::Last(conv, before));
        let before = self.sent.insert((conv, sender), mark);
        self.undo.push(Undo::Sent((conv, sender), before));
    }

    fn make_room(&mut self, conv: ConvId) {
        if self.last.len() >= LAST_SEQS_MAX && !self.last.contains_key(&conv) {
            let copied = self.copied;
            self.last.retain(|_, m| m.id > copied);
        }
    }

    /// Where the open batch's changes stand, to undo a job's later ones with [`Marks::undo_to`].
    pub fn savepoint(&self) -> usize {
        self.undo.len()
    }

    /// Undoes the changes made since `savepoint`, newest first.
    pub fn undo_to(&mut self, savepoint: usize) {
        while self.undo.len() > savepoint {
            match self.undo.pop().expect("longer than the savepoint") {
                Undo::Last(conv, Some(m)) => drop(self.last.insert(conv, m)),
                Undo::Last(conv, None) => drop(self.last.remove(&conv)),
                Undo::Sent(key, Some(m)) => drop(self.sent.insert(key, m)),
                Undo::Sent(key, None) => drop(self.sent.remove(&key)),
            }
        }
    }

    /// The open batch is durable, with a copy through message id `copied` if it made one.
    pub fn committed(&mut self, copied: Option<i64>) {
        self.undo.clear();
        if let Some(copied) = copied {
            self.copied = copied;
            self.sent.retain(|_, m| m.id > copied);
        }
    }

    /// The open batch was rolled back: its changes with it.
    pub fn rolled_back(&mut self) {
        self.undo_to(0);
    }

    /// Writes the marks of every message not copied yet to the rows, inside the batch that
    /// copies their index entries, before it stores anything. From memory and in key order,
    /// one row at a time: [`copy`] reads the messages back and groups them twice, ~8.3k
    /// instructions per message copied, where this is lost in callgrind's run-to-run spread
    /// (BENCHMARKS.md, twenty-second measurement).
    pub fn write(&self, held: &mut Held<'_>) -> rusqlite::Result<()> {
        let mut last: Vec<(ConvId, Mark)> =
            self.last.iter().filter(|(_, m)| m.id > self.copied).map(|(c, m)| (*c, *m)).collect();
        last.sort_unstable_by_key(|(conv, _)| *conv);
        let set_last = held.get(Sql::SetLast)?;
        for (conv, m) in last {
            set_last.execute([conv, m.seq, m.pos])?;
        }
        let mut sent: Vec<((ConvId, UserId), i64)> =
            self.sent.iter().filter(|(_, m)| m.id > self.copied).map(|(k, m)| (*k, m.seq)).collect();
        sent.sort_unstable_by_key(|(key, _)| *key);
        let set_read = held.get(Sql::SetRead)?;
        for ((conv, user), seq) in sent {
            set_read.execute([conv, user, seq])?;
        }
        Ok(())
    }
}

/// Writes the marks of messages with ids in `from..=upto` to the rows, inside the caller's
/// transaction, from the messages themselves: for when the writer holds none of them (on
/// open, and before a sweep deletes messages). Marks only move forward: a row already past
/// them (a member who joined since they sent) keeps its own.
pub fn copy(conn: &Connection, from: i64, upto: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE conversations SET last_seq = f.seq, last_pos = f.pos
         FROM (SELECT conv_id, MAX(seq) AS seq, MAX(pos) AS pos FROM messages
               WHERE id > ?1 AND id <= ?2 GROUP BY conv_id) AS f
         WHERE conversations.id = f.conv_id AND conversations.last_seq < f.seq",
    )?
    .execute([from, upto])?;
    conn.prepare_cached(
        "UPDATE members SET read_seq = f.seq
         FROM (SELECT conv_id, sender_id, MAX(seq) AS seq FROM messages
               WHERE id > ?1 AND id <= ?2 GROUP BY conv_id, sender_id) AS f
         WHERE members.conv_id = f.conv_id AND members.user_id = f.sender_id AND members.read_seq < f.seq",
    )?
    .execute([from, upto])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO conversations (id, kind, user_a, user_b) VALUES (1, 'direct', 7, 8), (2, 'direct', 7, 9);
             INSERT INTO members (conv_id, user_id, joined_pos) VALUES (1, 7, 0), (1, 8, 0), (2, 7, 0), (2, 9, 0);",
        )
        .unwrap();
        conn
    }

    fn message(conn: &Connection, id: i64, conv: ConvId, seq: i64, sender: UserId) {
        conn.execute(
            "INSERT INTO messages (id, conv_id, seq, sender_id, client_msg_id, body, ts, pos)
             VALUES (?1, ?2, ?3, ?4, ?1, 'hi', 0, ?1 * 10)",
            [id, conv, seq, sender],
        )
        .unwrap();
    }

    fn rows(conn: &Connection) -> Vec<(i64, i64, i64, i64)> {
        conn.prepare(
            "SELECT c.id, c.last_seq, c.last_pos, m.read_seq FROM conversations c
             JOIN members m ON m.conv_id = c.id AND m.user_id = 7 ORDER BY c.id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn a_copy_moves_each_conversation_and_sender_to_their_newest_message_in_range() {
        let conn = store();
        message(&conn, 1, 1, 1, 7);
        message(&conn, 2, 1, 2, 8);
        message(&conn, 3, 2, 1, 7);
        message(&conn, 4, 1, 3, 8);
        copy(&conn, 0, 3).unwrap();
        assert_eq!(rows(&conn), [(1, 2, 20, 1), (2, 1, 30, 1)], "message 4 is past the range");
        copy(&conn, 3, 4).unwrap();
        assert_eq!(rows(&conn), [(1, 3, 40, 1), (2, 1, 30, 1)], "7 sent nothing more");
        let read_8: i64 =
            conn.query_row("SELECT read_seq FROM members WHERE conv_id = 1 AND user_id = 8", [], |r| r.get(0)).unwrap();
        assert_eq!(read_8, 3);
    }

    #[test]
    fn the_held_marks_write_what_a_copy_from_the_messages_writes() {
        let (from_memory, from_messages) = (store(), store());
        let mut held = Held::new(&from_memory);
        // Message 1 was copied before; the rest are held.
        let mut marks = Marks::new(1, Arc::default());
        let sent = [(2, 1, 2, 8), (3, 2, 1, 7), (4, 1, 3, 7), (5, 2, 2, 9), (6, 1, 4, 8)];
        for conn in [&from_memory, &from_messages] {
            message(conn, 1, 1, 1, 7);
            for (id, conv, seq, sender) in sent {
                message(conn, id, conv, seq, sender);
            }
        }
        for (id, conv, seq, sender) in sent {
            marks.stored(conv, sender, seq, id, id * 10);
        }
        marks.write(&mut held).unwrap();
        copy(&from_messages, 1, 6).unwrap();
        let all = |conn: &Connection| -> Vec<(i64, i64, i64, i64, i64)> {
            conn.prepare(
                "SELECT c.id, c.last_seq, c.last_pos, m.user_id, m.read_seq FROM conversations c
                 JOIN members m ON m.conv_id = c.id ORDER BY c.id, m.user_id",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        assert_eq!(all(&from_memory), all(&from_messages));
        assert_eq!(all(&from_memory), [(1, 4, 60, 7, 3), (1, 4, 60, 8, 4), (2, 2, 50, 7, 1), (2, 2, 50, 9, 2)]);
        // Written again over rows already past them (a later join read the row, say): unmoved.
        from_memory.execute("UPDATE conversations SET last_seq = 9, last_pos = 90 WHERE id = 1", []).unwrap();
        marks.write(&mut held).unwrap();
        assert_eq!(all(&from_memory)[0], (1, 9, 90, 7, 3));
    }

    #[test]
    fn a_copy_rolled_back_with_its_batch_is_written_again_by_the_next() {
        let conn = store();
        let mut held = Held::new(&conn);
        let mut marks = Marks::new(0, Arc::default());
        message(&conn, 1, 1, 1, 7);
        marks.stored(1, 7, 1, 1, 10);
        marks.committed(None);
        // The batch that copies: the marks written, then a message of its own, then the
        // whole batch rolled back.
        conn.execute_batch("BEGIN").unwrap();
        marks.write(&mut held).unwrap();
        assert_eq!(rows(&conn), [(1, 1, 10, 1), (2, 0, 0, 0)]);
        marks.stored(1, 8, 2, 2, 20);
        conn.execute_batch("ROLLBACK").unwrap();
        marks.rolled_back();
        assert_eq!(rows(&conn), [(1, 0, 0, 0), (2, 0, 0, 0)]);
        // The next batch copies again: the first message's marks, not the rolled-back one's.
        conn.execute_batch("BEGIN").unwrap();
        marks.write(&mut held).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        marks.committed(Some(1));
        assert_eq!(rows(&conn), [(1, 1, 10, 1), (2, 0, 0, 0)]);
        let read_8: i64 =
            conn.query_row("SELECT read_seq FROM members WHERE conv_id = 1 AND user_id = 8", [], |r| r.get(0)).unwrap();
        assert_eq!(read_8, 0, "8's message went with its batch");
        assert_eq!(marks.last_seq(&mut held, 1).unwrap(), 1);
    }

    #[test]
    fn a_copy_never_moves_a_mark_back() {
        let conn = store();
        message(&conn, 1, 1, 1, 7);
        conn.execute_batch("UPDATE conversations SET last_seq = 5, last_pos = 50; UPDATE members SET read_seq = 5")
            .unwrap();
        copy(&conn, 0, 1).unwrap();
        assert_eq!(rows(&conn), [(1, 5, 50, 5), (2, 5, 50, 5)]);
    }

    #[test]
    fn the_writer_answers_from_what_it_holds_and_forgets_a_rolled_back_batch() {
        let conn = store();
        conn.execute("UPDATE conversations SET last_seq = 4 WHERE id = 1", []).unwrap();
        let mut held = Held::new(&conn);
        let mut marks = Marks::new(0, Arc::default());
        assert_eq!(marks.last_seq(&mut held, 1).unwrap(), 4, "from the row");
        marks.stored(1, 7, 5, 1, 10);
        marks.committed(None);
        marks.stored(1, 8, 6, 2, 20);
        let job = marks.savepoint();
        marks.stored(2, 8, 1, 3, 30);
        assert_eq!((marks.last_seq(&mut held, 1).unwrap(), marks.last_seq(&mut held, 2).unwrap()), (6, 1));
        marks.undo_to(job);
        assert_eq!(marks.last_seq(&mut held, 2).unwrap(), 0, "the job's change undone; the row again");
        assert_eq!((marks.sent_seq(1, 7), marks.sent_seq(1, 8)), (5, 6));
        marks.rolled_back();
        assert_eq!(marks.last_seq(&mut held, 1).unwrap(), 5, "the committed batch's mark stays");
        assert_eq!((marks.newest.of(1), marks.newest.of(2), marks.newest.of(3)), (20, 30, 0), "never lowered");
        assert_eq!((marks.sent_seq(1, 7), marks.sent_seq(1, 8)), (5, 0));
        marks.committed(Some(1));
        assert_eq!(marks.sent_seq(1, 7), 0, "copied: the row holds it now");
        assert_eq!(marks.last_seq(&mut held, 1).unwrap(), 5);
    }

    #[test]
    fn a_full_map_keeps_only_the_marks_not_copied_yet() {
        let conn = store();
        let mut held = Held::new(&conn);
        let mut marks = Marks::new(10, Arc::default());
        conn.execute(
            "WITH RECURSIVE ids(id) AS (SELECT 100 UNION ALL SELECT id + 1 FROM ids WHERE id < 98 + ?1)
             INSERT INTO conversations (id, kind) SELECT id, 'group' FROM ids",
            [LAST_SEQS_MAX as i64],
        )
        .unwrap();
        for conv in 100..100 + LAST_SEQS_MAX as i64 - 1 {
            marks.last_seq(&mut held, conv).unwrap();
        }
        marks.stored(1, 7, 9, 11, 110);
        assert_eq!(marks.last.len(), LAST_SEQS_MAX);
        assert_eq!(marks.last_seq(&mut held, 2).unwrap(), 0);
        assert_eq!(marks.last.len(), 2, "read rows dropped, the mark not copied kept");
        assert_eq!(marks.last_seq(&mut held, 1).unwrap(), 9);
    }
}
