//! A small set of read-only connections; WAL lets them read while the writer commits.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::store::{StoreError, StoreResult};

/// Read connections handed out one per blocking task.
#[derive(Clone)]
pub struct ReadPool {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// Opens `size` read-only connections to the database at `path`.
    pub fn open(path: &Path, size: usize) -> rusqlite::Result<Self> {
        let mut idle = Vec::with_capacity(size);
        for _ in 0..size {
            let conn =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.set_prepared_statement_cache_capacity(64);
            conn.pragma_update(None, "cache_size", -16384)?;
            idle.push(conn);
        }
        Ok(ReadPool { idle: Arc::new(Mutex::new(idle)), permits: Arc::new(Semaphore::new(size)) })
    }

    /// Runs `f` on a read connection off the async threads.
    pub async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| StoreError::Closed)?;
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let Some(conn) = idle.lock().pop() else {
                return Err(StoreError::Closed);
            };
            let result = f(&conn);
            idle.lock().push(conn);
            drop(permit);
            result.map_err(StoreError::from)
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}
