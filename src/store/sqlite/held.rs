//! The statements the writer runs for every message and every batch, prepared once for its
//! connection and held, and each conversation's last `seq` as the writer last set it.
//!
//! A cached statement (`prepare_cached`) is found by hashing and comparing its text and is put
//! back the same way when dropped; with five or more per send that was ~2 % of the server's
//! time in `send`, and reading `last_seq` back from `conversations` another statement per
//! message (BENCHMARKS.md, twelfth measurement). Only the writer writes `last_seq`, so what
//! it last wrote is what the table holds, once the batch commits: a rollback, of a batch or
//! of a job's savepoint, forgets them all.

use rusqlite::{Connection, Statement};

use crate::fast_map::FastMap;
use crate::model::{ConvId, Pos};

/// A statement the writer holds prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sql {
    /// Opens a batch's transaction.
    Begin,
    /// Ends a batch's transaction.
    Commit,
    /// Opens a guarded job's savepoint.
    Savepoint,
    /// Ends a guarded job's savepoint, keeping its changes.
    Release,
    /// Undoes a guarded job's changes.
    RollbackTo,
    /// A message id by its sender and `client_msg_id`, among the copied keys.
    FindKey,
    /// A conversation's last `seq`, as stored.
    LastSeq,
    /// Appends a message.
    InsertMessage,
    /// Moves a conversation's last `seq`, and the position of the message that took it.
    SetLastSeq,
    /// A sender has read their own message.
    SenderRead,
    /// Appends an event that is not a message.
    InsertEvent,
}

/// How many kinds of held statement there are.
const KINDS: usize = Sql::InsertEvent as usize + 1;

impl Sql {
    fn text(self) -> &'static str {
        match self {
            Sql::Begin => "BEGIN IMMEDIATE",
            Sql::Commit => "COMMIT",
            Sql::Savepoint => "SAVEPOINT job",
            Sql::Release => "RELEASE job",
            Sql::RollbackTo => "ROLLBACK TO job",
            Sql::FindKey => "SELECT id FROM message_keys WHERE sender_id = ?1 AND client_msg_id = ?2",
            Sql::LastSeq => "SELECT last_seq FROM conversations WHERE id = ?1",
            Sql::InsertMessage => {
                "INSERT INTO messages (id, conv_id, seq, sender_id, client_msg_id, body, ts, pos)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            }
            Sql::SetLastSeq => "UPDATE conversations SET last_seq = ?2, last_pos = ?3 WHERE id = ?1",
            Sql::SenderRead => "UPDATE members SET read_seq = ?3 WHERE conv_id = ?1 AND user_id = ?2",
            Sql::InsertEvent => "INSERT INTO events (pos, stream, ts, json) VALUES (?1, ?2, ?3, ?4)",
        }
    }
}

/// Most conversations whose last `seq` is kept; past it the map starts again empty, so a
/// server with millions of conversations keeps only the busy ones.
const LAST_SEQS_MAX: usize = 1 << 16;

/// The writer's held statements, each prepared on first use, and the last `seq`s it set.
pub struct Held<'c> {
    conn: &'c Connection,
    statements: [Option<Statement<'c>>; KINDS],
    /// Set in the open batch or an earlier committed one.
    last_seqs: FastMap<ConvId, i64>,
}

impl<'c> Held<'c> {
    /// Holds nothing yet; statements are prepared on `conn` when first asked for.
    pub fn new(conn: &'c Connection) -> Self {
        Held { conn, statements: Default::default(), last_seqs: FastMap::default() }
    }

