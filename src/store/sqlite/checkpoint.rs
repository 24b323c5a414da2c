//! When the write-ahead log is copied back into the database and started again from the
//! front: after every [`COMMITS_PER_CHECKPOINT`] commits, or once it holds
//! [`wal::AUTOCHECKPOINT_PAGES`] pages, whichever comes first; run by the writer after it has
//! handed a batch's answers on, not inside the commit.
//!
//! SQLite finds a page's newest copy in the log through a hash table per 4,096 frames, with
//! linear probing from the slot of the page number. Every copy of the same page starts at the
//! same slot, so the n-th copy of a page probes past at least the n − 1 before it. Small
//! commits (a chat at a human pace) rewrite the same few pages each time: in ping-pong, three
//! frames a commit, appending a frame cost ~6,800 instructions, 14 % of a round
//! (BENCHMARKS.md, thirteenth measurement). Restarting the log empties the table. Large
//! commits (a busy server) write many different pages and reach the page limit first, as
//! before.
//!
//! SQLite's own autocheckpoint runs inside the `COMMIT` that crossed its limit, so the
//! callers of that batch waited for the copying and its two `fsync`s. Installing a log hook
//! replaces it.

use std::cell::Cell;
use std::os::raw::c_int;

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use super::wal;

/// Commits after which the log is started again even if it is far from full. A checkpoint of
/// such a log copies a few distinct pages and syncs twice (the database, then the new log
/// header with the next commit); once in 256 commits is 0.4 % of them, too few to reach a
/// p99 of commit latencies.
pub const COMMITS_PER_CHECKPOINT: u32 = 256;

/// The log as the last commit on this thread left it.
#[derive(Debug, Clone, Copy, Default)]
struct Log {
    /// Frames in the log after the last commit.
    frames: c_int,
    /// Commits since the last checkpoint.
    commits: u32,
}

impl Log {
    fn due(self) -> bool {
        self.frames as u64 >= wal::AUTOCHECKPOINT_PAGES || self.commits >= COMMITS_PER_CHECKPOINT
    }
}

thread_local! {
    // Per thread because SQLite's hook takes a plain function: the hook runs on the thread
    // that commits, which for the store's writes is the writer's own.
    static LOG: Cell<Log> = const { Cell::new(Log { frames: 0, commits: 0 }) };
}

/// Called by SQLite after each commit that wrote frames, with the log's length.
fn committed(_: &Wal, frames: c_int) -> rusqlite::Result<()> {
    LOG.with(|log| {
        let Log { commits, .. } = log.get();
        log.set(Log { frames, commits: commits + 1 });
    });
    Ok(())
}

/// Takes checkpointing from SQLite on `conn`. Call after any `wal_autocheckpoint` pragma,
/// which would put SQLite's own hook back.
pub fn install(conn: &Connection) {
    conn.wal_hook(Some(committed));
}

/// Whether the commits on this thread have made the log due for a checkpoint.
pub fn due() -> bool {
    LOG.with(|log| log.get().due())
}

/// Copies the log back without waiting for readers (a reader still on an older snapshot
/// leaves the rest for the next time); the next commit then starts the log again from the
/// front if every frame was copied. A failure only costs speed and is logged.
pub fn run(conn: &Connection) {
    LOG.with(|log| log.set(Log::default()));
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
    if let Err(e) = result {
        tracing::warn!(error = %e, "checkpoint failed; the log keeps growing until the next one");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_due_by_commits_or_by_pages() {
        assert!(!Log { frames: 3, commits: COMMITS_PER_CHECKPOINT - 1 }.due());
        assert!(Log { frames: 3, commits: COMMITS_PER_CHECKPOINT }.due());
        assert!(!Log { frames: wal::AUTOCHECKPOINT_PAGES as c_int - 1, commits: 1 }.due());
        assert!(Log { frames: wal::AUTOCHECKPOINT_PAGES as c_int, commits: 1 }.due());
    }

    #[test]
    fn small_commits_start_the_log_again_and_sqlite_no_longer_checkpoints_by_itself() {
        let dir = std::env::temp_dir().join(format!("webim-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("c.db");
        let _ = std::fs::remove_file(&db);
        let _ = std::fs::remove_file(wal::path_of(&db));
        let conn = Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        // SQLite's own rule would checkpoint after every commit here.
        conn.pragma_update(None, "wal_autocheckpoint", 1).unwrap();
        install(&conn);
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        let insert = |conn: &Connection| conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        run(&conn);
        insert(&conn);
        let first = wal::salt(&db);
        for _ in 0..COMMITS_PER_CHECKPOINT - 2 {
            insert(&conn);
            assert!(!due());
        }
        insert(&conn);
        // Still the same log: nothing was checkpointed behind the hook's back.
        assert_eq!(wal::salt(&db), first);
        assert!(due());
        run(&conn);
        assert!(!due());
        insert(&conn);
        assert_ne!(wal::salt(&db), first, "the commit after a checkpoint starts the log again");
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, COMMITS_PER_CHECKPOINT as i64 + 1);
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
