//! The single writer: one thread owns the write connection and commits whatever jobs have
//! queued up in one transaction (group commit), so many concurrent sends share one fsync.
//! Positions are assigned here, which makes commit order and position order the same.

use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint;
use super::held::{Held, Sql};
use super::keys::RecentKeys;
use super::marks::{Marks, Newest};
use crate::model::{MessageMeta, NewEvent, Pos, StoredEvent, Stream};
use crate::store::{CommitSink, Committed, Delta, StoreError, StoreResult};

/// Most jobs in one transaction; bounds the latency a large backlog adds to the first job.
const MAX_BATCH: usize = 1024;

/// A unit of work run inside the batch transaction, within its own savepoint if guarded.
type Job = Box<dyn FnOnce(&mut Ctx<'_, '_>) -> (bool, Reply) + Send>;
/// Answers the caller once the batch's fate is known.
type Reply = Box<dyn FnOnce(StoreResult<()>) + Send>;

/// A job and whether it runs inside a savepoint of its own.
struct Queued {
    job: Job,
    guarded: bool,
}

/// What a job sees: the connection (inside a transaction), the event log, the newest
/// messages' keys and marks, and the writer's held statements.
pub struct Ctx<'a, 'c> {
    /// The write connection, inside the batch transaction.
    pub conn: &'c Connection,
    /// The newest messages, not yet in the index tables: their keys, and the next id.
    pub keys: &'a mut RecentKeys,
    /// Conversations' last seqs and senders' read marks, where the rows do not hold them yet.
    pub marks: &'a mut Marks,
    /// Statements of the send path, held prepared.
    pub held: &'a mut Held<'c>,
    next_pos: &'a mut Pos,
    out: &'a mut Committed,
}

impl Ctx<'_, '_> {
    /// Takes the next position in the global order.
    pub fn next_pos(&mut self) -> Pos {
        *self.next_pos += 1;
        *self.next_pos
    }

    /// Stores an event in the events table and queues it for the sink.
    pub fn append(&mut self, event: NewEvent) -> StoreResult<Pos> {
        let pos = self.next_pos();
        let json = serde_json::to_string(&event.event).expect("events serialize");
        self.held.get(Sql::InsertEvent)?.execute((pos, event.stream.key(), event.event.ts, &json))?;
        self.out.events.push(Arc::new(StoredEvent { pos, stream: event.stream, json: json.into(), message: None }));
        Ok(pos)
    }

    /// Queues an event stored elsewhere (a message row) for the sink.
    pub fn publish(&mut self, pos: Pos, stream: Stream, json: String, message: Option<MessageMeta>) {
        self.out.events.push(Arc::new(StoredEvent { pos, stream, json: json.into(), message }));
    }

    /// Queues a membership change for the sink; it applies to events stored after it.
    pub fn delta(&mut self, delta: Delta) {
        self.out.deltas.push((*self.next_pos, delta));
    }

    /// The last position taken so far.
    pub fn last_pos(&self) -> Pos {
        *self.next_pos
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::UnboundedSender<Queued>,
}

impl Writer {
    /// Starts the writer thread on `conn`; positions continue after `head`, and `keys` are
    /// those of the messages not yet in the index tables. The thread ends when every
    /// handle is dropped.
    pub fn start(
        conn: Connection,
        head: Pos,
        keys: RecentKeys,
        newest: Arc<Newest>,
        sink: Arc<dyn CommitSink>,
    ) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::unbounded_channel();
        let finish = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let (done, batches) = mpsc::unbounded_channel();
                runtime.spawn(finish_on_runtime(batches, sink));
                Finish::Runtime(done)
            }
            Err(_) => Finish::Here(sink),
        };
        let keys_through = keys.through();
        std::thread::Builder::new().name("webim-writer".into()).spawn(move || {
            yield_to_requests();
            run(conn, head, keys, Marks::new(keys_through, newest), rx, finish)
        })?;
        Ok(Writer { jobs })
    }

    /// Runs `f` in the next group commit and returns its result once it is durable (or
    /// its error, after its writes were rolled back).
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_, '_>) -> StoreResult<T> + Send + 'static,
    {
        self.queue(f, true).await
    }

    /// Like [`Writer::write`] but without a savepoint, for a job that makes all its checks
    /// before its first change: a savepoint copies every page the job changes, ~15 % of the
    /// writer's time on sends. Should such a job still fail after changing rows (or after
    /// SQLite ended the transaction), the whole batch is rolled back: the jobs that ran get
    /// the database error, those not yet run see the store as closed. Only row changes are
    /// seen (`total_changes`), so such a job must make no other kind (schema, pragmas).
    pub async fn write_checked<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_, '_>) -> StoreResult<T> + Send + 'static,
    {
        self.queue(f, false).await
    }

    async fn queue<T, F>(&self, f: F, guarded: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ctx<'_, '_>) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |ctx| {
            let result = f(ctx);
            let keep = result.is_ok();
            let reply: Reply = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (keep, reply)
        });
        self.jobs.send(Queued { job, guarded }).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

