//! Messages, conversations and receipts.

use super::*;

#[async_trait]
impl MessageStore for SqliteStore {
    async fn send_message(&self, msg: NewMessage) -> StoreResult<Sent> {
        self.writer.write_checked(move |ctx| send_message(ctx, msg)).await
    }

    async fn history(
        &self,
        conv: ConvId,
        conv_ref: ConvRef,
        before: Option<i64>,
        after: Option<i64>,
        floor: i64,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        self.readers
            .read(move |conn| {
                let (limit, before) = (limit as i64, before.unwrap_or(i64::MAX));
                let row = message_row(conv_ref);
                if let Some(after) = after {
                    let sql = format!("SELECT {MESSAGE_COLS} FROM conv_messages WHERE conv_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq LIMIT +?4");
                    return conn.prepare_cached(&sql)?.query_map(params![conv, after.max(floor), before, limit], row)?.collect();
                }
                let sql = format!("SELECT {MESSAGE_COLS} FROM conv_messages WHERE conv_id = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT +?4");
                let mut page: Vec<Message> = conn.prepare_cached(&sql)?.query_map(params![conv, floor, before, limit], row)?.collect::<Result<_, _>>()?;
                page.reverse();
                Ok(page)
            })
            .await
    }

    async fn recall(
        &self,
        conv: ConvId,
        seq: i64,
        by: UserId,
        any_sender: bool,
        not_before_ts: i64,
        event: NewEvent,
    ) -> StoreResult<Recall> {
        self.writer
            .write(move |ctx| {
                let found: Option<(i64, UserId, i64, bool)> = ctx
                    .conn
                    .prepare_cached(
                        "SELECT id, sender_id, ts, recalled FROM conv_messages WHERE conv_id = ?1 AND seq = ?2",
                    )?
                    .query_row([conv, seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()?;
                let Some((id, sender, ts, recalled)) = found else { return Ok(Recall::NoSuchMessage) };
                if !any_sender && sender != by {
                    return Ok(Recall::NotYours);
                }
                if recalled {
                    return Ok(Recall::Done);
                }
                if !any_sender && ts < not_before_ts {
                    return Ok(Recall::TooLate);
                }
                ctx.conn.execute("UPDATE messages SET recalled = 1, body = '' WHERE id = ?1", [id])?;
                ctx.append(event)?;
                Ok(Recall::Done)
            })
            .await
    }

    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConvRow>> {
        let newest = self.newest.clone();
        self.readers
            .read(move |conn| {
                // One snapshot: a copy moves the rows and the messages not yet indexed together.
                let tx = conn.unchecked_transaction()?;
                // The other member's positions, for direct chats only (receipt marks).
                let mut stmt = tx.prepare_cached(
                    "SELECT c.id, c.kind, c.user_a, c.user_b, c.group_id, c.last_seq, m.read_seq, p.read_seq, p.delivered_seq, c.last_pos
                     FROM members m JOIN conversations c ON c.id = m.conv_id
                     LEFT JOIN members p ON p.conv_id = c.id AND p.user_id <> m.user_id AND c.kind = 'direct'
                     WHERE m.user_id = ?1",
                )?;
                // Through the index only: `conv_messages` would scan the newest messages once
                // per conversation; those are read in one scan below.
                let mut last = tx.prepare_cached(&format!(
                    "SELECT {MESSAGE_COLS} FROM messages WHERE id = (SELECT id FROM message_seqs WHERE conv_id = ?1 AND seq = ?2)"
                ))?;
                let mut out: Vec<ConvRow> = Vec::new();
                let mut place = std::collections::HashMap::new();
                let mut scan_needed = false;
                let mut rows = stmt.query([user])?;
                while let Some(r) = rows.next()? {
                    let (id, kind): (ConvId, String) = (r.get(0)?, r.get(1)?);
                    let Some(conv) = conv_ref_of(&kind, r.get(2)?, r.get(3)?, r.get(4)?) else { continue };
                    let last_seq: i64 = r.get(5)?;
                    let last_message = last.query_row([id, last_seq], message_row(conv)).optional()?;
                    // Messages newer than the row, or its last one not indexed yet.
                    scan_needed |= newest.of(id) > r.get(9)? || (last_message.is_none() && last_seq > 0);
                    place.insert(id, out.len());
                    out.push(ConvRow {
                        id,
                        conv,
                        last_seq,
                        read_seq: r.get(6)?,
                        peer_read_seq: r.get(7)?,
                        peer_delivered_seq: r.get(8)?,
                        last_message,
                    });
                }
                if !scan_needed {
                    return Ok(out);
                }
                // The newest messages, whose last seq, last message and read marks the rows
                // and the index may not have yet (`marks.rs`): a member has read what they sent.
                let mut scan = tx.prepare_cached(&format!("SELECT {MESSAGE_COLS} FROM unindexed_messages ORDER BY id"))?;
                let mut rows = scan.query([])?;
                while let Some(r) = rows.next()? {
                    let Some(&i) = place.get(&r.get::<_, ConvId>(8)?) else { continue };
                    let (seq, sender): (i64, UserId) = (r.get(1)?, r.get(2)?);
                    let row = &mut out[i];
                    if sender == user {
                        row.read_seq = row.read_seq.max(seq);
                    } else if let Some(peer_read) = &mut row.peer_read_seq {
                        *peer_read = (*peer_read).max(seq);
                    }
                    if seq >= row.last_seq {
                        row.last_seq = seq;
                        row.last_message = Some(message_row(row.conv)(r)?);
                    }
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
                let last = match ctx.marks.last_seq(ctx.held, conv) {
                    Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(None),
                    last => last?,
                };
                // Up to the newest message at most; and a user has read what they sent,
                // which their row may not hold yet (`marks.rs`).
                let seq = seq.min(last);
                if seq <= ctx.marks.sent_seq(conv, user) {
                    return Ok(None);
                }
                let moved: Option<i64> = ctx
                    .conn
                    .prepare_cached(
                        "UPDATE members SET read_seq = ?3 WHERE conv_id = ?1 AND user_id = ?2 AND read_seq < ?3
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
        marks: Vec<(UserId, ConvId, i64)>,
        event: Box<dyn Fn(UserId, ConvId, i64) -> NewEvent + Send>,
    ) -> StoreResult<()> {
        self.writer
            .write(move |ctx| {
                for (user, conv, seq) in marks {
                    let moved = ctx
                        .conn
                        .prepare_cached("UPDATE members SET delivered_seq = ?3 WHERE conv_id = ?1 AND user_id = ?2 AND delivered_seq < ?3")?
                        .execute([conv, user, seq])?;
                    if moved > 0 {
                        ctx.append(event(user, conv, seq))?;
                    }
                }
                Ok(())
            })
            .await
    }
}
