//! Index entries of the newest messages, written in bulk by the writer: their idempotency
//! keys (`sender_id`, `client_msg_id`) to `message_keys`, their places (`conv_id`, `seq`) to
//! `message_seqs`.
//!
//! An index on either puts each message on a leaf of its sender or of its conversation, so a
//! group commit of messages from 64 senders wrote two more pages per message to the log, and
//! the pages a commit writes were most of the writer's cost (BENCHMARKS.md, eleventh
//! measurement). Instead a message is only appended to `messages`, its key is held here in
//! memory, and every [`FOLD_AT`] messages both kinds of entries are copied in one statement
//! each, so that a busy sender's or conversation's leaf is written once for all its messages
//! since the last copy. Readers find the messages above `keys_through` by scanning the end of
//! `messages` (the view `conv_messages`). After a restart the keys not yet copied are read
//! back from `messages`.
//!
//! The batch that copies them writes the same messages' marks too: conversations' last seqs
//! and senders' read marks (`marks.rs`).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use super::held::{Held, Sql};
use crate::model::UserId;

/// Messages stored before their entries are copied: bounds the keys held in memory, a
/// reader's scan of the messages not yet indexed, and the work of the one commit that copies
/// them, and sets how many messages share the leaf writes of that copy. 8,192 made `direct`
/// ~6 % faster than 4,096 (each copy writes about one leaf per busy conversation and sender,
/// whatever its size); 16,384 no faster again, as each copy holds up its batch's sends for
/// longer. A catch-up reads the messages not yet indexed in order, about 5 ns each
/// (BENCHMARKS.md, twenty-second measurement). Small in tests, so that they copy often.
pub const FOLD_AT: usize = if cfg!(test) { 16 } else { 8192 };

/// The keys of messages with ids above `through`, which the index tables do not hold yet.
pub struct RecentKeys {
    /// Not a fast hash: `client_msg_id` is chosen by clients.
    recent: HashMap<(UserId, Box<str>), i64>,
    /// The highest message id whose entries the index tables hold.
    through: i64,
    /// Ids are given here, never below `through`: SQLite would number a message after the
    /// highest id left, which a sweep of the newest messages could take below it.
    next_id: i64,
    /// The number of held keys at which the next copy is tried; raised after a failed one.
    copy_at: usize,
    /// The first id of the open batch: ids grow, so the batch's keys are those from here.
    batch_first_id: i64,
    /// The `through` of a copy made in the open batch, to apply once it commits.
    copied_through: Option<i64>,
}

impl RecentKeys {
    /// Reads back the keys of the messages that were stored but not yet copied.
    pub fn load(conn: &Connection) -> rusqlite::Result<Self> {
        let through = super::meta(conn, "keys_through")?;
        let mut recent = HashMap::new();
        let mut stmt = conn.prepare("SELECT sender_id, client_msg_id, id FROM messages WHERE id > ?1")?;
        let rows = stmt.query_map([through], |r| Ok(((r.get(0)?, r.get::<_, String>(1)?.into()), r.get(2)?)))?;
        for row in rows {
            let (key, id) = row?;
            recent.insert(key, id);
        }
        let last: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM messages", [], |r| r.get(0))?;
        let next_id = last.max(through) + 1;
        Ok(RecentKeys { recent, through, next_id, copy_at: FOLD_AT, batch_first_id: next_id, copied_through: None })
    }

    /// The id of the message `sender` stored under `client_msg_id`, if any. The message may
    /// have been swept since, or rolled back with its job: callers check that it exists.
    pub fn find(&self, held: &mut Held<'_>, sender: UserId, client_msg_id: &str) -> rusqlite::Result<Option<i64>> {
        if let Some(&id) = self.recent.get(&(sender, Box::from(client_msg_id))) {
            return Ok(Some(id));
        }
        held.get(Sql::FindKey)?.query_row(rusqlite::params![sender, client_msg_id], |r| r.get(0)).optional()
    }

    /// The id the next stored message takes.
    pub fn next_id(&self) -> i64 {
        self.next_id
    }

