//! The catch-up read: a device's events from the store, for a poll whose cursor is older
//! than what the router holds in memory (a device that comes back, or one whose first poll
//! comes after others' events moved the head). What the user received is read in the same
//! transaction, each stream with the positions between which it was theirs
//! ([`subscriptions`]), so that ended memberships and friendships count up to their end.
//!
//! Messages are looked for only in the device's conversations with something stored after
//! the cursor, as their `last_pos` tells (or, for the newest, `marks::Newest`); coming back,
//! most have nothing. Ids and positions are given in the same order, so the messages stored
//! after a cursor are the last rows of `messages`, from an id found by a binary search.
//! SQLite reads those rows in order and keeps the device's. Only when that would go through
//! more than [`WINDOW_MAX`] indexed messages (a device far behind) are the indexed ones
//! searched conversation by conversation instead, through `message_seqs`. The newest
//! messages, not indexed yet (`keys.rs`, about [`super::keys::FOLD_AT`] at most), are always
//! read in order, once, where the old search per conversation scanned them twice for each
//! conversation. The scan in order goes on past `until` to the newest row, which is near:
//! the bound is what memory covers, set when the device's inbox was made.
//!
//! See BENCHMARKS.md, sixteenth measurement, for what this cost before (`catchup`, and
//! `direct`'s first polls).

use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::marks::Newest;
use super::{conv_ref_of, message_event_json, message_row, MESSAGE_COLS};
use crate::model::{ConvId, ConvRef, Message, MessageMeta, Pos, StoredEvent, Stream, UserId};
use crate::store::Span;

/// Most indexed messages a catch-up reads in order before it searches conversation by
/// conversation instead: past this, a device far behind would read everyone's messages.
/// Small in tests, so that they take both ways.
const WINDOW_MAX: i64 = if cfg!(test) { 8 } else { 1024 };

/// A stream's events in a range of positions. `+?4`, not `?4`: SQLite's planner reads a
/// plain parameter in `LIMIT` (`sqlite3ExprIsInteger`), which marks the statement to be
/// compiled again whenever that parameter is bound, ~61k instructions each time, once per
/// stream of every catch-up (BENCHMARKS.md, sixteenth measurement).
const EVENTS_BETWEEN: &str =
    "SELECT pos, json FROM events WHERE stream = ?1 AND pos > ?2 AND pos <= ?3 ORDER BY pos LIMIT +?4";

/// The columns of [`MESSAGE_COLS`], of `messages` as `m`.
const M_COLS: &str = "m.id, m.seq, m.sender_id, m.client_msg_id, m.body, m.ts, m.recalled, m.pos, m.conv_id";

/// Every stream `user` receives or received after `after`, each with the positions between
/// which its events are the user's. Read in the catch-up's transaction rather than taken
/// from the router's memory: with their positions, the rows as they are now tell what the
/// user received at any earlier position, ended subscriptions included, which memory forgets.
pub fn subscriptions(conn: &Connection, user: UserId, after: Pos) -> rusqlite::Result<Vec<Span>> {
    let mut spans = vec![Span::since(Stream::User(user), 0)];
    let mut members = conn.prepare_cached("SELECT conv_id, joined_pos FROM members WHERE user_id = ?1")?;
    for row in members.query_map([user], |r| Ok(Span::since(Stream::Conv(r.get(0)?), r.get(1)?)))? {
        spans.push(row?);
    }
    let mut friends = conn.prepare_cached(
        "SELECT user_b, since_pos FROM friendships WHERE user_a = ?1
         UNION ALL SELECT user_a, since_pos FROM friendships WHERE user_b = ?1",
    )?;
    for row in friends.query_map([user], |r| Ok(Span::since(Stream::Friends(r.get(0)?), r.get(1)?)))? {
        spans.push(row?);
    }
    let mut past = conn.prepare_cached(
        "SELECT stream, from_pos, until_pos FROM past_subscriptions WHERE user_id = ?1 AND until_pos > ?2",
    )?;
    for row in past.query_map([user, after], |r| {
        Ok(Span { stream: Stream::from_key(r.get(0)?), from: r.get(1)?, until: r.get(2)? })
    })? {
        spans.push(row?);
    }
    Ok(spans)
}