/// A committed (or failed) batch on its way back: its events for the sink, and the answers.
struct Done {
    out: Committed,
    replies: Vec<Reply>,
    /// The batch's error; `None` once it is durable.
    error: Option<String>,
}

impl Done {
    /// Publishes the batch, then answers its callers: the sink first, so that a caller who
    /// has its answer finds its event in the hub.
    fn finish(self, sink: &dyn CommitSink) {
        match self.error {
            None => {
                if !self.out.events.is_empty() || !self.out.deltas.is_empty() {
                    sink.committed(&self.out);
                }
                for reply in self.replies {
                    reply(Ok(()));
                }
            }
            Some(e) => {
                for reply in self.replies {
                    reply(Err(StoreError::Database(e.clone())));
                }
            }
        }
    }
}

/// Where a batch is published and answered.
enum Finish {
    /// On the runtime, by one task. Done from the writer thread, every answer and every
    /// held poll it wakes would be a wake-up from outside the runtime, and those wait in the
    /// runtime's shared queue, which a busy worker serves only now and then: under overload,
    /// held polls waited there for seconds while new requests were read first.
    /// From a task on the runtime they join its own queue, in turn with the reading of
    /// requests.
    Runtime(mpsc::UnboundedSender<Done>),
    /// On the writer thread, when the store was opened outside a runtime.
    Here(Arc<dyn CommitSink>),
}

async fn finish_on_runtime(mut batches: mpsc::UnboundedReceiver<Done>, sink: Arc<dyn CommitSink>) {
    while let Some(done) = batches.recv().await {
        done.finish(&*sink);
    }
}

fn run(
    conn: Connection,
    mut head: Pos,
    mut keys: RecentKeys,
    mut marks: Marks,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    finish: Finish,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut held = Held::new(&conn);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut out = Committed::default();
        let mut replies = Vec::with_capacity(batch.len());
        let mut state = State { held: &mut held, head: &mut head, keys: &mut keys, marks: &mut marks };
        let error = match commit_batch(&conn, &mut state, &mut batch, &mut out, &mut replies) {
            Ok(()) => {
                marks.committed(keys.committed());
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed");
                keys.rolled_back();
                marks.rolled_back();
                // Positions taken by the failed batch are simply skipped: they only need to grow.
                let _ = conn.execute_batch("ROLLBACK");
                Some(e.to_string())
            }
        };
        let committed = error.is_none();
        let done = Done { out, replies, error };
        match &finish {
            // A send fails only once the runtime is gone, and with it everyone waiting.
            Finish::Runtime(to_runtime) => drop(to_runtime.send(done)),
            Finish::Here(sink) => done.finish(&**sink),
        }
        // After the answers: the batch's callers need not wait for the copying.
        if committed && checkpoint::due() {
            checkpoint::run(&conn);
        }
    }
}

/// What the writer keeps from batch to batch.
struct State<'s, 'c> {
    held: &'s mut Held<'c>,
    head: &'s mut Pos,
    keys: &'s mut RecentKeys,
    marks: &'s mut Marks,
}

