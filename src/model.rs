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
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
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

impl Message {
    /// The message as JSON, as the contract shows it.
    pub fn to_json(&self) -> String {
        // Sized up front: grown from empty, the buffer was reallocated five or six times.
        let ids = self.conversation_id.len() + self.client_msg_id.len();
        let mut out = Vec::with_capacity(self.body.len() + ids + 128);
        serde_json::to_writer(&mut out, self).expect("messages serialize");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }
}

/// The `message.new` event of a message at `ts`, around its JSON from [`Message::to_json`]:
/// a send renders its message once for the event and its answer, rather than cloning it
/// into an [`Event`] and serializing it twice.
pub fn message_new_json(ts: i64, message_json: &str) -> String {
    let ts = ts.to_string();
    let mut out = String::with_capacity(message_json.len() + ts.len() + 40);
    for part in [r#"{"ts":"#, &ts, r#","type":"message.new","message":"#, message_json, "}"] {
        out.push_str(part);
    }
    out
}

/// The picture URL of a user: the uploaded one, else a generated one.
pub fn user_avatar_url(id: UserId, uploaded: Option<&str>) -> String {
    match uploaded {
        Some(hash) => format!("/avatars/{hash}.png"),
        None => format!("/api/v1/users/{id}/avatar"),
    }
}

/// The picture URL of a group: the uploaded one, else a generated one.
pub fn group_avatar_url(id: i64, uploaded: Option<&str>) -> String {
    match uploaded {
        Some(hash) => format!("/avatars/{hash}.png"),
        None => format!("/api/v1/groups/{id}/avatar"),
    }
}

/// A member's role in a group.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A plain member.
    Member,
    /// Manages members and messages.
    Admin,
    /// Everything, including dissolving; exactly one per group.
    Owner,
}

impl Role {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    /// Owners and admins manage members and may recall any message.
    pub fn manages(self) -> bool {
        self >= Role::Admin
    }
}

/// How people join a group.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JoinPolicy {
    /// Anyone joins at once.
    Open,
    /// A join creates a request an owner or admin accepts.
    Approval,
}

impl JoinPolicy {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JoinPolicy::Open => "open",
            JoinPolicy::Approval => "approval",
        }
    }
}

/// A group as anyone may see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct Group {
    /// Group id.
    pub id: i64,
    /// 1–64 characters.
    pub name: String,
    /// Picture URL (generated when none was uploaded).
    pub avatar_url: String,
    /// The owner.
    pub owner_id: UserId,
    /// `open` or `approval`.
    pub join_policy: JoinPolicy,
    /// Current members.
    pub member_count: i64,
    /// The group's conversation (extension).
    pub conversation_id: String,
    /// Whether members who join later read the history from before they joined (extension).
    pub history_visible_to_new_members: bool,
}