/// The events of `spans` with positions in `(after, until]`, ascending, at most `limit`.
/// Run inside one read transaction.
pub fn events_between(
    conn: &Connection,
    spans: &[Span],
    after: Pos,
    until: Pos,
    limit: usize,
    newest: &Newest,
) -> rusqlite::Result<Vec<Arc<StoredEvent>>> {
    let mut out = Vec::new();
    let mut events = conn.prepare_cached(EVENTS_BETWEEN)?;
    let mut convs: HashMap<ConvId, Vec<(Pos, Pos)>> = HashMap::new();
    for span in spans {
        let (lower, upper) = (after.max(span.from), until.min(span.until));
        if lower >= upper {
            continue;
        }
        let stream = span.stream;
        let rows = events.query_map(params![stream.key(), lower, upper, limit as i64], |r| {
            Ok(Arc::new(StoredEvent { pos: r.get(0)?, stream, json: r.get::<_, String>(1)?.into(), message: None }))
        })?;
        for e in rows {
            out.push(e?);
        }
        if let Stream::Conv(conv) = stream {
            convs.entry(conv).or_default().push((lower, upper));
        }
    }
    // Only the conversations with something stored after their bound: most of a device's,
    // coming back, have nothing new, and then there is nothing to look for. Their rows tell
    // it for the messages copied to the index tables, `newest` for those stored since the
    // store opened (`marks.rs`). The same row tells what each is, for the messages' JSON.
    let mut row_of =
        conn.prepare_cached("SELECT kind, user_a, user_b, group_id, last_pos FROM conversations WHERE id = ?1")?;
    let mut live = HashMap::new();
    for (conv, bounds) in convs {
        let lower = bounds.iter().map(|&(lower, _)| lower).min().expect("one span or more");
        let found = row_of
            .query_row([conv], |r| {
                Ok((conv_ref_of(&r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?), r.get::<_, Pos>(4)?))
            })
            .optional()?;
        if let Some((Some(conv_ref), _)) = found.filter(|(_, last_pos)| (*last_pos).max(newest.of(conv)) > lower) {
            live.insert(conv, Live { bounds, conv_ref });
        }
    }
    // Every live conversation's bound is at least `after`, and may be far above it (a
    // group joined later): the first message that can count is after the lowest of them.
    let lowest = live.values().flat_map(|l| l.bounds.iter().map(|&(lower, _)| lower)).min();
    if let Some(lowest) = lowest {
        if let Some(first) = first_message_after(conn, lowest)?.filter(|(_, pos)| *pos <= until).map(|(id, _)| id) {
            let through = super::meta(conn, "keys_through")?;
            let read_from = if through - first >= WINDOW_MAX {
                let found = indexed_by_conversation(conn, &live, limit, &out)?;
                out.extend(found);
                through + 1
            } else {
                first
            };
            out.extend(in_order(conn, &live, read_from, until, limit)?);
        }
    }
    out.sort_by_key(|e| e.pos);
    out.truncate(limit);
    Ok(out)
}

/// The id and position of the first message stored after position `after`, if any: a
/// binary search over ids, which are given in the same order as positions, with gaps where
/// messages were swept or rolled back.
fn first_message_after(conn: &Connection, after: Pos) -> rusqlite::Result<Option<(i64, Pos)>> {
    let last: Option<(i64, Pos)> = conn
        .prepare_cached("SELECT id, pos FROM messages ORDER BY id DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some(last) = last.filter(|(_, pos)| *pos > after) else { return Ok(None) };
    let mut at_or_above = conn.prepare_cached("SELECT id, pos FROM messages WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    // The answer is `found` or a message with an id in [lo, hi).
    let (mut lo, mut hi, mut found) = (0, last.0, last);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match at_or_above.query_row([mid], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Pos>(1)?))).optional()? {
            Some((id, pos)) if pos > after => {
                found = (id, pos);
                hi = mid;
            }
            Some((id, _)) => lo = id + 1,
            None => hi = mid,
        }
    }
    Ok(Some(found))
}

/// A conversation of the device with something stored after its bound.
struct Live {
    /// Its messages at positions in `(lower, upper]` of one of these are the device's: one
    /// range for a conversation, more for a group left and joined again.
    bounds: Vec<(Pos, Pos)>,
    /// What it is, for the messages' JSON.
    conv_ref: ConvRef,
}

impl Live {
    fn holds(&self, pos: Pos) -> bool {
        self.bounds.iter().any(|&(lower, upper)| lower < pos && pos <= upper)
    }
}

/// The device's messages from id `from` on, up to position `until`, in id order.
fn in_order(
    conn: &Connection,
    convs: &HashMap<ConvId, Live>,
    from: i64,
    until: Pos,
    limit: usize,
) -> rusqlite::Result<Vec<Arc<StoredEvent>>> {
    // SQLite keeps to the device's conversations itself: most rows are others', and a row
    // stepped through here cost several times one it skips.
    let mut rows_from = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLS} FROM messages
         WHERE id >= ?1 AND pos <= ?2 AND conv_id IN (SELECT value FROM json_each(?3)) ORDER BY id"
    ))?;
    let ids = serde_json::to_string(&convs.keys().collect::<Vec<_>>()).expect("ids serialize");
    let mut out = Vec::new();
    let mut rows = rows_from.query(params![from, until, ids])?;
    while let Some(r) = rows.next()? {
        let (pos, conv): (Pos, ConvId) = (r.get(7)?, r.get(8)?);
        if out.len() == limit {
            break;
        }
        let Some(live) = convs.get(&conv).filter(|l| l.holds(pos)) else { continue };
        out.push(message_event(conv, live.conv_ref, message_row(live.conv_ref)(r)?, pos));
    }
    Ok(out)
}

