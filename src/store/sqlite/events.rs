//! The event log: start-up state, appends, catch-up reads, retention.

use super::*;

#[async_trait]
impl EventStore for SqliteStore {
    async fn snapshot(&self) -> StoreResult<Snapshot> {
        self.readers
            .read(|conn| {
                let mut snap = Snapshot { head: head_of(conn)?, floor: meta(conn, "floor")?, ..Default::default() };
                let mut stmt = conn.prepare("SELECT id, kind, user_a, user_b, group_id FROM conversations")?;
                let convs = stmt.query_map([], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?;
                for c in convs {
                    let (id, kind, a, b, g) = c?;
                    if let Some(conv) = conv_ref_of(&kind, a, b, g) {
                        snap.deltas.push(Delta::Conversation { id, conv });
                    }
                }
                let mut stmt = conn.prepare("SELECT conv_id, user_id, joined_pos FROM members")?;
                for m in stmt
                    .query_map([], |r| Ok(Delta::MemberAdded { conv: r.get(0)?, user: r.get(1)?, from: r.get(2)? }))?
                {
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
                let mut events = conn.prepare_cached(
                    "SELECT pos, json FROM events WHERE stream = ?1 AND pos > ?2 ORDER BY pos LIMIT ?3",
                )?;
                let mut messages = conn.prepare_cached(&format!(
                    "SELECT {MESSAGE_COLS} FROM conv_messages WHERE conv_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3"
                ))?;
                let mut conv_refs =
                    conn.prepare_cached("SELECT kind, user_a, user_b, group_id FROM conversations WHERE id = ?1")?;
                for (stream, from) in streams {
                    let lower = after.max(from);
                    let rows = events.query_map(params![stream.key(), lower, limit as i64], |r| {
                        Ok(Arc::new(StoredEvent {
                            pos: r.get(0)?,
                            stream,
                            json: r.get::<_, String>(1)?.into(),
                            message: None,
                        }))
                    })?;
                    for e in rows {
                        out.push(e?);
                    }
                    if let Stream::Conv(conv) = stream {
                        let conv_ref = conv_refs
                            .query_row([conv], |r| {
                                Ok(conv_ref_of(&r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                            })
                            .optional()?
                            .flatten();
                        let Some(conv_ref) = conv_ref else { continue };
                        let Some(from_seq) = first_seq_after(conn, conv, lower)? else { continue };
                        let to_message = message_row(conv_ref);
                        let rows = messages.query_map(params![conv, from_seq, limit as i64], |r| {
                            Ok((to_message(r)?, r.get::<_, i64>(7)?))
                        })?;
                        for row in rows {
                            let (m, pos) = row?;
                            let meta = MessageMeta {
                                conv,
                                sender: m.sender_id,
                                seq: m.seq,
                                direct: matches!(conv_ref, ConvRef::Direct(..)),
                            };
                            out.push(Arc::new(StoredEvent {
                                pos,
                                stream,
                                json: message_event_json(&m).into(),
                                message: Some(meta),
                            }));
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

/// The lowest seq of `conv` whose message was stored after position `after`, found by binary
/// search over seq (positions grow with seq within a conversation): a few index probes
/// however long the conversation. The probes go to the indexed messages only; the newest,
/// not indexed yet (`keys.rs`), have the highest seqs and are scanned once, only when the
/// answer is among them: through `conv_messages`, each probe scanned them (~90 µs with
/// 3,000 of them, BENCHMARKS.md, twelfth measurement).
fn first_seq_after(conn: &Connection, conv: ConvId, after: Pos) -> rusqlite::Result<Option<i64>> {
    let mut at_or_after = conn.prepare_cached(
        "SELECT s.seq, m.pos FROM message_seqs s JOIN messages m ON m.id = s.id
         WHERE s.conv_id = ?1 AND s.seq >= ?2 ORDER BY s.seq LIMIT 1",
    )?;
    let mut probe = |seq: i64| -> rusqlite::Result<Option<(i64, Pos)>> {
        at_or_after.query_row([conv, seq], |r| Ok((r.get(0)?, r.get(1)?))).optional()
    };
    let last_indexed: Option<(i64, Pos)> = conn
        .prepare_cached(
            "SELECT s.seq, m.pos FROM message_seqs s JOIN messages m ON m.id = s.id
             WHERE s.conv_id = ?1 ORDER BY s.seq DESC LIMIT 1",
        )?
        .query_row([conv], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((last_seq, _)) = last_indexed.filter(|(_, pos)| *pos > after) else {
        return conn
            .prepare_cached("SELECT MIN(seq) FROM unindexed_messages WHERE conv_id = ?1 AND pos > ?2")?
            .query_row(params![conv, after], |r| r.get(0));
    };
    let (mut lo, mut hi) = (0, last_seq);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match probe(mid)? {
            Some((_, pos)) if pos > after => hi = mid,
            _ => lo = mid + 1,
        }
    }
    Ok(Some(lo))
}
