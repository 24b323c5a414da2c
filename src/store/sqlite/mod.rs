//! The embedded store: SQLite in WAL mode, one group-committing writer thread, a few
//! read-only connections.

mod accounts;
mod catch_up;
mod checkpoint;
mod contacts;
mod events;
mod gather;
mod groups;
mod held;
mod keys;
mod marks;
mod messages;
mod pool;
mod schema;
mod search;
mod wal;
mod writer;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

use self::held::Sql;
use self::pool::ReadPool;
use self::writer::{Ctx, Writer};
use super::{
    AccountStore, Answered, CommitSink, ContactStore, ConvRow, Delta, DeviceRow, EventStore, GroupChanges, GroupEvents,
    GroupStore, Joined, MessageStore, NewMessage, Recall, RequestRow, Sent, Snapshot, StoreError, StoreResult,
    UserEvents, UserRow,
};
use crate::config::SyncMode;
use crate::model::{
    group_avatar_url, message_new_json, now_ms, ConvId, ConvRef, DeviceId, Group, JoinPolicy, Message, MessageMeta,
    NewEvent, Pos, Role, StoredEvent, Stream, UserId,
};

/// The SQLite store; clones share the same writer and readers.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    readers: ReadPool,
    /// Conversations' newest positions, which their rows may not hold yet (`marks.rs`).
    newest: Arc<marks::Newest>,
}

impl SqliteStore {
    /// Opens (creating if needed) `webim.db` in `dir`, migrates it and starts the writer,
    /// which reports every commit to `sink`.
    pub fn open(dir: &Path, sync: SyncMode, sink: Arc<dyn CommitSink>) -> StoreResult<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("webim.db");
        let mut conn = open_writer(&path, sync)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // After the switch to WAL mode, which deletes any log file it finds, and before the
        // first transaction. Only fsynced commits pay for a growing log; a failure here only
        // costs speed.
        if sync == SyncMode::Full {
            if let Err(e) = wal::preallocate(&path, wal::full_size()) {
                tracing::warn!(error = %e, "could not preallocate the write-ahead log");
            }
        }
        // Each job's savepoint copies the pages it changes; keep those copies off the disk.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // The hot index pages of busy conversations stay cached (the default is 2 MiB).
        conn.pragma_update(None, "cache_size", -65536)?;
        // The writer checkpoints, between batches (`checkpoint.rs`).
        checkpoint::install(&conn);
        conn.pragma_update(None, "synchronous", if sync == SyncMode::Full { "FULL" } else { "NORMAL" })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(128);
        schema::migrate(&mut conn)?;
        let head = head_of(&conn)?;
        let keys = keys::RecentKeys::load(&conn)?;
        // The marks of messages stored before the last stop but not copied yet (`marks.rs`):
        // the writer starts holding none.
        let tx = conn.transaction()?;
        marks::copy(&tx, keys.through(), i64::MAX)?;
        tx.commit()?;
        let readers = ReadPool::open(&path, 4)?;
        let newest = Arc::new(marks::Newest::default());
        let writer =
            Writer::start(conn, head, keys, newest.clone(), sink).map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(SqliteStore { writer, readers, newest })
    }
}

/// The write connection: when its commits sync the log, through the VFS that writes each
/// commit's log frames in a few large writes.
fn open_writer(path: &Path, sync: SyncMode) -> StoreResult<Connection> {
    if sync == SyncMode::Full {
        match gather::register() {
            Ok(()) => return Ok(Connection::open_with_flags_and_vfs(path, OpenFlags::default(), gather::NAME)?),
            // Only costs speed.
            Err(code) => tracing::warn!(code, "could not register the gathering VFS; using SQLite's own"),
        }
    }
    Ok(Connection::open(path)?)
}

fn head_of(conn: &Connection) -> rusqlite::Result<Pos> {
    conn.query_row(
        // Messages are inserted in position order, so the last rowid holds the highest one.
        "SELECT MAX(COALESCE((SELECT MAX(pos) FROM events), 0), COALESCE((SELECT pos FROM messages ORDER BY id DESC LIMIT 1), 0),
                COALESCE((SELECT value FROM meta WHERE key = 'head'), 0))",
        [],
        |r| r.get(0),
    )
}

/// A number kept in `meta`, 0 when unset. Cached: every catch-up reads two.
fn meta(conn: &Connection, key: &str) -> rusqlite::Result<i64> {
    let mut stmt = conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?;
    Ok(stmt.query_row([key], |r| r.get(0)).optional()?.unwrap_or(0))
}

const USER_COLS: &str = "id, username, display_name, avatar";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow { id: r.get(0)?, username: r.get(1)?, display_name: r.get(2)?, avatar: r.get(3)? })
}

const REQUEST_COLS: &str = "id, from_id, to_id, note, ts";

fn request_row(r: &Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow { id: r.get(0)?, from: r.get(1)?, to: r.get(2)?, note: r.get(3)?, ts: r.get(4)? })
}

const MESSAGE_COLS: &str = "id, seq, sender_id, client_msg_id, body, ts, recalled, pos, conv_id";

fn message_row(conv: ConvRef) -> impl Fn(&Row<'_>) -> rusqlite::Result<Message> {
    move |r| {
        let recalled: bool = r.get(6)?;
        Ok(Message {
            id: r.get(0)?,
            conversation_id: conv.to_string(),
            seq: r.get(1)?,
            sender_id: r.get(2)?,
            client_msg_id: r.get(3)?,
            body: if recalled { String::new() } else { r.get(4)? },
            ts: r.get(5)?,
            recalled,
        })
    }
}