/// The indexed messages of each conversation within its bounds, searched conversation by
/// conversation; only those that can still be among the `limit` lowest positions, with
/// the events found already (`found`).
fn indexed_by_conversation(
    conn: &Connection,
    convs: &HashMap<ConvId, Live>,
    limit: usize,
    found: &[Arc<StoredEvent>],
) -> rusqlite::Result<Vec<Arc<StoredEvent>>> {
    // The `limit` lowest positions seen so far. Once there are that many, a message above
    // all of them cannot be in the answer, nor can the rest of its range: without this, a
    // device far behind in many busy conversations had a page rendered for each, to keep
    // one page of them in all.
    let mut lowest = BinaryHeap::with_capacity(limit + 1);
    for pos in found.iter().map(|e| e.pos) {
        keep_lowest(&mut lowest, pos, limit);
    }
    let mut messages = conn.prepare_cached(&format!(
        "SELECT {M_COLS} FROM message_seqs s JOIN messages m ON m.id = s.id
         WHERE s.conv_id = ?1 AND s.seq >= ?2 ORDER BY s.seq LIMIT +?3"
    ))?;
    let mut out = Vec::new();
    for (&conv, live) in convs {
        for &(lower, upper) in &live.bounds {
            let Some(from_seq) = first_indexed_seq_after(conn, conv, lower)? else { continue };
            let to_message = message_row(live.conv_ref);
            let mut rows = messages.query(params![conv, from_seq, limit as i64])?;
            // Positions grow with seq within a conversation: the first past the bound ends
            // the range. A filter in SQL would step through every later message of a group
            // left long ago, and none of them would count towards the limit.
            while let Some(r) = rows.next()? {
                let pos: Pos = r.get(7)?;
                if pos > upper || !keep_lowest(&mut lowest, pos, limit) {
                    break;
                }
                out.push(message_event(conv, live.conv_ref, to_message(r)?, pos));
            }
        }
    }
    Ok(out)
}

/// Adds `pos` to the `limit` lowest positions in `lowest` (a max-heap), or answers false
/// when there are that many already and all are lower.
fn keep_lowest(lowest: &mut BinaryHeap<Pos>, pos: Pos, limit: usize) -> bool {
    if lowest.len() == limit && lowest.peek().is_some_and(|&highest| pos > highest) {
        return false;
    }
    lowest.push(pos);
    if lowest.len() > limit {
        lowest.pop();
    }
    true
}

fn message_event(conv: ConvId, conv_ref: ConvRef, m: Message, pos: Pos) -> Arc<StoredEvent> {
    let meta = MessageMeta { conv, sender: m.sender_id, seq: m.seq, direct: matches!(conv_ref, ConvRef::Direct(..)) };
    Arc::new(StoredEvent { pos, stream: Stream::Conv(conv), json: message_event_json(&m).into(), message: Some(meta) })
}

/// The lowest seq of `conv` among its indexed messages stored after position `after`,
/// found by binary search over seq (positions grow with seq within a conversation): a few
/// index probes however long the conversation.
fn first_indexed_seq_after(conn: &Connection, conv: ConvId, after: Pos) -> rusqlite::Result<Option<i64>> {
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
    let Some((last_seq, _)) = last_indexed.filter(|(_, pos)| *pos > after) else { return Ok(None) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_message_after_any_position_is_found_across_gaps_in_the_ids() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        // Ids with gaps (swept, rolled back), positions with gaps (other streams' events).
        let rows = [(1, 3), (2, 4), (5, 9), (9, 10), (10, 15)];
        for (id, pos) in rows {
            conn.execute(
                "INSERT INTO messages (id, conv_id, seq, sender_id, client_msg_id, body, ts, pos) VALUES (?1, 1, ?1, 1, ?1, '', 0, ?2)",
                [id, pos],
            )
            .unwrap();
        }
        for after in 0..=16 {
            let want = rows.iter().copied().find(|(_, pos)| *pos > after);
            assert_eq!(first_message_after(&conn, after).unwrap(), want, "after {after}");
        }
    }

    #[test]
    fn reading_again_with_other_bounds_does_not_compile_the_statement_again() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let streams = [Span::since(Stream::User(1), 0), Span::since(Stream::User(2), 0)];
        for pos in 1..=20 {
            let stream = streams[pos as usize % 2].stream.key();
            conn.execute("INSERT INTO events (pos, stream, ts, json) VALUES (?1, ?2, 0, '{}')", [pos, stream]).unwrap();
        }
        for (after, until, limit) in [(0, 20, 500), (3, 9, 2), (5, 30, 7)] {
            let got = events_between(&conn, &streams, after, until, limit, &Newest::default()).unwrap();
            assert_eq!(got.len(), ((until.min(20) - after) as usize).min(limit));
        }
        let statement = conn.prepare_cached(EVENTS_BETWEEN).unwrap();
        assert_eq!(statement.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
