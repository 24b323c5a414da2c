//! Groups, their members, roles and join requests.

use super::*;

const GROUP_COLS: &str = "g.id, g.name, g.owner_id, g.join_policy, g.avatar, g.history_visible, g.member_count";

fn group_row(r: &Row<'_>) -> rusqlite::Result<Group> {
    let id: i64 = r.get(0)?;
    let avatar: Option<String> = r.get(4)?;
    let policy: String = r.get(3)?;
    Ok(Group {
        id,
        name: r.get(1)?,
        avatar_url: group_avatar_url(id, avatar.as_deref()),
        owner_id: r.get(2)?,
        join_policy: if policy == "approval" { JoinPolicy::Approval } else { JoinPolicy::Open },
        member_count: r.get(6)?,
        conversation_id: ConvRef::Group(id).to_string(),
        history_visible_to_new_members: r.get(5)?,
    })
}

fn load_group(conn: &Connection, id: i64) -> rusqlite::Result<Option<Group>> {
    conn.prepare_cached(&format!("SELECT {GROUP_COLS} FROM groups g WHERE g.id = ?1 AND g.dissolved = 0"))?
        .query_row([id], group_row)
        .optional()
}

fn conv_of(conn: &Connection, group: i64) -> rusqlite::Result<Option<ConvId>> {
    conn.prepare_cached("SELECT id FROM conversations WHERE group_id = ?1")?.query_row([group], |r| r.get(0)).optional()
}

