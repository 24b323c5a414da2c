//! The statements the writer runs for every message and every batch, prepared once for its
//! connection and held.
//!
//! A cached statement (`prepare_cached`) is found by hashing and comparing its text and is put
//! back the same way when dropped; with five or more per send that was ~2 % of the server's
//! time in `send` (BENCHMARKS.md, twelfth measurement).

use rusqlite::{Connection, Statement};

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
    /// Moves a conversation's last `seq` and position forward (a copy of the marks).
    SetLast,
    /// Moves a member's read mark forward (a copy of the marks).
    SetRead,
    /// Appends a message.
    InsertMessage,
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
            Sql::SetLast => "UPDATE conversations SET last_seq = ?2, last_pos = ?3 WHERE id = ?1 AND last_seq < ?2",
            Sql::SetRead => "UPDATE members SET read_seq = ?3 WHERE conv_id = ?1 AND user_id = ?2 AND read_seq < ?3",
            Sql::InsertMessage => {
                "INSERT INTO messages (id, conv_id, seq, sender_id, client_msg_id, body, ts, pos)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            }
            Sql::InsertEvent => "INSERT INTO events (pos, stream, ts, json) VALUES (?1, ?2, ?3, ?4)",
        }
    }
}

/// The writer's held statements, each prepared on first use.
pub struct Held<'c> {
    conn: &'c Connection,
    statements: [Option<Statement<'c>>; KINDS],
}

impl<'c> Held<'c> {
    /// Holds nothing yet; statements are prepared on `conn` when first asked for.
    pub fn new(conn: &'c Connection) -> Self {
        Held { conn, statements: Default::default() }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_statements_run_again_and_again_across_transactions() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn.execute("INSERT INTO conversations (id, kind, group_id, last_seq) VALUES (1, 'group', 1, 5)", []).unwrap();
        let mut held = Held::new(&conn);
        for pos in 1..=3 {
            held.run(Sql::Begin).unwrap();
            held.get(Sql::InsertEvent).unwrap().execute((pos, 1, 0, "{}")).unwrap();
            let seq: i64 = held.get(Sql::LastSeq).unwrap().query_row([1], |r| r.get(0)).unwrap();
            assert_eq!(seq, 5);
            held.run(Sql::Commit).unwrap();
        }
        let stored: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, 3);
    }
}
