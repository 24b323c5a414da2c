//! Gives the write-ahead log its full size before SQLite opens it.
//!
//! SQLite appends to the WAL until a checkpoint lets it start again from the front, and it
//! deletes the file on a clean close. So after every start, each commit first makes the file
//! longer, and an fsync of a file that grew also writes its size and new blocks: on this
//! project's machines that made every durable commit about 0.17 ms slower (BENCHMARKS.md)
//! until ~40 MB had been written. Bytes past the log's valid frames are never read: SQLite
//! leaves old frames behind a restarted log itself and reads frames only while their salt
//! matches the header's, and a log whose header is zeros is an empty log.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Pages in the WAL at which the writer checkpoints (`checkpoint.rs`): ~40 MB rather than
/// SQLite's 4 MB, so that a page changed by many commits is copied back to the database once.
pub const AUTOCHECKPOINT_PAGES: u64 = 10_000;
/// SQLite's default page size, which this store keeps.
const PAGE_SIZE: u64 = 4096;
/// Each WAL frame is one page behind a 24-byte header; the file starts with a 32-byte one.
const FRAME_HEADER: u64 = 24;
const FILE_HEADER: u64 = 32;

/// The WAL size at which SQLite checkpoints and starts over from the front.
pub fn full_size() -> u64 {
    FILE_HEADER + AUTOCHECKPOINT_PAGES * (PAGE_SIZE + FRAME_HEADER)
}

/// The WAL file that belongs to `db`.
pub fn path_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Extends `db`'s WAL with zeros up to `size` bytes (never shortens it, never touches what
/// it holds) and makes that durable. Call while no transaction is open on `db`.
pub fn preallocate(db: &Path, size: u64) -> io::Result<()> {
    let wal = path_of(db);
    let len = match std::fs::metadata(&wal) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    if len >= size {
        return Ok(());
    }
    // Real zeros, not fallocate: an fsync after writing into a reserved-but-unwritten range
    // still has to record that the range now holds data, which is the cost avoided here.
    let mut file = OpenOptions::new().create(true).append(true).open(&wal)?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = size - len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

/// Salt-1 of `db`'s WAL header (bytes 16..20), which SQLite changes each time it starts the
/// log again from the front: tests tell a restarted log by it.
#[cfg(test)]
pub fn salt(db: &Path) -> [u8; 4] {
    std::fs::read(path_of(db)).unwrap()[16..20].try_into().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_grows_to_the_size_asked_and_keeps_what_it_held() {
        let dir = std::env::temp_dir().join(format!("webim-wal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("x.db");
        std::fs::write(path_of(&db), b"frames").unwrap();
        preallocate(&db, 10_000).unwrap();
        let wal = std::fs::read(path_of(&db)).unwrap();
        assert_eq!(wal.len(), 10_000);
        assert_eq!(&wal[..6], b"frames");
        assert!(wal[6..].iter().all(|&b| b == 0));
        // Already long enough: left as it is.
        preallocate(&db, 100).unwrap();
        assert_eq!(std::fs::metadata(path_of(&db)).unwrap().len(), 10_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