    /// Records the key of a message just stored under [`RecentKeys::next_id`] in the open batch.
    pub fn stored(&mut self, sender: UserId, client_msg_id: &str) {
        self.recent.insert((sender, client_msg_id.into()), self.next_id);
        self.next_id += 1;
    }

    /// At the start of a batch, inside its transaction: marks where the batch's keys begin,
    /// and once enough messages are held, copies their entries to the index tables, so that
    /// the copy is as durable as the batch. True if it copied: the caller then writes the
    /// same messages' marks (`marks.rs`) in the same transaction.
    pub fn begin(&mut self, conn: &Connection) -> rusqlite::Result<bool> {
        self.batch_first_id = self.next_id;
        self.copy_if_due(conn)
    }

    fn copy_if_due(&mut self, conn: &Connection) -> rusqlite::Result<bool> {
        if self.recent.len() < self.copy_at {
            return Ok(false);
        }
        let (from, upto) = (self.through, self.next_id - 1);
        let seqs = "INSERT INTO message_seqs (conv_id, seq, id)
                    SELECT conv_id, seq, id FROM messages WHERE id > ?1 AND id <= ?2";
        if !copied(conn, seqs, from, upto)? {
            // Two messages at one `seq`: a bug in the writer. Both stay readable where they
            // are; only many more messages try the copy again.
            self.copy_at = self.recent.len() + FOLD_AT;
            return Ok(false);
        }
        let keys = "INSERT INTO message_keys (sender_id, client_msg_id, id)
                    SELECT sender_id, client_msg_id, id FROM messages WHERE id > ?1 AND id <= ?2";
        if !copied(conn, keys, from, upto)? {
            // Two messages under one key: a bug in the checks before the insert. The earlier
            // message stays the key's answer.
            conn.prepare_cached(&keys.replace("INSERT", "INSERT OR IGNORE"))?.execute([from, upto])?;
        }
        conn.prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('keys_through', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute([upto])?;
        self.copied_through = Some(upto);
        Ok(true)
    }

    /// The open batch is durable: the copied keys are no longer needed here. Returns the
    /// highest id copied, if the batch made a copy.
    pub fn committed(&mut self) -> Option<i64> {
        let through = self.copied_through.take()?;
        self.through = through;
        self.copy_at = FOLD_AT;
        self.recent.retain(|_, id| *id > through);
        Some(through)
    }

    /// The highest message id whose entries the index tables hold.
    pub fn through(&self) -> i64 {
        self.through
    }

    /// The open batch was rolled back: its keys and its copy with it.
    pub fn rolled_back(&mut self) {
        let first = self.batch_first_id;
        self.recent.retain(|_, id| *id < first);
        self.copied_through = None;
    }
}

/// Runs one copy of the messages in `from..=upto`; false if it would break a unique key,
/// when it has changed nothing.
fn copied(conn: &Connection, sql: &str, from: i64, upto: i64) -> rusqlite::Result<bool> {
    match conn.prepare_cached(sql)?.execute([from, upto]) {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(f, detail)) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            tracing::error!(from, upto, detail, "the newest messages break a unique key of an index table");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn
    }

    /// A fresh store and its keys, with a batch open on it.
    fn batch_open() -> (Connection, RecentKeys) {
        let conn = store();
        let mut keys = RecentKeys::load(&conn).unwrap();
        conn.execute_batch("BEGIN").unwrap();
        keys.begin(&conn).unwrap();
        (conn, keys)
    }

    fn store_message(conn: &Connection, keys: &mut RecentKeys, sender: UserId, client_msg_id: &str) -> i64 {
        let id = keys.next_id();
        conn.execute(
            "INSERT INTO messages (id, conv_id, seq, sender_id, client_msg_id, body, ts, pos)
             VALUES (?1, 1, ?1, ?2, ?3, '', 0, ?1)",
            rusqlite::params![id, sender, client_msg_id],
        )
        .unwrap();
        keys.stored(sender, client_msg_id);
        id
    }

