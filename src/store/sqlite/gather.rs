//! A VFS that writes a commit's write-ahead-log frames in a few large writes.
//!
//! SQLite writes every WAL frame as two `pwrite`s (its 24-byte header, then the page), so a
//! group commit of a few hundred pages made a thousand system calls, most of them copying
//! into two page-cache pages of the log because frames are not page-aligned: the largest
//! part of the writer thread's time under load (BENCHMARKS.md). This VFS wraps the default
//! one and, for WAL files only, keeps contiguous writes in a buffer that goes to the file in
//! writes of ~124 KiB before anything can depend on it: before a sync, a read, a size query,
//! a truncation, a file control or the close. Every other file is the default VFS's own.
//!
//! Only for connections whose commits sync the log (`synchronous=FULL`): a commit's frames
//! then reach the file before SQLite publishes them to readers in the shared index. Without
//! that sync, readers could be told of frames still in the buffer.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name connections pass to SQLite to use this VFS.
pub const NAME: &str = "webim-gather";
const NAME_C: &CStr = c"webim-gather";

/// Above this many buffered bytes the buffer is written out before taking more, so a huge
/// transaction does not hold its whole log in memory.
const FLUSH_AT: usize = 4 << 20;

/// Most bytes passed to the default VFS in one write: it takes a write's length modulo
/// 128 KiB (`nBuf &= 0x1ffff` in `seekAndWriteFd`).
const MAX_WRITE: usize = 31 * 4096;

/// The default VFS, which this one wraps; set once, before registration.
static DEFAULT: OnceLock<DefaultVfs> = OnceLock::new();

/// The default VFS pointer; SQLite keeps VFS objects alive for the life of the process.
struct DefaultVfs(*mut ffi::sqlite3_vfs);
// SAFETY: the pointer is only read, and SQLite's VFS objects are safe to use from any thread.
unsafe impl Send for DefaultVfs {}
unsafe impl Sync for DefaultVfs {}