/// Renders `message.new` once; every recipient gets these bytes.
fn message_event_json(message: &Message) -> String {
    message_new_json(message.ts, &message.to_json())
}

fn conv_ref_of(kind: &str, a: Option<i64>, b: Option<i64>, group: Option<i64>) -> Option<ConvRef> {
    match (kind, a, b, group) {
        ("direct", Some(a), Some(b), _) => Some(ConvRef::Direct(a, b)),
        ("group", _, _, Some(g)) => Some(ConvRef::Group(g)),
        _ => None,
    }
}

fn conflict_on(e: rusqlite::Error, field: &'static str) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict(field)
        }
        other => other.into(),
    }
}

fn are_friends(conn: &Connection, a: UserId, b: UserId) -> rusqlite::Result<bool> {
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    conn.prepare_cached("SELECT 1 FROM friendships WHERE user_a = ?1 AND user_b = ?2")?.exists([a, b])
}

fn append_all(ctx: &mut Ctx<'_, '_>, events: Vec<NewEvent>) -> StoreResult<()> {
    for e in events {
        ctx.append(e)?;
    }
    Ok(())
}

/// Records that `user` stops receiving `stream` now, having received it since `from`: a device
/// of theirs that catches up from before now still gets the stream's events up to here
/// (`catch_up::subscriptions`).
fn end_subscription(ctx: &mut Ctx<'_, '_>, user: UserId, stream: Stream, from: Pos) -> StoreResult<()> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO past_subscriptions (user_id, stream, from_pos, until_pos) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![user, stream.key(), from, ctx.last_pos()])?;
    Ok(())
}

/// Creates the direct conversation of two users (once) with both as members.
fn ensure_direct(ctx: &mut Ctx<'_, '_>, a: UserId, b: UserId) -> StoreResult<ConvRef> {
    let conv = ConvRef::direct(a, b);
    let ConvRef::Direct(a, b) = conv else { unreachable!() };
    let existing: Option<ConvId> = ctx
        .conn
        .query_row("SELECT id FROM conversations WHERE user_a = ?1 AND user_b = ?2", [a, b], |r| r.get(0))
        .optional()?;
    if existing.is_none() {
        ctx.conn.execute("INSERT INTO conversations (kind, user_a, user_b) VALUES ('direct', ?1, ?2)", [a, b])?;
        let id = ctx.conn.last_insert_rowid();
        ctx.delta(Delta::Conversation { id, conv });
        for user in [a, b] {
            ctx.conn.execute("INSERT INTO members (conv_id, user_id, joined_pos) VALUES (?1, ?2, 0)", [id, user])?;
            ctx.delta(Delta::MemberAdded { conv: id, user, from: 0 });
        }
    }
    Ok(conv)
}

// Runs without a savepoint (`Writer::write_checked`): every check comes before the first change.
fn send_message(ctx: &mut Ctx<'_, '_>, msg: NewMessage) -> StoreResult<Sent> {
    if let Some(id) = ctx.keys.find(ctx.held, msg.sender, &msg.client_msg_id)? {
        // A key can outlive its message (swept, or rolled back with its batch): then the
        // send is a new one.
        if let Some(sent) = earlier_send(ctx, &msg, id)? {
            return Ok(sent);
        }
    }
    let seq = ctx.marks.last_seq(ctx.held, msg.conv)? + 1;
    // Taken only once the message is stored: a failed insert leaves no gap.
    let pos = ctx.last_pos() + 1;
    let ts = now_ms();
    let id = ctx.keys.next_id();
    ctx.held.get(Sql::InsertMessage)?.execute(params![
        id,
        msg.conv,
        seq,
        msg.sender,
        msg.client_msg_id,
        msg.body,
        ts,
        pos
    ])?;
    ctx.keys.stored(msg.sender, &msg.client_msg_id);
    let taken = ctx.next_pos();
    debug_assert_eq!(taken, pos);
    // The conversation's last seq and the sender's read mark reach their rows with the
    // next copy of the index entries (`marks.rs`).
    ctx.marks.stored(msg.conv, msg.sender, seq, id, pos);
    let message = Message {
        id,
        conversation_id: msg.conv_ref.to_string(),
        seq,
        sender_id: msg.sender,
        client_msg_id: msg.client_msg_id,
        body: msg.body,
        ts,
        recalled: false,
    };
    let meta =
        MessageMeta { conv: msg.conv, sender: msg.sender, seq, direct: matches!(msg.conv_ref, ConvRef::Direct(..)) };
    // Rendered once, for the event every recipient gets and for the sender's answer.
    let json = message.to_json();
    ctx.publish(pos, Stream::Conv(msg.conv), message_new_json(ts, &json), Some(meta));
    Ok(Sent { message, json, created: true })
}

/// The message an earlier send with the same `client_msg_id` stored as `id`, if it is still
/// there; the same id in another conversation is a conflict.
fn earlier_send(ctx: &mut Ctx<'_, '_>, msg: &NewMessage, id: i64) -> StoreResult<Option<Sent>> {
    let found = ctx
        .conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE id = ?1 AND sender_id = ?2 AND client_msg_id = ?3"
        ))?
        .query_row(params![id, msg.sender, msg.client_msg_id], |r| {
            Ok((r.get::<_, ConvId>(8)?, message_row(msg.conv_ref)(r)?))
        })
        .optional()?;
    let Some((conv, mut message)) = found else { return Ok(None) };
    if conv != msg.conv {
        return Err(StoreError::Conflict("client_msg_id"));
    }
    message.conversation_id = msg.conv_ref.to_string();
    let json = message.to_json();
    Ok(Some(Sent { message, json, created: false }))
}

#[cfg(test)]
mod tests;
