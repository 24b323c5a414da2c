//! The embedded store: SQLite in WAL mode, one group-committing writer thread, a few
//! read-only connections.

mod pool;
mod schema;
mod writer;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};

use self::pool::ReadPool;
use self::writer::{Ctx, Writer};
use super::{
    Answered, CommitSink, ConvRow, Delta, DeviceRow, NewMessage, RequestRow, Sent, Snapshot, Store,
    StoreError, StoreResult, UserRow,
};
use crate::config::SyncMode;
use crate::model::{
    now_ms, ConvId, ConvRef, DeviceId, Event, EventBody, Message, MessageMeta, NewEvent, Pos,
    StoredEvent, Stream, UserId,
};

/// The SQLite store; clones share the same writer and readers.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    readers: ReadPool,
}

impl SqliteStore {
    /// Opens (creating if needed) `webim.db` in `dir`, migrates it and starts the writer,
    /// which reports every commit to `sink`.
    pub fn open(dir: &Path, sync: SyncMode, sink: Arc<dyn CommitSink>) -> StoreResult<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Database(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("webim.db");
        let mut conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if sync == SyncMode::Full {
                "FULL"
            } else {
                "NORMAL"
            },
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(128);
        schema::migrate(&mut conn)?;
        let head = head_of(&conn)?;
        let readers = ReadPool::open(&path, 4)?;
        let writer =
            Writer::start(conn, head, sink).map_err(|e| StoreError::Database(e.to_string()))?;
        Ok(SqliteStore { writer, readers })
    }
}

fn head_of(conn: &Connection) -> rusqlite::Result<Pos> {
    conn.query_row(
        "SELECT MAX(COALESCE((SELECT MAX(pos) FROM events), 0), COALESCE((SELECT MAX(pos) FROM messages), 0),
                COALESCE((SELECT value FROM meta WHERE key = 'head'), 0))",
        [],
        |r| r.get(0),
    )
}

fn meta(conn: &Connection, key: &str) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

const USER_COLS: &str = "id, username, display_name, avatar";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        avatar: r.get(3)?,
    })
}

const REQUEST_COLS: &str = "id, from_id, to_id, note, ts";

fn request_row(r: &Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        from: r.get(1)?,
        to: r.get(2)?,
        note: r.get(3)?,
        ts: r.get(4)?,
    })
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
    let event = Event {
        ts: message.ts,
        body: EventBody::MessageNew {
            message: message.clone(),
        },
    };
    serde_json::to_string(&event).expect("events serialize")
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
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(field)
        }
        other => other.into(),
    }
}

fn are_friends(conn: &Connection, a: UserId, b: UserId) -> rusqlite::Result<bool> {
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    conn.prepare_cached("SELECT 1 FROM friendships WHERE user_a = ?1 AND user_b = ?2")?
        .exists([a, b])
}

fn append_all(ctx: &mut Ctx<'_>, events: Vec<NewEvent>) -> StoreResult<()> {
    for e in events {
        ctx.append(e)?;
    }
    Ok(())
}

/// Creates the direct conversation of two users (once) with both as members.
fn ensure_direct(ctx: &mut Ctx<'_>, a: UserId, b: UserId) -> StoreResult<ConvRef> {
    let conv = ConvRef::direct(a, b);
    let ConvRef::Direct(a, b) = conv else {
        unreachable!()
    };
    let existing: Option<ConvId> = ctx
        .conn
        .query_row(
            "SELECT id FROM conversations WHERE user_a = ?1 AND user_b = ?2",
            [a, b],
            |r| r.get(0),
        )
        .optional()?;
    if existing.is_none() {
        ctx.conn.execute(
            "INSERT INTO conversations (kind, user_a, user_b) VALUES ('direct', ?1, ?2)",
            [a, b],
        )?;
        let id = ctx.conn.last_insert_rowid();
        ctx.delta(Delta::Conversation { id, conv });
        for user in [a, b] {
            ctx.conn.execute(
                "INSERT INTO members (conv_id, user_id, joined_pos) VALUES (?1, ?2, 0)",
                [id, user],
            )?;
            ctx.delta(Delta::MemberAdded {
                conv: id,
                user,
                from: 0,
            });
        }
    }
    Ok(conv)
}

