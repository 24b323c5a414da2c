//! The schema, as numbered migrations applied at start (tracked in `PRAGMA user_version`).

use rusqlite::Connection;

/// Migration `i` brings the schema from version `i` to `i + 1`; never edit a released one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    avatar        TEXT,
    created_at    INTEGER NOT NULL
);
CREATE TABLE devices (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    acked_pos  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX devices_user ON devices(user_id);
CREATE TABLE friend_requests (
    id      INTEGER PRIMARY KEY,
    from_id INTEGER NOT NULL,
    to_id   INTEGER NOT NULL,
    note    TEXT NOT NULL,
    ts      INTEGER NOT NULL
);
CREATE UNIQUE INDEX friend_requests_pair ON friend_requests(from_id, to_id);
CREATE INDEX friend_requests_to ON friend_requests(to_id);
CREATE TABLE friendships (
    user_a INTEGER NOT NULL,
    user_b INTEGER NOT NULL,
    since  INTEGER NOT NULL,
    PRIMARY KEY (user_a, user_b)
) WITHOUT ROWID;
CREATE INDEX friendships_b ON friendships(user_b);
CREATE TABLE conversations (
    id       INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,
    user_a   INTEGER,
    user_b   INTEGER,
    group_id INTEGER,
    last_seq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_a, user_b),
    UNIQUE (group_id)
);
CREATE TABLE members (
    conv_id       INTEGER NOT NULL,
    user_id       INTEGER NOT NULL,
    role          TEXT NOT NULL DEFAULT 'member',
    joined_pos    INTEGER NOT NULL DEFAULT 0,
    read_seq      INTEGER NOT NULL DEFAULT 0,
    delivered_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conv_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_user ON members(user_id);
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    conv_id       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    sender_id     INTEGER NOT NULL,
    client_msg_id TEXT NOT NULL,
    body          TEXT NOT NULL,
    ts            INTEGER NOT NULL,
    pos           INTEGER NOT NULL,
    recalled      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (conv_id, seq)
);
CREATE UNIQUE INDEX messages_idempotency ON messages(sender_id, client_msg_id);
CREATE INDEX messages_conv_pos ON messages(conv_id, pos);
CREATE TABLE events (
    pos    INTEGER PRIMARY KEY,
    stream INTEGER NOT NULL,
    ts     INTEGER NOT NULL,
    json   TEXT NOT NULL
);
CREATE INDEX events_stream ON events(stream, pos);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE groups (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    owner_id      INTEGER NOT NULL,
    join_policy   TEXT NOT NULL,
    avatar        TEXT,
    history_visible INTEGER NOT NULL DEFAULT 1,
    member_count  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    dissolved     INTEGER NOT NULL DEFAULT 0,
    name_key      TEXT NOT NULL
);
CREATE INDEX groups_name_key ON groups(name_key);
CREATE TABLE join_requests (
    group_id INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    ts       INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
ALTER TABLE members ADD COLUMN joined_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
-- Lower-cased names (folded in Rust, which knows all of Unicode) for prefix search.
ALTER TABLE users ADD COLUMN display_key TEXT NOT NULL DEFAULT '';
UPDATE users SET display_key = lower(display_name);
CREATE INDEX users_display_key ON users(display_key);
-- Substring search through trigram indexes, kept in step by triggers.
CREATE VIRTUAL TABLE users_search USING fts5(username, display_name, content='users', content_rowid='id', tokenize='trigram');
INSERT INTO users_search(rowid, username, display_name) SELECT id, username, display_name FROM users;
CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search(rowid, username, display_name) VALUES (new.id, new.username, new.display_name);
END;
CREATE TRIGGER users_search_update AFTER UPDATE OF username, display_name ON users BEGIN
    INSERT INTO users_search(users_search, rowid, username, display_name) VALUES ('delete', old.id, old.username, old.display_name);
    INSERT INTO users_search(rowid, username, display_name) VALUES (new.id, new.username, new.display_name);
END;
CREATE VIRTUAL TABLE groups_search USING fts5(name, content='groups', content_rowid='id', tokenize='trigram');
CREATE TRIGGER groups_search_insert AFTER INSERT ON groups BEGIN
    INSERT INTO groups_search(rowid, name) VALUES (new.id, new.name);
END;
CREATE TRIGGER groups_search_update AFTER UPDATE OF name ON groups BEGIN
    INSERT INTO groups_search(groups_search, rowid, name) VALUES ('delete', old.id, old.name);
    INSERT INTO groups_search(rowid, name) VALUES (new.id, new.name);
END;
"#,
    // Catch-up reads find a conversation's messages after a position through (conv_id, seq),
    // since positions grow with seq; one index fewer to write per message.
    r#"
DROP INDEX messages_conv_pos;
"#,
    // Idempotency keys move to a table of their own, which the writer fills in bulk
    // (`keys.rs`): one index leaf written per sender per copy, not per message.
    r#"
CREATE TABLE message_keys (
    sender_id     INTEGER NOT NULL,
    client_msg_id TEXT NOT NULL,
    id            INTEGER NOT NULL,
    PRIMARY KEY (sender_id, client_msg_id)
) WITHOUT ROWID;
INSERT INTO message_keys (sender_id, client_msg_id, id) SELECT sender_id, client_msg_id, id FROM messages;
INSERT INTO meta (key, value) VALUES ('keys_through', COALESCE((SELECT MAX(id) FROM messages), 0))
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
DROP INDEX messages_idempotency;
-- The retention sweep deletes messages; their keys go with them.
CREATE TRIGGER message_keys_sweep AFTER DELETE ON messages BEGIN
    DELETE FROM message_keys WHERE sender_id = old.sender_id AND client_msg_id = old.client_msg_id AND id = old.id;
END;
"#,
    // Conversations' places move to a table the writer fills in bulk too (`keys.rs`), which
    // needs `messages` without its `UNIQUE (conv_id, seq)`: rebuilt. Readers find a
    // conversation's messages through `conv_messages`.
    r#"
CREATE TABLE messages_new (
    id            INTEGER PRIMARY KEY,
    conv_id       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    sender_id     INTEGER NOT NULL,
    client_msg_id TEXT NOT NULL,
    body          TEXT NOT NULL,
    ts            INTEGER NOT NULL,
    pos           INTEGER NOT NULL,
    recalled      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO messages_new (id, conv_id, seq, sender_id, client_msg_id, body, ts, pos, recalled)
    SELECT id, conv_id, seq, sender_id, client_msg_id, body, ts, pos, recalled FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE TABLE message_seqs (
    conv_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    id      INTEGER NOT NULL,
    PRIMARY KEY (conv_id, seq)
) WITHOUT ROWID;
INSERT INTO message_seqs (conv_id, seq, id)
    SELECT conv_id, seq, id FROM messages WHERE id <= COALESCE((SELECT value FROM meta WHERE key = 'keys_through'), 0);
-- The retention sweep deletes messages; their index entries go with them.
CREATE TRIGGER message_index_sweep AFTER DELETE ON messages BEGIN
    DELETE FROM message_keys WHERE sender_id = old.sender_id AND client_msg_id = old.client_msg_id AND id = old.id;
    DELETE FROM message_seqs WHERE conv_id = old.conv_id AND seq = old.seq AND id = old.id;
END;
-- The few newest messages, not in the index tables yet: the end of `messages`, by id.
CREATE VIEW unindexed_messages AS
    SELECT id, conv_id, seq, sender_id, client_msg_id, body, ts, pos, recalled FROM messages
        WHERE id > COALESCE((SELECT value FROM meta WHERE key = 'keys_through'), 0);
-- A conversation's messages: those indexed, and the newest, found by scanning.
CREATE VIEW conv_messages AS
    SELECT m.id, s.conv_id, s.seq, m.sender_id, m.client_msg_id, m.body, m.ts, m.pos, m.recalled
        FROM message_seqs s JOIN messages m ON m.id = s.id
    UNION ALL
    SELECT id, conv_id, seq, sender_id, client_msg_id, body, ts, pos, recalled FROM unindexed_messages;
"#,
    // Each conversation's newest message's position, written with its last `seq` (the same
    // row, so no other page): a catch-up read skips every conversation with nothing after
    // its cursor, where it had to look for its newest messages (`catch_up.rs`).
    r#"
ALTER TABLE conversations ADD COLUMN last_pos INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET last_pos = m.last_pos
    FROM (SELECT conv_id, MAX(pos) AS last_pos FROM messages GROUP BY conv_id) AS m
    WHERE m.conv_id = conversations.id;
"#,
    // Who received which stream between which positions, so that a device catching up from
    // before a change gets what was its user's then: a member removed from a group still
    // gets the group's events up to the removal (their own `group.member_left` among them),
    // and a friend's events count from the friendship on. Friendships made before this
    // migration count from position 0, as they did.
    r#"
ALTER TABLE friendships ADD COLUMN since_pos INTEGER NOT NULL DEFAULT 0;
-- Ended subscriptions: the events of `stream` in (from_pos, until_pos] are still the user's.
CREATE TABLE past_subscriptions (
    user_id   INTEGER NOT NULL,
    stream    INTEGER NOT NULL,
    from_pos  INTEGER NOT NULL,
    until_pos INTEGER NOT NULL
);
CREATE INDEX past_subscriptions_user ON past_subscriptions(user_id, until_pos);
"#,
];

/// Applies the migrations the database has not seen yet, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Applies the migrations up to version `last`.
fn migrate_to(conn: &mut Connection, last: usize) -> rusqlite::Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(last).skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_migration_copies_the_keys_of_messages_stored_before_it() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 3).unwrap();
        conn.execute_batch(
            "INSERT INTO messages (conv_id, seq, sender_id, client_msg_id, body, ts, pos) VALUES (1, 1, 5, 'a', '', 0, 1), (1, 2, 5, 'b', '', 0, 2);",
        )
        .unwrap();
        migrate_to(&mut conn, 4).unwrap();
        let keys: Vec<(i64, String, i64)> = conn
            .prepare("SELECT sender_id, client_msg_id, id FROM message_keys ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, [(5, "a".to_owned(), 1), (5, "b".to_owned(), 2)]);
        let through: i64 =
            conn.query_row("SELECT value FROM meta WHERE key = 'keys_through'", [], |r| r.get(0)).unwrap();
        assert_eq!(through, 2);
    }

    #[test]
    fn the_last_pos_migration_takes_each_conversations_newest_message() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 5).unwrap();
        conn.execute_batch(
            "INSERT INTO conversations (id, kind, user_a, user_b) VALUES (1, 'direct', 1, 2), (2, 'direct', 1, 3), (3, 'direct', 2, 3);
             INSERT INTO messages (conv_id, seq, sender_id, client_msg_id, body, ts, pos) VALUES (1, 1, 1, 'a', '', 0, 4), (2, 1, 1, 'b', '', 0, 7), (1, 2, 2, 'c', '', 0, 9);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let last: Vec<(i64, i64)> = conn
            .prepare("SELECT id, last_pos FROM conversations ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(last, [(1, 9), (2, 7), (3, 0)]);
    }

    #[test]
    fn the_places_migration_indexes_what_was_indexed_and_leaves_the_rest_to_the_scan() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 4).unwrap();
        conn.execute_batch(
            "INSERT INTO messages (conv_id, seq, sender_id, client_msg_id, body, ts, pos) VALUES (1, 1, 5, 'a', '', 0, 1), (1, 2, 5, 'b', '', 0, 2), (2, 1, 6, 'c', '', 0, 3);
             INSERT INTO message_keys VALUES (5, 'a', 1);
             UPDATE meta SET value = 1 WHERE key = 'keys_through';",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let placed: i64 = conn.query_row("SELECT COUNT(*) FROM message_seqs", [], |r| r.get(0)).unwrap();
        assert_eq!(placed, 1, "what had its key copied");
        let seqs: Vec<(i64, i64)> = conn
            .prepare("SELECT conv_id, seq FROM conv_messages ORDER BY conv_id, seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(seqs, [(1, 1), (1, 2), (2, 1)], "each message once");
    }
}
