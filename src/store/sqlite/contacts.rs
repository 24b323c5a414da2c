//! Friend requests and friendships.

use super::*;

#[async_trait]
impl ContactStore for SqliteStore {
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

    async fn friend_requests(&self, user: UserId) -> StoreResult<(Vec<RequestRow>, Vec<RequestRow>)> {
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
                conn.prepare_cached(&format!("SELECT {REQUEST_COLS} FROM friend_requests WHERE id = ?1"))?
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
                    .query_row(
                        "DELETE FROM friend_requests WHERE id = ?1 AND to_id = ?2 RETURNING from_id",
                        [id, by],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(from) = from else { return Ok(Answered::NoSuchRequest) };
                if !accept {
                    append_all(ctx, events)?;
                    return Ok(Answered::Declined);
                }
                let (a, b) = if from < by { (from, by) } else { (by, from) };
                ctx.conn.execute(
                    "INSERT OR IGNORE INTO friendships (user_a, user_b, since, since_pos) VALUES (?1, ?2, ?3, ?4)",
                    params![a, b, now_ms(), ctx.last_pos()],
                )?;
                let conv = ensure_direct(ctx, a, b)?;
                ctx.delta(Delta::FriendsAdded(a, b));
                append_all(ctx, events)?;
                Ok(Answered::Accepted(conv))
            })
            .await
    }

    async fn remove_friend(&self, a: UserId, b: UserId, events: Vec<NewEvent>) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let (x, y) = if a < b { (a, b) } else { (b, a) };
                let since: Option<Pos> = ctx
                    .conn
                    .prepare_cached("DELETE FROM friendships WHERE user_a = ?1 AND user_b = ?2 RETURNING since_pos")?
                    .query_row([x, y], |r| r.get(0))
                    .optional()?;
                let Some(since) = since else { return Ok(false) };
                end_subscription(ctx, x, Stream::Friends(y), since)?;
                end_subscription(ctx, y, Stream::Friends(x), since)?;
                ctx.delta(Delta::FriendsRemoved(x, y));
                append_all(ctx, events)?;
                Ok(true)
            })
            .await
    }
}