    #[test]
    fn a_rolled_back_batch_takes_its_keys_and_its_copy_with_it() {
        let (conn, mut keys) = batch_open();
        let kept = store_message(&conn, &mut keys, 7, "kept");
        conn.execute_batch("COMMIT").unwrap();
        keys.committed();
        conn.execute_batch("BEGIN").unwrap();
        keys.begin(&conn).unwrap();
        for i in 0..FOLD_AT {
            store_message(&conn, &mut keys, 7, &format!("lost{i}"));
        }
        keys.copy_if_due(&conn).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        keys.rolled_back();
        let mut held = Held::new(&conn);
        assert_eq!(keys.find(&mut held, 7, "lost0").unwrap(), None);
        assert_eq!(keys.find(&mut held, 7, "kept").unwrap(), Some(kept), "an earlier batch's key stays");
        let copied: i64 = conn.query_row("SELECT COUNT(*) FROM message_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(copied, 0);
        assert_eq!(keys.through, 0, "the copy that rolled back did not count");
    }

    #[test]
    fn a_copy_moves_every_held_key_to_the_table_once_it_commits() {
        let (conn, mut keys) = batch_open();
        let ids: Vec<i64> = (0..FOLD_AT).map(|i| store_message(&conn, &mut keys, i as UserId, "same")).collect();
        keys.copy_if_due(&conn).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        keys.committed();
        assert!(keys.recent.is_empty());
        assert_eq!(keys.through, *ids.last().unwrap());
        let mut held = Held::new(&conn);
        for (sender, id) in ids.iter().enumerate() {
            assert_eq!(keys.find(&mut held, sender as UserId, "same").unwrap(), Some(*id), "found in the table");
        }
        assert_eq!(RecentKeys::load(&conn).unwrap().through, keys.through, "remembered across a restart");
        let placed: i64 = conn.query_row("SELECT COUNT(*) FROM message_seqs", [], |r| r.get(0)).unwrap();
        assert_eq!(placed, FOLD_AT as i64);
        conn.execute("DELETE FROM messages", []).unwrap();
        assert_eq!(RecentKeys::load(&conn).unwrap().next_id(), keys.through + 1, "no id is given twice");
    }

    #[test]
    fn two_messages_under_one_key_leave_the_earlier_as_its_answer() {
        let (conn, mut keys) = batch_open();
        let first = store_message(&conn, &mut keys, 7, "twice");
        for i in 0..FOLD_AT {
            store_message(&conn, &mut keys, 8, &format!("m{i}"));
        }
        // As if the checks before the insert had missed it.
        let second = store_message(&conn, &mut keys, 7, "twice");
        assert!(keys.copy_if_due(&conn).unwrap(), "the copy went ahead");
        conn.execute_batch("COMMIT").unwrap();
        keys.committed();
        let mut held = Held::new(&conn);
        assert_eq!(keys.find(&mut held, 7, "twice").unwrap(), Some(first), "not {second}");
        let placed: i64 = conn.query_row("SELECT COUNT(*) FROM message_seqs", [], |r| r.get(0)).unwrap();
        assert_eq!(placed, FOLD_AT as i64 + 2, "both messages still have their place");
    }

    #[test]
    fn readers_see_each_message_once_whether_it_is_indexed_yet_or_not() {
        let (conn, mut keys) = batch_open();
        for i in 0..FOLD_AT + 3 {
            if i == FOLD_AT {
                keys.copy_if_due(&conn).unwrap();
            }
            store_message(&conn, &mut keys, 1, &format!("m{i}"));
        }
        conn.execute_batch("COMMIT").unwrap();
        keys.committed();
        assert_eq!(keys.recent.len(), 3);
        let seqs: Vec<i64> = conn
            .prepare("SELECT seq FROM conv_messages WHERE conv_id = 1 AND seq > ?1 ORDER BY seq LIMIT 5")
            .unwrap()
            .query_map([FOLD_AT as i64 - 2], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let first = FOLD_AT as i64 - 1;
        assert_eq!(seqs, (first..first + 5).collect::<Vec<_>>(), "in order, indexed or not");
    }
}