/// Inserts a member at the current position and last seq, and tells the router.
fn insert_member(ctx: &mut Ctx<'_, '_>, conv: ConvId, user: UserId, role: Role) -> StoreResult<()> {
    let from = ctx.last_pos();
    // As the writer holds it: the row may not have the newest messages' yet (`marks.rs`).
    let seq = ctx.marks.last_seq(ctx.held, conv)?;
    ctx.conn
        .prepare_cached(
            "INSERT INTO members (conv_id, user_id, role, joined_pos, joined_seq, read_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?
        .execute(params![conv, user, role.as_str(), from, seq])?;
    ctx.delta(Delta::MemberAdded { conv, user, from });
    Ok(())
}

/// Removes a member, keeping what they received until now for their devices' catch-up.
fn delete_member(ctx: &mut Ctx<'_, '_>, conv: ConvId, user: UserId) -> StoreResult<()> {
    let joined: Option<Pos> = ctx
        .conn
        .prepare_cached("DELETE FROM members WHERE conv_id = ?1 AND user_id = ?2 RETURNING joined_pos")?
        .query_row([conv, user], |r| r.get(0))
        .optional()?;
    if let Some(joined) = joined {
        end_subscription(ctx, user, Stream::Conv(conv), joined)?;
    }
    ctx.delta(Delta::MemberRemoved { conv, user });
    Ok(())
}

fn role_in(conn: &Connection, conv: ConvId, user: UserId) -> rusqlite::Result<Option<Role>> {
    let role: Option<String> = conn
        .prepare_cached("SELECT role FROM members WHERE conv_id = ?1 AND user_id = ?2")?
        .query_row([conv, user], |r| r.get(0))
        .optional()?;
    Ok(role.as_deref().and_then(Role::parse))
}

fn bump_count(conn: &Connection, group: i64, by: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE groups SET member_count = member_count + ?2 WHERE id = ?1")?.execute([group, by])?;
    Ok(())
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(
        &self,
        owner: UserId,
        name: String,
        policy: JoinPolicy,
        history_visible: bool,
        events: GroupEvents,
    ) -> StoreResult<Group> {
        self.writer
            .write(move |ctx| {
                ctx.conn.execute(
                    "INSERT INTO groups (name, owner_id, join_policy, history_visible, member_count, created_at, name_key) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
                    params![name, owner, policy.as_str(), history_visible, now_ms(), name.to_lowercase()],
                )?;
                let id = ctx.conn.last_insert_rowid();
                ctx.conn.execute("INSERT INTO conversations (kind, group_id) VALUES ('group', ?1)", [id])?;
                let conv = ctx.conn.last_insert_rowid();
                ctx.delta(Delta::Conversation { id: conv, conv: ConvRef::Group(id) });
                insert_member(ctx, conv, owner, Role::Owner)?;
                let group = load_group(ctx.conn, id)?.expect("just created");
                append_all(ctx, events(&group))?;
                Ok(group)
            })
            .await
    }

    async fn group(&self, id: i64) -> StoreResult<Option<Group>> {
        self.readers.read(move |conn| load_group(conn, id)).await
    }

    async fn search_groups(&self, q: &str, offset: usize, limit: usize) -> StoreResult<Vec<Group>> {
        let (phrase, (lo, hi)) = (search::phrase(q), search::prefix_range(q));
        let trigram = search::uses_trigrams(q);
        self.readers
            .read(move |conn| {
                let filter = if trigram {
                    "g.id IN (SELECT rowid FROM groups_search WHERE groups_search MATCH ?1)"
                } else {
                    "?1 = ?1 AND g.name_key >= ?2 AND g.name_key < ?3"
                };
                let sql = format!(
                    "SELECT {GROUP_COLS} FROM groups g WHERE {filter} AND g.dissolved = 0
                     ORDER BY (g.name_key >= ?2 AND g.name_key < ?3) DESC, g.name_key, g.id LIMIT +?4 OFFSET +?5"
                );
                let rows = conn
                    .prepare_cached(&sql)?
                    .query_map(params![phrase, lo, hi, limit as i64, offset as i64], group_row)?
                    .collect();
                rows
            })
            .await
    }

    async fn groups_of(&self, user: UserId) -> StoreResult<Vec<Group>> {
        self.readers
            .read(move |conn| {
                let sql = format!(
                    "SELECT {GROUP_COLS} FROM members m JOIN conversations c ON c.id = m.conv_id JOIN groups g ON g.id = c.group_id
                     WHERE m.user_id = ?1 AND g.dissolved = 0 ORDER BY g.name COLLATE NOCASE, g.id"
                );
                let rows = conn.prepare_cached(&sql)?.query_map([user], group_row)?.collect();
                rows
            })
            .await
    }

    async fn members(&self, group: i64) -> StoreResult<Vec<(UserRow, Role)>> {
        self.readers
            .read(move |conn| {
                let sql = "SELECT u.id, u.username, u.display_name, u.avatar, m.role
                     FROM conversations c JOIN members m ON m.conv_id = c.id JOIN users u ON u.id = m.user_id
                     WHERE c.group_id = ?1";
                let mut members: Vec<(UserRow, Role)> = conn
                    .prepare_cached(sql)?
                    .query_map([group], |r| {
                        Ok((user_row(r)?, Role::parse(&r.get::<_, String>(4)?).unwrap_or(Role::Member)))
                    })?
                    .collect::<Result<_, _>>()?;
                members.sort_by(|a, b| {
                    b.1.cmp(&a.1).then_with(|| a.0.display_name.to_lowercase().cmp(&b.0.display_name.to_lowercase()))
                });
                Ok(members)
            })
            .await
    }

    async fn role(&self, group: i64, user: UserId) -> StoreResult<Option<Role>> {
        self.readers
            .read(move |conn| match conv_of(conn, group)? {
                Some(conv) => role_in(conn, conv, user),
                None => Ok(None),
            })
            .await
    }

    async fn add_member(
        &self,
        group: i64,
        user: UserId,
        max: usize,
        via_request: bool,
        events: GroupEvents,
    ) -> StoreResult<Joined> {
        self.writer
            .write(move |ctx| {
                let (Some(found), Some(conv)) = (load_group(ctx.conn, group)?, conv_of(ctx.conn, group)?) else {
                    return Ok(Joined::NoGroup);
                };
                if via_request {
                    let asked = ctx
                        .conn
                        .prepare_cached("SELECT 1 FROM join_requests WHERE group_id = ?1 AND user_id = ?2")?
                        .exists([group, user])?;
                    if !asked {
                        return Ok(Joined::NoRequest);
                    }
                }
                if role_in(ctx.conn, conv, user)?.is_some() {
                    // A request from someone already in is stale: drop it.
                    ctx.conn
                        .execute("DELETE FROM join_requests WHERE group_id = ?1 AND user_id = ?2", [group, user])?;
                    return Ok(Joined::AlreadyMember);
                }
                // A full group keeps the request, so it can be accepted once there is room.
                if found.member_count >= i64::try_from(max).unwrap_or(i64::MAX) {
                    return Ok(Joined::Full);
                }
                ctx.conn.execute("DELETE FROM join_requests WHERE group_id = ?1 AND user_id = ?2", [group, user])?;
                insert_member(ctx, conv, user, Role::Member)?;
                bump_count(ctx.conn, group, 1)?;
                let group = load_group(ctx.conn, group)?.expect("exists");
                append_all(ctx, events(&group))?;
                Ok(Joined::Added(group))
            })
            .await
    }

    async fn remove_member(&self, group: i64, user: UserId, events: GroupEvents) -> StoreResult<Option<Group>> {
        self.writer
            .write(move |ctx| {
                let Some(conv) = conv_of(ctx.conn, group)? else { return Ok(None) };
                if role_in(ctx.conn, conv, user)?.is_none() {
                    return Ok(None);
                }
                bump_count(ctx.conn, group, -1)?;
                let Some(found) = load_group(ctx.conn, group)? else { return Ok(None) };
                append_all(ctx, events(&found))?;
                delete_member(ctx, conv, user)?;
                Ok(Some(found))
            })
            .await
    }

    async fn set_role(&self, group: i64, user: UserId, role: Role, events: Vec<NewEvent>) -> StoreResult<bool> {
        debug_assert!(role != Role::Owner);
        self.writer
            .write(move |ctx| {
                let Some(conv) = conv_of(ctx.conn, group)? else { return Ok(false) };
                let changed = ctx.conn.execute(
                    "UPDATE members SET role = ?3 WHERE conv_id = ?1 AND user_id = ?2 AND role <> 'owner'",
                    params![conv, user, role.as_str()],
                )?;
                if changed > 0 {
                    append_all(ctx, events)?;
                }
                Ok(changed > 0)
            })
            .await
    }

    async fn transfer_owner(&self, group: i64, from: UserId, to: UserId, events: GroupEvents) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let Some(conv) = conv_of(ctx.conn, group)? else { return Ok(false) };
                if role_in(ctx.conn, conv, from)? != Some(Role::Owner)
                    || role_in(ctx.conn, conv, to)?.is_none()
                    || from == to
                {
                    return Ok(false);
                }
                ctx.conn
                    .execute("UPDATE members SET role = 'admin' WHERE conv_id = ?1 AND user_id = ?2", [conv, from])?;
                ctx.conn
                    .execute("UPDATE members SET role = 'owner' WHERE conv_id = ?1 AND user_id = ?2", [conv, to])?;
                ctx.conn.execute("UPDATE groups SET owner_id = ?2 WHERE id = ?1", [group, to])?;
                let found = load_group(ctx.conn, group)?.expect("exists");
                append_all(ctx, events(&found))?;
                Ok(true)
            })
            .await
    }

    async fn update_group(&self, group: i64, changes: GroupChanges, events: GroupEvents) -> StoreResult<Option<Group>> {
        self.writer
            .write(move |ctx| {
                ctx.conn.execute(
                    "UPDATE groups SET name = COALESCE(?2, name), name_key = COALESCE(?6, name_key), join_policy = COALESCE(?3, join_policy),
                            history_visible = COALESCE(?4, history_visible), avatar = COALESCE(?5, avatar)
                     WHERE id = ?1 AND dissolved = 0",
                    params![
                        group,
                        changes.name,
                        changes.join_policy.map(JoinPolicy::as_str),
                        changes.history_visible,
                        changes.avatar,
                        changes.name.as_deref().map(str::to_lowercase)
                    ],
                )?;
                let Some(found) = load_group(ctx.conn, group)? else { return Ok(None) };
                append_all(ctx, events(&found))?;
                Ok(Some(found))
            })
            .await
    }

    async fn dissolve_group(&self, group: i64, events: Vec<NewEvent>) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                if ctx.conn.execute(
                    "UPDATE groups SET dissolved = 1, member_count = 0 WHERE id = ?1 AND dissolved = 0",
                    [group],
                )? == 0
                {
                    return Ok(false);
                }
                let Some(conv) = conv_of(ctx.conn, group)? else { return Ok(false) };
                append_all(ctx, events)?;
                let members: Vec<UserId> = ctx
                    .conn
                    .prepare_cached("SELECT user_id FROM members WHERE conv_id = ?1")?
                    .query_map([conv], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for user in members {
                    delete_member(ctx, conv, user)?;
                }
                ctx.conn.execute("DELETE FROM join_requests WHERE group_id = ?1", [group])?;
                Ok(true)
            })
            .await
    }

    async fn request_join(&self, group: i64, user: UserId, events: Vec<NewEvent>) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let added = ctx.conn.execute(
                    "INSERT OR IGNORE INTO join_requests (group_id, user_id, ts) VALUES (?1, ?2, ?3)",
                    params![group, user, now_ms()],
                )?;
                if added > 0 {
                    append_all(ctx, events)?;
                }
                Ok(added > 0)
            })
            .await
    }

    async fn join_requests(&self, group: i64) -> StoreResult<Vec<(UserRow, i64)>> {
        self.readers
            .read(move |conn| {
                let sql = "SELECT u.id, u.username, u.display_name, u.avatar, j.ts FROM join_requests j JOIN users u ON u.id = j.user_id
                           WHERE j.group_id = ?1 ORDER BY j.ts";
                let rows = conn.prepare_cached(sql)?.query_map([group], |r| Ok((user_row(r)?, r.get(4)?)))?.collect();
                rows
            })
            .await
    }

    async fn decline_join(&self, group: i64, user: UserId, events: Vec<NewEvent>) -> StoreResult<bool> {
        self.writer
            .write(move |ctx| {
                let removed = ctx
                    .conn
                    .execute("DELETE FROM join_requests WHERE group_id = ?1 AND user_id = ?2", [group, user])?;
                if removed > 0 {
                    append_all(ctx, events)?;
                }
                Ok(removed > 0)
            })
            .await
    }

    async fn visible_from(&self, conv: ConvId, user: UserId) -> StoreResult<i64> {
        self.readers
            .read(move |conn| {
                let sql = "SELECT CASE WHEN g.history_visible THEN 0 ELSE m.joined_seq END
                           FROM members m JOIN conversations c ON c.id = m.conv_id LEFT JOIN groups g ON g.id = c.group_id
                           WHERE m.conv_id = ?1 AND m.user_id = ?2";
                Ok(conn.prepare_cached(sql)?.query_row([conv, user], |r| r.get::<_, Option<i64>>(0)).optional()?.flatten().unwrap_or(0))
            })
            .await
    }
}
