//! Users, their devices and acknowledged cursors.

use super::*;

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, username: String, display_name: String, password_hash: String) -> StoreResult<UserRow> {
        self.writer
            .write(move |ctx| {
                ctx.conn
                    .execute(
                        "INSERT INTO users (username, display_name, password_hash, created_at, display_key) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![username, display_name, password_hash, now_ms(), display_name.to_lowercase()],
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
                conn.prepare_cached(&format!("SELECT {USER_COLS}, password_hash FROM users WHERE username = ?1"))?
                    .query_row([username], |r| Ok((user_row(r)?, r.get(4)?)))
                    .optional()
            })
            .await
    }

    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<UserRow>> {
        let ids = ids.to_vec();
        self.readers
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"))?;
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

    async fn search_users(&self, q: &str, offset: usize, limit: usize) -> StoreResult<Vec<UserRow>> {
        let (phrase, (lo, hi)) = (search::phrase(q), search::prefix_range(q));
        let trigram = search::uses_trigrams(q);
        self.readers
            .read(move |conn| {
                let sql = if trigram {
                    format!(
                        "SELECT {USER_COLS} FROM users WHERE id IN (SELECT rowid FROM users_search WHERE users_search MATCH ?1)
                         ORDER BY ((username >= ?2 AND username < ?3) OR (display_key >= ?2 AND display_key < ?3)) DESC, username LIMIT +?4 OFFSET +?5"
                    )
                } else {
                    // Too short for trigrams: prefix matches only, through the name indexes.
                    format!(
                        "SELECT {USER_COLS} FROM users WHERE ?1 = ?1 AND ((username >= ?2 AND username < ?3) OR (display_key >= ?2 AND display_key < ?3))
                         ORDER BY username LIMIT +?4 OFFSET +?5"
                    )
                };
                let rows = conn.prepare_cached(&sql)?.query_map(params![phrase, lo, hi, limit as i64, offset as i64], user_row)?.collect();
                rows
            })
            .await
    }

    async fn update_profile(
        &self,
        user: UserId,
        display_name: Option<String>,
        avatar: Option<String>,
        events: UserEvents,
    ) -> StoreResult<Option<UserRow>> {
        self.writer
            .write(move |ctx| {
                let row = ctx
                    .conn
                    .prepare_cached(&format!(
                        "UPDATE users SET display_name = COALESCE(?2, display_name), display_key = COALESCE(?4, display_key), avatar = COALESCE(?3, avatar) WHERE id = ?1 RETURNING {USER_COLS}"
                    ))?
                    .query_row(params![user, display_name, avatar, display_name.as_deref().map(str::to_lowercase)], user_row)
                    .optional()?;
                if let Some(row) = &row {
                    for e in events(row) {
                        ctx.append(e)?;
                    }
                }
                Ok(row)
            })
            .await
    }

    async fn settings(&self, user: UserId) -> StoreResult<String> {
        self.readers
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT settings FROM users WHERE id = ?1")?
                    .query_row([user], |r| r.get(0))
                    .optional()?
                    .unwrap_or_else(|| "{}".into()))
            })
            .await
    }

    async fn put_settings(&self, user: UserId, json: String, events: Vec<NewEvent>) -> StoreResult<()> {
        self.writer
            .write(move |ctx| {
                ctx.conn.execute("UPDATE users SET settings = ?2 WHERE id = ?1", params![user, json])?;
                append_all(ctx, events)
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
                conn.prepare_cached("SELECT id, user_id, acked_pos FROM devices WHERE token_hash = ?1")?
                    .query_row([&token_hash[..]], |r| {
                        Ok(DeviceRow { id: r.get(0)?, user_id: r.get(1)?, acked: r.get(2)? })
                    })
                    .optional()
            })
            .await
    }

    async fn delete_device(&self, id: DeviceId) -> StoreResult<()> {
        self.writer
            .write(move |ctx| {
                ctx.conn.execute("DELETE FROM devices WHERE id = ?1", [id])?;
                Ok(())
            })
            .await
    }

    async fn save_acks(&self, acks: Vec<(DeviceId, Pos)>) -> StoreResult<()> {
        self.writer
            .write(move |ctx| {
                let mut stmt =
                    ctx.conn.prepare_cached("UPDATE devices SET acked_pos = ?2 WHERE id = ?1 AND acked_pos < ?2")?;
                for (id, pos) in acks {
                    stmt.execute([id, pos])?;
                }
                Ok(())
            })
            .await
    }
}
