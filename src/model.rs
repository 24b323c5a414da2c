//! Domain types shared by every layer, in the shapes the HTTP contract (API.md) shows.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user's id; positive, assigned by the store.
pub type UserId = i64;
/// A device (one login) id.
pub type DeviceId = i64;
/// The store's internal id of a conversation; clients see [`ConvRef`] strings instead.
pub type ConvId = i64;
/// A position in the global event order; strictly increasing in commit order.
pub type Pos = i64;

/// Milliseconds since the Unix epoch, the contract's `ts`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A person as other people see them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// Lower-case login name, unique.
    pub username: String,
    /// Name shown to people.
    pub display_name: String,
    /// Picture URL; a generated one when the user has uploaded none.
    pub avatar_url: String,
    /// Whether any device of the user holds (or just held) a message connection.
    pub online: bool,
}

/// A stored chat message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Message {
    /// Globally unique message id.
    pub id: i64,
    /// The conversation it belongs to (opaque string).
    pub conversation_id: String,
    /// 1-based, gapless within the conversation.
    pub seq: i64,
    /// Who sent it.
    pub sender_id: UserId,
    /// The sender's idempotency key.
    pub client_msg_id: String,
    /// The text; empty once recalled.
    pub body: String,
    /// When the server stored it.
    pub ts: i64,
    /// True once the message was recalled (extension).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recalled: bool,
}

/// A friend request between two users.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct FriendRequest {
    /// Request id.
    pub id: i64,
    /// Who asked.
    pub from: User,
    /// Who is asked.
    pub to: User,
    /// Optional text from the asker.
    pub note: String,
    /// When it was made.
    pub ts: i64,
}

/// Which kind of conversation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConvKind {
    /// Between two friends.
    Direct,
    /// A group's chat.
    Group,
}

/// A conversation as listed for one user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Conversation {
    /// Opaque conversation id.
    pub id: String,
    /// `direct` or `group`.
    pub kind: ConvKind,
    /// The other person, for direct conversations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<User>,
    /// The newest message, if any.
    pub last_message: Option<Message>,
    /// The newest `seq` (0 when empty).
    pub last_seq: i64,
    /// The highest `seq` this user has read.
    pub read_seq: i64,
    /// Messages after `read_seq`.
    pub unread: i64,
}

/// The opaque conversation id clients see: `d{a}-{b}` (a < b) or `g{group}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvRef {
    /// A direct conversation between two users, smaller id first.
    Direct(UserId, UserId),
    /// A group's conversation.
    Group(i64),
}

impl ConvRef {
    /// The direct conversation of two users, in canonical order.
    pub fn direct(a: UserId, b: UserId) -> Self {
        if a < b {
            ConvRef::Direct(a, b)
        } else {
            ConvRef::Direct(b, a)
        }
    }

    /// Parses the string form; `None` for anything that is not a well-formed id.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(rest) = s.strip_prefix('d') {
            let (a, b) = rest.split_once('-')?;
            let (a, b) = (parse_id(a)?, parse_id(b)?);
            (a < b).then_some(ConvRef::Direct(a, b))
        } else {
            s.strip_prefix('g').and_then(parse_id).map(ConvRef::Group)
        }
    }
}

fn parse_id(s: &str) -> Option<i64> {
    // Only canonical decimal: no sign, no leading zeros, so each id has one spelling.
    if s.is_empty() || s.len() > 18 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

impl std::fmt::Display for ConvRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvRef::Direct(a, b) => write!(f, "d{a}-{b}"),
            ConvRef::Group(g) => write!(f, "g{g}"),
        }
    }
}

