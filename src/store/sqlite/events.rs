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
        user: UserId,
        after: Pos,
        until: Pos,
        limit: usize,
    ) -> StoreResult<Vec<Arc<StoredEvent>>> {
        let newest = self.newest.clone();
        self.readers
            .read(move |conn| {
                // One snapshot for every statement: a copy of the newest messages into the
                // index tables (`keys.rs`) committed between two of them would show the
                // copied messages twice, or not at all, depending on which came first.
                let tx = conn.unchecked_transaction()?;
                // The floor as of this snapshot: a sweep's chunk may have committed since the
                // poll checked the router's floor, and its rows would just be missing here.
                if after < meta(&tx, "floor")? {
                    return Ok(None);
                }
                let spans = catch_up::subscriptions(&tx, user, after)?;
                let events = catch_up::events_between(&tx, &spans, after, until, limit, &newest)?;
                tx.commit()?;
                Ok(Some(events))
            })
            .await?
            .ok_or(StoreError::Expired)
    }

    async fn sweep(&self, before_ts: i64) -> StoreResult<Pos> {
        // In chunks, so a large backlog never holds the writer (and every send) for long.
        loop {
            let (removed, floor) = self
                .writer
                .write(move |ctx| {
                    // Messages not copied yet hold marks their rows do not have; the copy
                    // reads them from the messages, so they go to the rows before those go.
                    super::marks::copy(ctx.conn, ctx.keys.through(), i64::MAX)?;
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
                    if removed == 0 {
                        // The last chunk: subscriptions that ended at or below the floor cover
                        // only swept events. Once, as this scans the table.
                        ctx.conn.execute("DELETE FROM past_subscriptions WHERE until_pos <= ?1", [floor])?;
                    } else {
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
