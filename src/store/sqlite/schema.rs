//! The schema, as numbered migrations applied at start (tracked in `PRAGMA user_version`).

use rusqlite::Connection;

/// Migration `i` brings the schema from version `i` to `i + 1`; never edit a released one.
const MIGRATIONS: &[&str] = &[r#"
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
"#];

/// Applies the migrations the database has not seen yet, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}