/// Everything that can happen for a user, as delivered on the message connection.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(tag = "type")]
pub enum EventBody {
    /// A message was stored in one of the user's conversations.
    #[serde(rename = "message.new")]
    MessageNew {
        /// The message.
        message: Message,
    },
    /// A message was recalled.
    #[serde(rename = "message.recalled")]
    MessageRecalled {
        /// Where.
        conversation_id: String,
        /// Which.
        seq: i64,
    },
    /// A member read up to `seq`.
    #[serde(rename = "conversation.read")]
    ConversationRead {
        /// Where.
        conversation_id: String,
        /// Who read.
        user_id: UserId,
        /// Up to which message.
        seq: i64,
    },
    /// A device of `user_id` acknowledged messages up to `seq`.
    #[serde(rename = "conversation.delivered")]
    ConversationDelivered {
        /// Where.
        conversation_id: String,
        /// Whose device received.
        user_id: UserId,
        /// Up to which message.
        seq: i64,
    },
    /// Someone asks to be this user's friend.
    #[serde(rename = "friend.request")]
    FriendRequest {
        /// The request.
        request: FriendRequest,
    },
    /// A friend request was accepted; `user` is the new friend.
    #[serde(rename = "friend.accepted")]
    FriendAccepted {
        /// The new friend.
        user: User,
        /// The direct conversation with them (extension).
        conversation_id: String,
    },
    /// A friend request this user made was declined (extension).
    #[serde(rename = "friend.declined")]
    FriendDeclined {
        /// The declined request's id.
        request_id: i64,
        /// Who declined.
        user_id: UserId,
    },
    /// A friendship ended.
    #[serde(rename = "friend.removed")]
    FriendRemoved {
        /// The former friend.
        user_id: UserId,
    },
    /// A friend came online or went offline.
    #[serde(rename = "presence")]
    Presence {
        /// Who.
        user_id: UserId,
        /// Now online?
        online: bool,
    },
}

/// An event as the contract shows it: `{type, ts, …}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// When it happened.
    pub ts: i64,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// The log an event is kept in; it decides who receives the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Events for one user only (friend requests, receipts for them, settings).
    User(UserId),
    /// Events for every member of a conversation (messages, recalls).
    Conv(ConvId),
    /// A user's presence changes, for every friend of that user.
    Presence(UserId),
}

impl Stream {
    /// One integer for storage: the id times four plus the kind.
    pub fn key(self) -> i64 {
        match self {
            Stream::User(id) => id * 4,
            Stream::Conv(id) => id * 4 + 1,
            Stream::Presence(id) => id * 4 + 2,
        }
    }

    /// Inverse of [`Stream::key`].
    pub fn from_key(key: i64) -> Self {
        match key.rem_euclid(4) {
            0 => Stream::User(key / 4),
            1 => Stream::Conv(key / 4),
            _ => Stream::Presence(key / 4),
        }
    }
}

/// A committed event: its place in the global order and its JSON, rendered once and shared
/// by every recipient.
#[derive(Debug)]
pub struct StoredEvent {
    /// Position in the global order.
    pub pos: Pos,
    /// The log it belongs to.
    pub stream: Stream,
    /// The event's JSON object (`{"type":…,"ts":…,…}`).
    pub json: Box<str>,
    /// For `message.new`: the conversation, sender and seq, so delivery receipts need no parsing.
    pub message: Option<MessageMeta>,
}

/// The routing facts of a `message.new` event.
#[derive(Debug, Clone, Copy)]
pub struct MessageMeta {
    /// Internal conversation id.
    pub conv: ConvId,
    /// Who sent it.
    pub sender: UserId,
    /// Its seq.
    pub seq: i64,
    /// Whether the conversation is a direct one (delivery receipts are kept for those).
    pub direct: bool,
}

/// An event about to be stored: where it goes and what it says.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The log it goes to.
    pub stream: Stream,
    /// The event itself.
    pub event: Event,
}

impl NewEvent {
    /// An event for `stream`, stamped now.
    pub fn now(stream: Stream, body: EventBody) -> Self {
        NewEvent {
            stream,
            event: Event { ts: now_ms(), body },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_round_trip_and_reject_non_canonical_forms() {
        for c in [
            ConvRef::Direct(1, 2),
            ConvRef::Direct(7, 1234),
            ConvRef::Group(9),
        ] {
            assert_eq!(ConvRef::parse(&c.to_string()), Some(c));
        }
        for bad in [
            "",
            "d",
            "d2-1",
            "d1-1",
            "d01-2",
            "d1-+2",
            "g",
            "g-1",
            "x1",
            "d1_2",
            "g99999999999999999999",
        ] {
            assert_eq!(ConvRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stream_keys_round_trip() {
        for s in [
            Stream::User(5),
            Stream::Conv(5),
            Stream::Presence(5),
            Stream::Conv(1),
        ] {
            assert_eq!(Stream::from_key(s.key()), s);
        }
    }

    #[test]
    fn events_serialize_as_the_contract_shows() {
        let e = Event {
            ts: 5,
            body: EventBody::Presence {
                user_id: 3,
                online: true,
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "presence", "ts": 5, "user_id": 3, "online": true})
        );
    }
}