/// A group member.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Member {
    /// The person.
    pub user: User,
    /// Their role.
    pub role: Role,
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
    /// The group, for group conversations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Group>,
    /// The newest message, if any.
    pub last_message: Option<Message>,
    /// The newest `seq` (0 when empty).
    pub last_seq: i64,
    /// The highest `seq` this user has read.
    pub read_seq: i64,
    /// Messages after `read_seq`.
    pub unread: i64,
    /// Direct chats: the highest seq the other person has read (extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_read_seq: Option<i64>,
    /// Direct chats: the highest seq a device of the other person received (extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_delivered_seq: Option<i64>,
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
    if s.is_empty() || s.len() > 18 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
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
    /// A group's name, picture, policy or owner changed (or the reader joined it).
    #[serde(rename = "group.updated")]
    GroupUpdated {
        /// The group now.
        group: Group,
    },
    /// Someone joined (or was added to) a group.
    #[serde(rename = "group.member_joined")]
    GroupMemberJoined {
        /// Which group.
        group_id: i64,
        /// Who joined.
        user: User,
        /// The group now (extension).
        group: Group,
    },
    /// Someone left (or was removed from) a group; they get this event too.
    #[serde(rename = "group.member_left")]
    GroupMemberLeft {
        /// Which group.
        group_id: i64,
        /// Who left.
        user_id: UserId,
        /// The group now (extension).
        group: Group,
    },
    /// A member's role changed (extension).
    #[serde(rename = "group.member_role")]
    GroupMemberRole {
        /// Which group.
        group_id: i64,
        /// Whose role.
        user_id: UserId,
        /// The new role.
        role: Role,
    },
    /// Someone asks to join an approval group; sent to its owner and admins (extension).
    #[serde(rename = "group.join_request")]
    GroupJoinRequest {
        /// Which group.
        group_id: i64,
        /// Who asks.
        user: User,
    },
    /// A join request was declined; sent to the asker (extension).
    #[serde(rename = "group.join_declined")]
    GroupJoinDeclined {
        /// Which group.
        group_id: i64,
    },
    /// The group was dissolved; every member loses access (extension).
    #[serde(rename = "group.dissolved")]
    GroupDissolved {
        /// Which group.
        group_id: i64,
    },
    /// A user changed their name or picture; sent to their friends and their own devices.
    #[serde(rename = "profile.updated")]
    ProfileUpdated {
        /// The user now.
        user: User,
    },
    /// The user's settings changed on another device.
    #[serde(rename = "settings.updated")]
    SettingsUpdated {
        /// All settings now.
        #[schema(value_type = Object)]
        settings: serde_json::Value,
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
    /// Events about a user for every friend of theirs (presence, profile changes).
    Friends(UserId),
}

impl Stream {
    /// One integer for storage: the id times four plus the kind.
    pub fn key(self) -> i64 {
        match self {
            Stream::User(id) => id * 4,
            Stream::Conv(id) => id * 4 + 1,
            Stream::Friends(id) => id * 4 + 2,
        }
    }

    /// Inverse of [`Stream::key`].
    pub fn from_key(key: i64) -> Self {
        match key.rem_euclid(4) {
            0 => Stream::User(key / 4),
            1 => Stream::Conv(key / 4),
            _ => Stream::Friends(key / 4),
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
        NewEvent { stream, event: Event { ts: now_ms(), body } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_round_trip_and_reject_non_canonical_forms() {
        for c in [ConvRef::Direct(1, 2), ConvRef::Direct(7, 1234), ConvRef::Group(9)] {
            assert_eq!(ConvRef::parse(&c.to_string()), Some(c));
        }
        for bad in ["", "d", "d2-1", "d1-1", "d01-2", "d1-+2", "g", "g-1", "x1", "d1_2", "g99999999999999999999"] {
            assert_eq!(ConvRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stream_keys_round_trip() {
        for s in [Stream::User(5), Stream::Conv(5), Stream::Friends(5), Stream::Conv(1)] {
            assert_eq!(Stream::from_key(s.key()), s);
        }
    }

    #[test]
    fn events_serialize_as_the_contract_shows() {
        let e = Event { ts: 5, body: EventBody::Presence { user_id: 3, online: true } };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v, serde_json::json!({"type": "presence", "ts": 5, "user_id": 3, "online": true}));
    }

    #[test]
    fn a_message_new_made_from_the_rendered_message_is_what_serde_renders() {
        for (body, recalled) in [("hi \"there\" ✓\n", false), ("", true)] {
            let message = Message {
                id: 7,
                conversation_id: "d1-2".into(),
                seq: 3,
                sender_id: 1,
                client_msg_id: "k/1".into(),
                body: body.into(),
                ts: 1_700_000_000_123,
                recalled,
            };
            let event = Event { ts: message.ts, body: EventBody::MessageNew { message: message.clone() } };
            assert_eq!(message_new_json(message.ts, &message.to_json()), serde_json::to_string(&event).unwrap());
        }
    }
}