#[async_trait]
impl Store for SqliteStore {
    async fn snapshot(&self) -> StoreResult<Snapshot> {
        self.readers
            .read(|conn| {
                let mut snap = Snapshot {
                    head: head_of(conn)?,
                    floor: meta(conn, "floor")?,
                    ..Default::default()
                };
                let mut stmt =
                    conn.prepare("SELECT id, kind, user_a, user_b, group_id FROM conversations")?;
                let convs = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                    ))
                })?;
                for c in convs {
                    let (id, kind, a, b, g) = c?;
                    if let Some(conv) = conv_ref_of(&kind, a, b, g) {
                        snap.deltas.push(Delta::Conversation { id, conv });
                    }
                }
                let mut stmt = conn.prepare("SELECT conv_id, user_id, joined_pos FROM members")?;
                for m in stmt.query_map([], |r| {
                    Ok(Delta::MemberAdded {
                        conv: r.get(0)?,
                        user: r.get(1)?,
                        from: r.get(2)?,
                    })
                })? {
                    snap.deltas.push(m?);
                }
                let mut stmt = conn.prepare("SELECT user_a, user_b FROM friendships")?;
                for f in stmt.query_map([], |r| Ok(Delta::FriendsAdded(r.get(0)?, r.get(1)?)))? {
                    snap.deltas.push(f?);
                }
                Ok(snap)
            })
            .await
    }

    async fn create_user(
        &self,
        username: String,
        display_name: String,
        password_hash: String,
    ) -> StoreResult<UserRow> {
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .execute(
                        "INSERT INTO users (username, display_name, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
                        params![username, display_name, password_hash, now_ms()],
                    )
                    .map_err(|e| conflict_on(e, "username"))?;
                Ok(UserRow { id: ctx.conn.last_insert_rowid(), username, display_name, avatar: None })
            })
            .await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<(UserRow, String)>> {
        let username = username.to_owned();
        self.readers
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {USER_COLS}, password_hash FROM users WHERE username = ?1"
                ))?
                .query_row([username], |r| Ok((user_row(r)?, r.get(4)?)))
                .optional()
            })
            .await
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<UserRow>> {
        let ids = ids.to_vec();
        self.readers
            .read(move |conn| {
                let mut stmt =
                    conn.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(u) = stmt.query_row([id], user_row).optional()? {
                        out.push(u);
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn search_users(&self, q: &str, limit: usize) -> StoreResult<Vec<UserRow>> {
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        self.readers
            .read(move |conn| {
                let sql = format!(
                    "SELECT {USER_COLS} FROM users
                     WHERE username LIKE '%' || ?1 || '%' ESCAPE '\\' OR display_name LIKE '%' || ?1 || '%' ESCAPE '\\'
                     ORDER BY (username LIKE ?1 || '%' ESCAPE '\\' OR display_name LIKE ?1 || '%' ESCAPE '\\') DESC, username
                     LIMIT ?2"
                );
                let rows = conn.prepare_cached(&sql)?.query_map(params![escaped, limit as i64], user_row)?.collect();
                rows
            })
            .await
    }

    async fn create_device(
        &self,
        user: UserId,
        name: String,
        token_hash: [u8; 32],
        acked: Pos,
    ) -> StoreResult<DeviceRow> {
        self.writer
            .write(move |ctx| {
                ctx.conn.execute(
                    "INSERT INTO devices (user_id, name, token_hash, acked_pos, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![user, name, &token_hash[..], acked, now_ms()],
                )?;
                Ok(DeviceRow { id: ctx.conn.last_insert_rowid(), user_id: user, acked })
            })
            .await
    }

    async fn device_by_token(&self, token_hash: [u8; 32]) -> StoreResult<Option<DeviceRow>> {
        self.readers
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT id, user_id, acked_pos FROM devices WHERE token_hash = ?1",
                )?
                .query_row([&token_hash[..]], |r| {
                    Ok(DeviceRow {
                        id: r.get(0)?,
                        user_id: r.get(1)?,
                        acked: r.get(2)?,
                    })
                })
                .optional()
            })
            .await
    }

    async fn delete_device(&self, id: DeviceId) -> StoreResult<()> {
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .execute("DELETE FROM devices WHERE id = ?1", [id])?;
                Ok(())
            })
            .await
    }

    async fn save_acks(&self, acks: Vec<(DeviceId, Pos)>) -> StoreResult<()> {
        self.writer
            .write(move |ctx| {
                let mut stmt = ctx.conn.prepare_cached(
                    "UPDATE devices SET acked_pos = ?2 WHERE id = ?1 AND acked_pos < ?2",
                )?;
                for (id, pos) in acks {
                    stmt.execute([id, pos])?;
                }
                Ok(())
            })
            .await
    }

    async fn friend_ids(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        self.readers
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT user_b FROM friendships WHERE user_a = ?1 UNION ALL SELECT user_a FROM friendships WHERE user_b = ?1",
                )?
                .query_map([user], |r| r.get(0))?
                .collect()
            })
            .await
    }

    async fn friend_requests(
        &self,
        user: UserId,
    ) -> StoreResult<(Vec<RequestRow>, Vec<RequestRow>)> {
        self.readers
            .read(move |conn| {
                let incoming = conn
                    .prepare_cached(&format!(
                        "SELECT {REQUEST_COLS} FROM friend_requests WHERE to_id = ?1 ORDER BY id"
                    ))?
                    .query_map([user], request_row)?
                    .collect::<Result<_, _>>()?;
                let outgoing = conn
                    .prepare_cached(&format!(
                        "SELECT {REQUEST_COLS} FROM friend_requests WHERE from_id = ?1 ORDER BY id"
                    ))?
                    .query_map([user], request_row)?
                    .collect::<Result<_, _>>()?;
                Ok((incoming, outgoing))
            })
            .await
    }

    async fn friend_request(&self, id: i64) -> StoreResult<Option<RequestRow>> {
        self.readers
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {REQUEST_COLS} FROM friend_requests WHERE id = ?1"
                ))?
                .query_row([id], request_row)
                .optional()
            })
            .await
    }

    async fn create_friend_request(
        &self,
        from: UserId,
        to: UserId,
        note: String,
        events: Box<dyn FnOnce(i64) -> Vec<NewEvent> + Send>,
    ) -> StoreResult<RequestRow> {
        self.writer
            .write(move |ctx| {
                if are_friends(ctx.conn, from, to)? {
                    return Err(StoreError::Conflict("friendship"));
                }
                let pending = ctx
                    .conn
                    .prepare_cached("SELECT 1 FROM friend_requests WHERE (from_id = ?1 AND to_id = ?2) OR (from_id = ?2 AND to_id = ?1)")?
                    .exists([from, to])?;
                if pending {
                    return Err(StoreError::Conflict("friend_request"));
                }
                let ts = now_ms();
                ctx.conn.execute(
                    "INSERT INTO friend_requests (from_id, to_id, note, ts) VALUES (?1, ?2, ?3, ?4)",
                    params![from, to, note, ts],
                )?;
                let id = ctx.conn.last_insert_rowid();
                append_all(ctx, events(id))?;
                Ok(RequestRow { id, from, to, note, ts })
            })
            .await
    }

    async fn answer_friend_request(
        &self,
        id: i64,
        by: UserId,
        accept: bool,
        events: Vec<NewEvent>,
    ) -> StoreResult<Answered> {
        self.writer
            .write(move |ctx| {
                let from: Option<UserId> = ctx
                    .conn
                    .query_row("DELETE FROM friend_requests WHERE id = ?1 AND to_id = ?2 RETURNING from_id", [id, by], |r| r.get(0))
                    .optional()?;
                let Some(from) = from else { return Ok(Answered::NoSuchRequest) };
                if !accept {
                    append_all(ctx, events)?;
                    return Ok(Answered::Declined);
                }
                let (a, b) = if from < by { (from, by) } else { (by, from) };
                ctx.conn.execute("INSERT OR IGNORE INTO friendships (user_a, user_b, since) VALUES (?1, ?2, ?3)", params![a, b, now_ms()])?;
                let conv = ensure_direct(ctx, a, b)?;
                ctx.delta(Delta::FriendsAdded(a, b));
                append_all(ctx, events)?;
                Ok(Answered::Accepted(conv))
            })
            .await
    }

    async fn remove_friend(
        &self,
        a: UserId,
        b: UserId,
        events: Vec<NewEvent>,
    ) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let (x, y) = if a < b { (a, b) } else { (b, a) };
                if ctx.conn.execute(
                    "DELETE FROM friendships WHERE user_a = ?1 AND user_b = ?2",
                    [x, y],
                )? == 0
                {
                    return Ok(false);
                }
                ctx.delta(Delta::FriendsRemoved(x, y));
                append_all(ctx, events)?;
                Ok(true)
            })
            .await
    }

    async fn send_message(&self, msg: NewMessage) -> StoreResult<Sent> {
        self.writer.write(move |ctx| send_message(ctx, msg)).await
    }

    async fn history(
        &self,
        conv: ConvId,
        conv_ref: ConvRef,
        before: Option<i64>,
        after: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        self.readers
            .read(move |conn| {
                let limit = limit as i64;
                let row = message_row(conv_ref);
                let mut out: Vec<Message> = match (before, after) {
                    (_, Some(after)) => conn
                        .prepare_cached(&format!(
                            "SELECT {MESSAGE_COLS} FROM messages WHERE conv_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq LIMIT ?4"
                        ))?
                        .query_map(params![conv, after, before.unwrap_or(i64::MAX), limit], row)?
                        .collect::<Result<_, _>>()?,
                    (before, None) => {
                        let mut v: Vec<Message> = conn
                            .prepare_cached(&format!(
                                "SELECT {MESSAGE_COLS} FROM messages WHERE conv_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
                            ))?
                            .query_map(params![conv, before.unwrap_or(i64::MAX), limit], row)?
                            .collect::<Result<_, _>>()?;
                        v.reverse();
                        v
                    }
                };
                out.shrink_to_fit();
                Ok(out)
            })
            .await
    }

    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConvRow>> {
        self.readers
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT c.id, c.kind, c.user_a, c.user_b, c.group_id, c.last_seq, m.read_seq
                     FROM members m JOIN conversations c ON c.id = m.conv_id WHERE m.user_id = ?1",
                )?;
                let rows = stmt
                    .query_map([user], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut last = conn.prepare_cached(&format!(
                    "SELECT {MESSAGE_COLS} FROM messages WHERE conv_id = ?1 AND seq = ?2"
                ))?;
                let mut out = Vec::with_capacity(rows.len());
                for (id, kind, a, b, g, last_seq, read_seq) in rows {
                    let Some(conv) = conv_ref_of(&kind, a, b, g) else {
                        continue;
                    };
                    let last_message = last
                        .query_row([id, last_seq], message_row(conv))
                        .optional()?;
                    out.push(ConvRow {
                        id,
                        conv,
                        last_seq,
                        read_seq,
                        last_message,
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn mark_read(
        &self,
        user: UserId,
        conv: ConvId,
        seq: i64,
        event: Box<dyn FnOnce(i64) -> NewEvent + Send>,
    ) -> StoreResult<Option<i64>> {
        self.writer
            .write(move |ctx| {
                let moved: Option<i64> = ctx
                    .conn
                    .prepare_cached(
                        "UPDATE members SET read_seq = MIN(?3, (SELECT last_seq FROM conversations WHERE id = ?1))
                         WHERE conv_id = ?1 AND user_id = ?2 AND read_seq < MIN(?3, (SELECT last_seq FROM conversations WHERE id = ?1))
                         RETURNING read_seq",
                    )?
                    .query_row([conv, user, seq], |r| r.get(0))
                    .optional()?;
                if let Some(seq) = moved {
                    ctx.append(event(seq))?;
                }
                Ok(moved)
            })
            .await
    }

    async fn mark_delivered(
        &self,
        user: UserId,
        marks: Vec<(ConvId, i64)>,
        event: Box<dyn Fn(ConvId, i64) -> NewEvent + Send>,
    ) -> StoreResult<()> {
        self.writer
            .write(move |ctx| {
                for (conv, seq) in marks {
                    let moved = ctx
                        .conn
                        .prepare_cached("UPDATE members SET delivered_seq = ?3 WHERE conv_id = ?1 AND user_id = ?2 AND delivered_seq < ?3")?
                        .execute([conv, user, seq])?;
                    if moved > 0 {
                        ctx.append(event(conv, seq))?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn append(&self, events: Vec<NewEvent>) -> StoreResult<()> {
        self.writer.write(move |ctx| append_all(ctx, events)).await
    }

    async fn events_after(
        &self,
        streams: Vec<(Stream, Pos)>,
        after: Pos,
        limit: usize,
    ) -> StoreResult<Vec<Arc<StoredEvent>>> {
        self.readers
            .read(move |conn| {
                let mut out = Vec::new();
                let mut events = conn.prepare_cached("SELECT pos, json FROM events WHERE stream = ?1 AND pos > ?2 ORDER BY pos LIMIT ?3")?;
                let mut messages = conn.prepare_cached(&format!(
                    "SELECT {MESSAGE_COLS} FROM messages WHERE conv_id = ?1 AND pos > ?2 ORDER BY pos LIMIT ?3"
                ))?;
                let mut conv_refs = conn.prepare_cached("SELECT kind, user_a, user_b, group_id FROM conversations WHERE id = ?1")?;
                for (stream, from) in streams {
                    let lower = after.max(from);
                    let rows = events.query_map(params![stream.key(), lower, limit as i64], |r| {
                        Ok(Arc::new(StoredEvent { pos: r.get(0)?, stream, json: r.get::<_, String>(1)?.into(), message: None }))
                    })?;
                    for e in rows {
                        out.push(e?);
                    }
                    if let Stream::Conv(conv) = stream {
                        let conv_ref = conv_refs
                            .query_row([conv], |r| Ok(conv_ref_of(&r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                            .optional()?
                            .flatten();
                        let Some(conv_ref) = conv_ref else { continue };
                        let to_message = message_row(conv_ref);
                        let rows = messages.query_map(params![conv, lower, limit as i64], |r| Ok((to_message(r)?, r.get::<_, i64>(7)?)))?;
                        for row in rows {
                            let (m, pos) = row?;
                            let meta = MessageMeta { conv, sender: m.sender_id, seq: m.seq, direct: matches!(conv_ref, ConvRef::Direct(..)) };
                            out.push(Arc::new(StoredEvent { pos, stream, json: message_event_json(&m).into(), message: Some(meta) }));
                        }
                    }
                }
                out.sort_by_key(|e| e.pos);
                out.truncate(limit);
                Ok(out)
            })
            .await
    }

    async fn sweep(&self, before_ts: i64) -> StoreResult<Pos> {
        // In chunks, so a large backlog never holds the writer (and every send) for long.
        loop {
            let (removed, floor) = self
                .writer
                .write(move |ctx| {
                    let mut max_pos: Pos = 0;
                    let mut removed = 0;
                    for sql in [
                        "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE ts < ?1 ORDER BY id LIMIT 2000) RETURNING pos",
                        "DELETE FROM events WHERE pos IN (SELECT pos FROM events WHERE ts < ?1 ORDER BY pos LIMIT 2000) RETURNING pos",
                    ] {
                        let mut stmt = ctx.conn.prepare_cached(sql)?;
                        for pos in stmt.query_map([before_ts], |r| r.get::<_, Pos>(0))? {
                            max_pos = max_pos.max(pos?);
                            removed += 1;
                        }
                    }
                    let floor = meta(ctx.conn, "floor")?.max(max_pos);
                    if removed > 0 {
                        // Remember the head too: sweeping the newest rows must not move it back.
                        let head = head_of(ctx.conn)?.max(ctx.next_pos());
                        ctx.conn.execute(
                            "INSERT INTO meta (key, value) VALUES ('floor', ?1), ('head', ?2)
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            [floor, head],
                        )?;
                    }
                    Ok((removed, floor))
                })
                .await?;
            if removed == 0 {
                return Ok(floor);
            }
        }
    }
}

fn send_message(ctx: &mut Ctx<'_>, msg: NewMessage) -> StoreResult<Sent> {
    let row = message_row(msg.conv_ref);
    let existing = ctx
        .conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLS} FROM messages WHERE sender_id = ?1 AND client_msg_id = ?2"
        ))?
        .query_row(params![msg.sender, msg.client_msg_id], |r| {
            Ok((r.get::<_, ConvId>(8)?, row(r)?))
        })
        .optional()?;
    if let Some((conv, mut message)) = existing {
        if conv != msg.conv {
            return Err(StoreError::Conflict("client_msg_id"));
        }
        message.conversation_id = msg.conv_ref.to_string();
        return Ok(Sent {
            message,
            created: false,
        });
    }
    let seq: i64 = ctx
        .conn
        .prepare_cached(
            "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        )?
        .query_row([msg.conv], |r| r.get(0))?;
    let pos = ctx.next_pos();
    let ts = now_ms();
    ctx.conn
        .prepare_cached(
            "INSERT INTO messages (conv_id, seq, sender_id, client_msg_id, body, ts, pos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![msg.conv, seq, msg.sender, msg.client_msg_id, msg.body, ts, pos])?;
    let id = ctx.conn.last_insert_rowid();
    ctx.conn
        .prepare_cached("UPDATE members SET read_seq = ?3 WHERE conv_id = ?1 AND user_id = ?2")?
        .execute([msg.conv, msg.sender, seq])?;
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
    let meta = MessageMeta {
        conv: msg.conv,
        sender: msg.sender,
        seq,
        direct: matches!(msg.conv_ref, ConvRef::Direct(..)),
    };
    ctx.publish(
        pos,
        Stream::Conv(msg.conv),
        message_event_json(&message),
        Some(meta),
    );
    Ok(Sent {
        message,
        created: true,
    })
}

#[cfg(test)]
mod tests;
