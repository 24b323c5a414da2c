//! Idempotency keys (`sender_id`, `client_msg_id`) of the newest messages, held by the writer
//! and written to `message_keys` in bulk.
//!
//! An index on the key puts each sender's messages on a leaf of its own, so a group commit of
//! messages from 64 senders wrote 64 more pages to the log, one per message, and the pages a
//! commit writes were most of the writer's cost (BENCHMARKS.md, eleventh measurement). Instead the keys of messages newer than `keys_through` live here,
//! in memory, and every [`FOLD_AT`] messages they are copied into the table in one
//! statement, so a busy sender's leaf is written once for all its messages since the last
//! copy. The messages themselves are durable in `messages` from their own commit; after a
//! restart the keys not yet copied are read back from there.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use crate::model::UserId;

/// Keys held in memory before they are copied to `message_keys`: bounds the memory (~100 B
/// a key) and the one commit that copies them (a few ms), and sets how many messages share
/// the leaf writes of that copy. Small in tests, so that they copy often.
pub const FOLD_AT: usize = if cfg!(test) { 16 } else { 8192 };

/// The keys of messages with ids above `through`, which `message_keys` does not hold yet.
pub struct RecentKeys {
    /// Not a fast hash: `client_msg_id` is chosen by clients.
    recent: HashMap<(UserId, Box<str>), i64>,
    /// The highest message id whose key `message_keys` holds.
    through: i64,
    /// Added by the open batch, to forget if it rolls back.
    added: Vec<(UserId, Box<str>)>,
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
        Ok(RecentKeys { recent, through, added: Vec::new(), copied_through: None })
    }

    /// The id of the message `sender` stored under `client_msg_id`, if any. The message may
    /// have been swept since, or rolled back with its job: callers check that it exists.
    pub fn find(&self, conn: &Connection, sender: UserId, client_msg_id: &str) -> rusqlite::Result<Option<i64>> {
        if let Some(&id) = self.recent.get(&(sender, Box::from(client_msg_id))) {
            return Ok(Some(id));
        }
        conn.prepare_cached("SELECT id FROM message_keys WHERE sender_id = ?1 AND client_msg_id = ?2")?
            .query_row(rusqlite::params![sender, client_msg_id], |r| r.get(0))
            .optional()
    }

    /// Records the key of a message just inserted in the open batch.
    pub fn insert(&mut self, sender: UserId, client_msg_id: &str, id: i64) {
        let key: (UserId, Box<str>) = (sender, client_msg_id.into());
        self.added.push(key.clone());
        self.recent.insert(key, id);
    }

    /// At the start of a batch: once enough keys are held, copies them to `message_keys`
    /// inside the batch's transaction, so the copy is as durable as the batch.
    pub fn copy_if_due(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.recent.len() < FOLD_AT {
            return Ok(());
        }
        let Some(&upto) = self.recent.values().max() else { return Ok(()) };
        let copy = "INSERT INTO message_keys (sender_id, client_msg_id, id)
                    SELECT sender_id, client_msg_id, id FROM messages WHERE id > ?1 AND id <= ?2";
        match conn.prepare_cached(copy)?.execute([self.through, upto]) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                // Two messages under one key: a bug in the checks before the insert. The
                // earlier message stays the key's answer, and the copy goes on, or the keys
                // held here would grow without end.
                tracing::error!(from = self.through, upto, "two stored messages share an idempotency key");
                conn.prepare_cached(&copy.replace("INSERT", "INSERT OR IGNORE"))?.execute([self.through, upto])?;
            }
            Err(e) => return Err(e),
        }
        conn.prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('keys_through', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute([upto])?;
        self.copied_through = Some(upto);
        Ok(())
    }

    /// The open batch is durable: the copied keys are no longer needed here.
    pub fn committed(&mut self) {
        self.added.clear();
        if let Some(through) = self.copied_through.take() {
            self.through = through;
            self.recent.retain(|_, id| *id > through);
        }
    }

    /// The open batch was rolled back: its keys and its copy with it.
    pub fn rolled_back(&mut self) {
        for key in self.added.drain(..) {
            self.recent.remove(&key);
        }
        self.copied_through = None;
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

    fn store_message(conn: &Connection, keys: &mut RecentKeys, sender: UserId, client_msg_id: &str) -> i64 {
        conn.execute(
            "INSERT INTO messages (conv_id, seq, sender_id, client_msg_id, body, ts, pos)
             VALUES (1, (SELECT COUNT(*) + 1 FROM messages), ?1, ?2, '', 0, 0)",
            rusqlite::params![sender, client_msg_id],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        keys.insert(sender, client_msg_id, id);
        id
    }

    #[test]
    fn a_rolled_back_batch_takes_its_keys_and_its_copy_with_it() {
        let conn = store();
        let mut keys = RecentKeys::load(&conn).unwrap();
        conn.execute_batch("BEGIN").unwrap();
        let kept = store_message(&conn, &mut keys, 7, "kept");
        conn.execute_batch("COMMIT").unwrap();
        keys.committed();
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..FOLD_AT {
            store_message(&conn, &mut keys, 7, &format!("lost{i}"));
        }
        keys.copy_if_due(&conn).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        keys.rolled_back();
        assert_eq!(keys.find(&conn, 7, "lost0").unwrap(), None);
        assert_eq!(keys.find(&conn, 7, "kept").unwrap(), Some(kept), "an earlier batch's key stays");
        let copied: i64 = conn.query_row("SELECT COUNT(*) FROM message_keys", [], |r| r.get(0)).unwrap();
        assert_eq!(copied, 0);
        assert_eq!(keys.through, 0, "the copy that rolled back did not count");
    }

    #[test]
    fn a_copy_moves_every_held_key_to_the_table_once_it_commits() {
        let conn = store();
        let mut keys = RecentKeys::load(&conn).unwrap();
        conn.execute_batch("BEGIN").unwrap();
        let ids: Vec<i64> = (0..FOLD_AT).map(|i| store_message(&conn, &mut keys, i as UserId, "same")).collect();
        keys.copy_if_due(&conn).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        keys.committed();
        assert!(keys.recent.is_empty());
        assert_eq!(keys.through, *ids.last().unwrap());
        for (sender, id) in ids.iter().enumerate() {
            assert_eq!(keys.find(&conn, sender as UserId, "same").unwrap(), Some(*id), "found in the table");
        }
        assert_eq!(RecentKeys::load(&conn).unwrap().through, keys.through, "remembered across a restart");
    }
}