    /// The statement for `sql`, reset (as `execute` and `query_row` leave it); it keeps the
    /// values of its last use until they are bound again.
    pub fn get(&mut self, sql: Sql) -> rusqlite::Result<&mut Statement<'c>> {
        let slot = &mut self.statements[sql as usize];
        if slot.is_none() {
            *slot = Some(self.conn.prepare(sql.text())?);
        }
        Ok(slot.as_mut().expect("prepared above"))
    }

    /// Runs a statement that takes no parameters and returns no rows.
    pub fn run(&mut self, sql: Sql) -> rusqlite::Result<()> {
        self.get(sql)?.execute([]).map(drop)
    }

    /// The conversation's last `seq`: as last set here, or as stored.
    pub fn last_seq(&mut self, conv: ConvId) -> rusqlite::Result<i64> {
        if let Some(&seq) = self.last_seqs.get(&conv) {
            // The one assumption, checked where it is cheap to: nothing else moved it.
            debug_assert_eq!(Some(seq), self.stored_last_seq(conv).ok(), "conversation {conv}");
            return Ok(seq);
        }
        self.stored_last_seq(conv)
    }

    fn stored_last_seq(&mut self, conv: ConvId) -> rusqlite::Result<i64> {
        self.get(Sql::LastSeq)?.query_row([conv], |r| r.get(0))
    }

    /// Moves the conversation's last `seq` in the open batch, in its row and here together;
    /// `pos` is the position of the message that took it.
    pub fn set_last_seq(&mut self, conv: ConvId, seq: i64, pos: Pos) -> rusqlite::Result<()> {
        self.get(Sql::SetLastSeq)?.execute([conv, seq, pos])?;
        if self.last_seqs.len() >= LAST_SEQS_MAX && !self.last_seqs.contains_key(&conv) {
            self.last_seqs.clear();
        }
        self.last_seqs.insert(conv, seq);
        Ok(())
    }

    /// The open batch, or a job's savepoint, was rolled back, and with it any `seq` set in it.
    pub fn rolled_back(&mut self) {
        self.last_seqs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE conversations (id INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL DEFAULT 0, last_pos INTEGER NOT NULL DEFAULT 0);
             INSERT INTO conversations (id, last_seq) VALUES (1, 5), (2, 0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn a_set_seq_is_written_and_kept() {
        let conn = db();
        let mut held = Held::new(&conn);
        assert_eq!(held.last_seq(1).unwrap(), 5);
        held.set_last_seq(1, 6, 40).unwrap();
        assert_eq!(held.last_seqs.get(&1), Some(&6), "kept, so the next send does not read it");
        assert_eq!(held.last_seq(1).unwrap(), 6);
        let stored: (i64, i64) = conn
            .query_row("SELECT last_seq, last_pos FROM conversations WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(stored, (6, 40));
        assert_eq!(held.last_seq(2).unwrap(), 0);
    }

    #[test]
    fn a_rollback_forgets_the_set_seqs_and_reads_the_table_again() {
        let conn = db();
        let mut held = Held::new(&conn);
        held.run(Sql::Begin).unwrap();
        let seq = held.last_seq(1).unwrap() + 1;
        held.set_last_seq(1, seq, seq).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
        held.rolled_back();
        assert!(held.last_seqs.is_empty());
        assert_eq!(held.last_seq(1).unwrap(), 5);
    }

    #[test]
    fn a_full_map_starts_again_and_still_answers_from_the_table() {
        let conn = db();
        conn.execute(
            "WITH RECURSIVE ids(id) AS (SELECT 100 UNION ALL SELECT id + 1 FROM ids WHERE id < 99 + ?1)
             INSERT INTO conversations (id) SELECT id FROM ids",
            [LAST_SEQS_MAX as i64],
        )
        .unwrap();
        let mut held = Held::new(&conn);
        for conv in 100..100 + LAST_SEQS_MAX as i64 {
            held.set_last_seq(conv, 1, 1).unwrap();
        }
        assert_eq!(held.last_seqs.len(), LAST_SEQS_MAX);
        held.set_last_seq(1, 7, 7).unwrap();
        assert_eq!(held.last_seqs.len(), 1);
        assert_eq!(held.last_seq(1).unwrap(), 7);
        assert_eq!(held.last_seq(100).unwrap(), 1, "read from the table again");
    }

    #[test]
    fn held_statements_run_again_and_again_across_transactions() {
        let conn = db();
        let mut held = Held::new(&conn);
        for seq in 1..=3 {
            held.run(Sql::Begin).unwrap();
            held.set_last_seq(2, seq, seq).unwrap();
            held.run(Sql::Commit).unwrap();
        }
        let stored: i64 = conn.query_row("SELECT last_seq FROM conversations WHERE id = 2", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, 3);
    }
}