fn commit_batch<'c>(
    conn: &'c Connection,
    state: &mut State<'_, 'c>,
    batch: &mut Vec<Queued>,
    out: &mut Committed,
    replies: &mut Vec<Reply>,
) -> rusqlite::Result<()> {
    let State { held, head, keys, marks } = state;
    held.run(Sql::Begin)?;
    if keys.begin(conn)? {
        marks.write(held)?;
    }
    for Queued { job, guarded } in batch.drain(..) {
        let (events, deltas) = (out.events.len(), out.deltas.len());
        let changes = conn.total_changes();
        let marked = marks.savepoint();
        if guarded {
            // Held: `execute_batch` would parse these anew for every job.
            held.run(Sql::Savepoint)?;
        }
        let mut ctx = Ctx { conn, keys, marks, held, next_pos: head, out };
        // A panicking job must not take the writer (and every later write) down with it:
        // its writes are rolled back and its caller sees the store as closed.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut ctx)));
        let (keep, reply) = match outcome {
            Ok((keep, reply)) => (keep, Some(reply)),
            Err(_) => {
                tracing::error!("a store write panicked; its changes were rolled back");
                (false, None)
            }
        };
        if !keep {
            if guarded {
                held.run(Sql::RollbackTo)?;
            } else if conn.total_changes() != changes || conn.is_autocommit() {
                // Nothing can undo this job's changes alone; and after some errors SQLite
                // has already rolled back the whole transaction, so later jobs would each
                // commit on their own.
                replies.extend(reply);
                let abort = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT);
                return Err(rusqlite::Error::SqliteFailure(
                    abort,
                    Some("a job without a savepoint failed after a change".into()),
                ));
            }
            // Whatever seq the job took went with it.
            marks.undo_to(marked);
            out.events.truncate(events);
            out.deltas.truncate(deltas);
        }
        if guarded {
            held.run(Sql::Release)?;
        }
        replies.extend(reply);
    }
    held.run(Sql::Commit)
}

/// How much nicer than the process the writer thread is: against a thread at the process's
/// own value, a quarter of the CPU's share.
#[cfg(target_os = "linux")]
const WRITER_NICER_BY: libc::c_int = 5;

/// Lets the threads that serve requests go first when both want the CPU. At the default
/// priority the writer, which sleeps on every `fsync`, took the CPU back the moment a job
/// arrived and committed batches of ~10 messages in `direct`, each paying a commit's fixed
/// CPU cost (~75–95 µs); as a batch thread (no preemption on wake-up) at a lower priority
/// it runs once the requests already read are handled and takes what they queued, in larger
/// batches. On an idle core it still runs at once, so a lone message waits no longer
/// (BENCHMARKS.md, twelfth measurement). Failing (a sandbox may forbid it) only costs speed.
#[cfg(target_os = "linux")]
fn yield_to_requests() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `pthread_self` names the calling thread, which lives through the call, and
    // `param` is read only during it. Per thread by definition, unlike `sched_setscheduler`
    // (musl refuses that one).
    let policy = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_BATCH, &param) };
    if policy != 0 {
        let e = std::io::Error::from_raw_os_error(policy);
        tracing::warn!(error = %e, "the writer stays a normal thread; commits may be smaller under load");
    }
    // Relative to where the process runs: setting an absolute 5 would raise a writer started
    // under `nice -n 10` (as root) above the threads it should let go first.
    // SAFETY: `gettid` has no preconditions; `getpriority` and `setpriority` only read their
    // arguments and act on this thread (a thread id names one thread on Linux). `getpriority`
    // may return -1 as a value, so errno is cleared before and read after.
    let set = unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if now == -1 && *libc::__errno_location() != 0 {
            -1
        } else {
            libc::setpriority(libc::PRIO_PROCESS, tid, (now + WRITER_NICER_BY).min(19))
        }
    };
    if set != 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(error = %e, "the writer keeps the process's priority; commits may be smaller under load");
    }
}

/// Elsewhere the writer keeps the default scheduling.
#[cfg(not(target_os = "linux"))]
fn yield_to_requests() {}