/// Registers the VFS (once per process); returns SQLite's error code if it cannot.
pub fn register() -> Result<(), c_int> {
    static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find` initialises SQLite if needed and returns the default
        // VFS, which lives for the rest of the process. The copy keeps its functions (which
        // take the VFS they are called through but use only its shared fields), with our
        // own open and a file size that holds our state in front of the default file.
        unsafe {
            let default = ffi::sqlite3_vfs_find(ptr::null());
            if default.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let _ = DEFAULT.set(DefaultVfs(default));
            let mut vfs = *default;
            vfs.pNext = ptr::null_mut();
            vfs.zName = NAME_C.as_ptr();
            vfs.szOsFile = (real_offset() + (*default).szOsFile as usize) as c_int;
            vfs.xOpen = Some(open);
            match ffi::sqlite3_vfs_register(Box::into_raw(Box::new(vfs)), 0) {
                ffi::SQLITE_OK => Ok(()),
                code => Err(code),
            }
        }
    })
}

/// A WAL file: SQLite sees `base`; the default VFS's file follows this struct in the same
/// allocation.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    pending: Pending,
}

/// Contiguous writes not yet passed on, which belong at `start` in the file.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    start: i64,
}

impl Pending {
    /// Takes a write, passing on what was gathered first when the write does not continue
    /// it; returns what `out` answered to that (SQLite's code).
    fn write(&mut self, offset: i64, data: &[u8], out: impl FnMut(i64, &[u8]) -> c_int) -> c_int {
        let end = self.start + self.bytes.len() as i64;
        if !self.bytes.is_empty() && offset >= self.start && offset + data.len() as i64 <= end {
            // Rewrites part of what is gathered (SQLite rewrites frames of the same transaction).
            let at = (offset - self.start) as usize;
            self.bytes[at..at + data.len()].copy_from_slice(data);
            return ffi::SQLITE_OK;
        }
        if self.bytes.is_empty() || offset != end || self.bytes.len() >= FLUSH_AT {
            let rc = self.flush(out);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            self.start = offset;
        }
        self.bytes.extend_from_slice(data);
        ffi::SQLITE_OK
    }

    /// Passes everything gathered to `out` in writes of at most [`MAX_WRITE`] bytes, stopping
    /// at the first failure; nothing is gathered afterwards, written or not.
    fn flush(&mut self, mut out: impl FnMut(i64, &[u8]) -> c_int) -> c_int {
        let mut rc = ffi::SQLITE_OK;
        let mut offset = self.start;
        for chunk in self.bytes.chunks(MAX_WRITE) {
            rc = out(offset, chunk);
            if rc != ffi::SQLITE_OK {
                break;
            }
            offset += chunk.len() as i64;
        }
        self.bytes.clear();
        rc
    }
}

/// Where the default VFS's file starts inside ours, 8-byte aligned as SQLite's are.
const fn real_offset() -> usize {
    std::mem::size_of::<WalFile>().next_multiple_of(8)
}

fn default_vfs() -> *mut ffi::sqlite3_vfs {
    DEFAULT.get().expect("registered before use").0
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let default = default_vfs();
    let xopen = (*default).xOpen.expect("every VFS opens files");
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // Not a log: the default VFS's file, in place, with its own methods.
        return xopen(default, name, file, flags, out_flags);
    }
    let wal = file.cast::<WalFile>();
    let real = file.cast::<u8>().add(real_offset()).cast::<ffi::sqlite3_file>();
    let rc = xopen(default, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        // SQLite closes only files whose methods are set.
        (*file).pMethods = ptr::null();
        return rc;
    }
    ptr::write(wal, WalFile { base: ffi::sqlite3_file { pMethods: &METHODS }, real, pending: Pending::default() });
    ffi::SQLITE_OK
}

// SAFETY, for every method below: SQLite calls them only on files whose methods are
// `METHODS`, which `open` sets after writing a `WalFile` there (with `real` opened by the
// default VFS), and never after `close`; and it calls a file's methods from one thread at a
// time (each connection's files belong to that connection).

/// The default file's methods (set by its open).
unsafe fn real_methods(wal: *mut WalFile) -> &'static ffi::sqlite3_io_methods {
    &*(*(*wal).real).pMethods
}

/// A write straight to the default file.
unsafe fn real_write(wal: *mut WalFile) -> impl Fn(i64, &[u8]) -> c_int {
    let real = (*wal).real;
    let xwrite = real_methods(wal).xWrite.expect("files write");
    move |offset, chunk| xwrite(real, chunk.as_ptr().cast(), chunk.len() as c_int, offset)
}

/// Passes what `wal` gathered on to the default file.
unsafe fn flush(wal: *mut WalFile) -> c_int {
    let out = real_write(wal);
    (*wal).pending.flush(out)
}

/// Runs `then` once what `wal` gathered is on the default file, or answers why it is not.
unsafe fn after_flush(wal: *mut WalFile, then: impl FnOnce() -> c_int) -> c_int {
    match flush(wal) {
        ffi::SQLITE_OK => then(),
        rc => rc,
    }
}

unsafe extern "C" fn write(file: *mut ffi::sqlite3_file, data: *const c_void, amount: c_int, offset: i64) -> c_int {
    let wal = file.cast::<WalFile>();
    let out = real_write(wal);
    let data = std::slice::from_raw_parts(data.cast::<u8>(), amount as usize);
    (*wal).pending.write(offset, data, out)
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = file.cast::<WalFile>();
    let flushed = flush(wal);
    let rc = real_methods(wal).xClose.expect("files close")((*wal).real);
    ptr::drop_in_place(wal);
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        rc
    }
}

unsafe extern "C" fn read(file: *mut ffi::sqlite3_file, data: *mut c_void, amount: c_int, offset: i64) -> c_int {
    let wal = file.cast::<WalFile>();
    match flush(wal) {
        ffi::SQLITE_OK => real_methods(wal).xRead.expect("files read")((*wal).real, data, amount, offset),
        // A failed flush is a failed read to SQLite.
        _ => ffi::SQLITE_IOERR_READ,
    }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let wal = file.cast::<WalFile>();
    after_flush(wal, || real_methods(wal).xTruncate.expect("files truncate")((*wal).real, size))
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let wal = file.cast::<WalFile>();
    after_flush(wal, || real_methods(wal).xSync.expect("files sync")((*wal).real, flags))
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    let wal = file.cast::<WalFile>();
    after_flush(wal, || real_methods(wal).xFileSize.expect("files have a size")((*wal).real, size))
}

unsafe extern "C" fn file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    let wal = file.cast::<WalFile>();
    after_flush(wal, || match real_methods(wal).xFileControl {
        Some(f) => f((*wal).real, op, arg),
        None => ffi::SQLITE_NOTFOUND,
    })
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let wal = file.cast::<WalFile>();
    real_methods(wal).xLock.expect("files lock")((*wal).real, level)
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let wal = file.cast::<WalFile>();
    real_methods(wal).xUnlock.expect("files unlock")((*wal).real, level)
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let wal = file.cast::<WalFile>();
    real_methods(wal).xCheckReservedLock.expect("files report locks")((*wal).real, out)
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = file.cast::<WalFile>();
    real_methods(wal).xSectorSize.map_or(4096, |f| f((*wal).real))
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = file.cast::<WalFile>();
    real_methods(wal).xDeviceCharacteristics.map_or(0, |f| f((*wal).real))
}

/// Version 1: SQLite maps shared memory and pages only through the database file, never
/// through its log, so a log needs none of the later methods.
static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{params, Connection, OpenFlags};

    /// A file in memory, counting the writes it was given.
    #[derive(Default)]
    struct File {
        bytes: Vec<u8>,
        writes: usize,
    }

    impl File {
        fn write(&mut self, offset: i64, data: &[u8]) -> c_int {
            let (at, end) = (offset as usize, offset as usize + data.len());
            if self.bytes.len() < end {
                self.bytes.resize(end, 0);
            }
            self.bytes[at..end].copy_from_slice(data);
            self.writes += 1;
            ffi::SQLITE_OK
        }
    }

    /// A log header and `frames` frames (header, then page) as SQLite writes them.
    fn log_writes(frames: usize) -> Vec<(i64, Vec<u8>)> {
        let mut writes = vec![(0, vec![0xaa; 32])];
        for i in 0..frames {
            let at = 32 + (i * (24 + 4096)) as i64;
            writes.push((at, vec![i as u8; 24]));
            writes.push((at + 24, vec![(i + 1) as u8; 4096]));
        }
        writes
    }

    #[test]
    fn a_commits_frames_reach_the_file_unchanged_in_few_writes() {
        let (mut direct, mut gathered, mut pending) = (File::default(), File::default(), Pending::default());
        let mut writes = log_writes(100);
        // SQLite rewrites a frame header of the same transaction.
        writes.push((32 + 3 * 4120, vec![0xee; 24]));
        for (at, data) in &writes {
            direct.write(*at, data);
            assert_eq!(pending.write(*at, data, |o, c| gathered.write(o, c)), ffi::SQLITE_OK);
        }
        assert_eq!(gathered.writes, 0, "nothing is written before the flush");
        assert_eq!(pending.flush(|o, c| gathered.write(o, c)), ffi::SQLITE_OK);
        assert_eq!(gathered.bytes, direct.bytes);
        assert_eq!(gathered.writes, (32 + 100 * 4120usize).div_ceil(MAX_WRITE));
        assert_eq!(direct.writes, 202);
    }

    #[test]
    fn a_write_elsewhere_passes_on_what_was_gathered_first() {
        let (mut file, mut pending) = (File::default(), Pending::default());
        assert_eq!(pending.write(100, &[1; 10], |o, c| file.write(o, c)), ffi::SQLITE_OK);
        assert_eq!(pending.write(500, &[2; 10], |o, c| file.write(o, c)), ffi::SQLITE_OK);
        assert_eq!((file.writes, &file.bytes[100..110]), (1, &[1u8; 10][..]));
        // Straddling the end of what is gathered is not a rewrite within it.
        assert_eq!(pending.write(505, &[3; 10], |o, c| file.write(o, c)), ffi::SQLITE_OK);
        assert_eq!(pending.flush(|o, c| file.write(o, c)), ffi::SQLITE_OK);
        assert_eq!((&file.bytes[500..505], &file.bytes[505..515]), (&[2u8; 5][..], &[3u8; 10][..]));
        assert_eq!(file.writes, 3);
    }

    #[test]
    fn a_failed_write_is_reported_and_what_it_held_dropped() {
        let mut pending = Pending::default();
        pending.write(0, &[1; 10], |_, _| ffi::SQLITE_OK);
        assert_eq!(pending.flush(|_, _| ffi::SQLITE_FULL), ffi::SQLITE_FULL);
        let mut file = File::default();
        assert_eq!(pending.flush(|o, c| file.write(o, c)), ffi::SQLITE_OK);
        assert_eq!(file.writes, 0, "a failed commit's frames are not written later");
    }

    fn row(id: i64) -> Vec<u8> {
        vec![(id % 251) as u8; 3000]
    }

    #[test]
    fn a_database_written_through_it_is_whole_and_readable_at_once_and_after_reopening() {
        register().unwrap();
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("webim-gather-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.db");
        let mut conn = Connection::open_with_flags_and_vfs(&path, OpenFlags::default(), NAME).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        // A small cache spills pages of a large transaction to the log and reads them back.
        conn.pragma_update(None, "cache_size", 20).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)").unwrap();
        let reader = Connection::open(&path).unwrap();
        let count = |c: &Connection| c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap();
        for id in 0..200 {
            conn.execute("INSERT INTO t (id, v) VALUES (?1, ?2)", params![id, row(id)]).unwrap();
            assert_eq!(count(&reader), id + 1, "a commit is readable by another connection at once");
        }
        // Larger than the buffer, with rewrites of pages it already spilled.
        let tx = conn.transaction().unwrap();
        for id in 200..3200 {
            tx.execute("INSERT INTO t (id, v) VALUES (?1, ?2)", params![id, row(id)]).unwrap();
        }
        tx.execute("UPDATE t SET v = ?1 WHERE id = 250", params![row(7)]).unwrap();
        tx.commit().unwrap();
        assert_eq!(count(&reader), 3200);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        conn.execute("INSERT INTO t (id, v) VALUES (?1, ?2)", params![3200, row(3200)]).unwrap();
        drop((conn, reader));

        let reopened = Connection::open(&path).unwrap();
        let ok: String = reopened.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        let mut stmt = reopened.prepare("SELECT id, v FROM t ORDER BY id").unwrap();
        let rows: Vec<(i64, Vec<u8>)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3201);
        for (id, v) in rows {
            assert_eq!(v, row(if id == 250 { 7 } else { id }), "row {id}");
        }
        drop(stmt);
        drop(reopened);
        std::fs::remove_dir_all(dir).ok();
    }
}
