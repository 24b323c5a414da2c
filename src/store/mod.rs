//! Durable state behind one trait, so the embedded SQLite store and a many-node store are
//! interchangeable without touching the chat rules or the HTTP layer.
//!
//! Every mutation that produces events appends them in the same transaction, and the store
//! hands each committed batch to a [`CommitSink`] in commit order: that ordering is what
//! makes a cursor (a position in the global order) safe to advance.

pub mod blobs;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{
    ConvId, ConvRef, DeviceId, Group, JoinPolicy, Message, NewEvent, Pos, Role, StoredEvent, Stream, UserId,
};

/// Failures of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (the field that clashed).
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The store is shutting down or its writer died.
    #[error("the store is closed")]
    Closed,
    /// A read from a position that retention has already swept past.
    #[error("the position is older than what retention keeps")]
    Expired,
}

/// Result of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// A user row as stored.
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Id.
    pub id: UserId,
    /// Lower-case login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Content address of an uploaded avatar, if any.
    pub avatar: Option<String>,
}

/// A device (one login).
#[derive(Debug, Clone)]
pub struct DeviceRow {
    /// Id.
    pub id: DeviceId,
    /// Owner.
    pub user_id: UserId,
    /// Last acknowledged cursor position as last saved.
    pub acked: Pos,
}

/// A pending friend request.
#[derive(Debug, Clone)]
pub struct RequestRow {
    /// Id.
    pub id: i64,
    /// Asker.
    pub from: UserId,
    /// Asked.
    pub to: UserId,
    /// Text from the asker.
    pub note: String,
    /// When.
    pub ts: i64,
}

/// One conversation of a user, with their read position.
#[derive(Debug, Clone)]
pub struct ConvRow {
    /// Internal id.
    pub id: ConvId,
    /// External id.
    pub conv: ConvRef,
    /// Highest seq.
    pub last_seq: i64,
    /// The user's read position.
    pub read_seq: i64,
    /// Direct chats: how far the other person has read.
    pub peer_read_seq: Option<i64>,
    /// Direct chats: how far the other person's devices have received.
    pub peer_delivered_seq: Option<i64>,
    /// The newest message.
    pub last_message: Option<Message>,
}

/// A change to who receives which stream, applied by the sink in commit order.
#[derive(Debug, Clone)]
pub enum Delta {
    /// A conversation exists (created, or seen at start).
    Conversation {
        /// Internal id.
        id: ConvId,
        /// External id.
        conv: ConvRef,
    },
    /// `user` receives the conversation's events after `from`.
    MemberAdded {
        /// Conversation.
        conv: ConvId,
        /// Member.
        user: UserId,
        /// Events after this position reach the member.
        from: Pos,
    },
    /// `user` no longer receives the conversation.
    MemberRemoved {
        /// Conversation.
        conv: ConvId,
        /// Former member.
        user: UserId,
    },
    /// Two users became friends.
    FriendsAdded(UserId, UserId),
    /// Two users are no longer friends.
    FriendsRemoved(UserId, UserId),
}

/// A stream as a user receives or received it: its events in `(from, until]` are theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The stream.
    pub stream: Stream,
    /// Events after this position (the subscription's start).
    pub from: Pos,
    /// Events up to this position: where the subscription ended, or `Pos::MAX`.
    pub until: Pos,
}

impl Span {
    /// A subscription that has not ended.
    pub fn since(stream: Stream, from: Pos) -> Self {
        Span { stream, from, until: Pos::MAX }
    }
}

/// What one transaction made visible.
#[derive(Debug, Default)]
pub struct Committed {
    /// New events, ascending by position.
    pub events: Vec<Arc<StoredEvent>>,
    /// Membership changes, each with the last position taken before it: it applies to
    /// events above that position and not to those at or below.
    pub deltas: Vec<(Pos, Delta)>,
}

/// Receives every committed batch, in commit order, before any caller is answered.
pub trait CommitSink: Send + Sync + 'static {
    /// Called once per commit; must not block for long (it runs on the commit path).
    fn committed(&self, batch: &Committed);
}

/// Everything the in-memory router needs at start.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The highest committed position.
    pub head: Pos,
    /// Events at or below this position were removed by retention.
    pub floor: Pos,
    /// Conversations, memberships and friendships, as deltas to replay.
    pub deltas: Vec<Delta>,
}

/// The outcome of storing a message.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The stored message (the earlier one when the `client_msg_id` was seen before).
    pub message: Message,
    /// `message` as JSON ([`Message::to_json`]), which the send's answer embeds as it is.
    pub json: String,
    /// False when the message had been stored before (an idempotent re-send).
    pub created: bool,
}

/// What a friend-request answer did.
#[derive(Debug, Clone, PartialEq)]
pub enum Answered {
    /// Accepted: the two are friends, with this direct conversation.
    Accepted(ConvRef),
    /// Declined.
    Declined,
    /// No pending request with that id addressed to this user.
    NoSuchRequest,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Internal conversation id.
    pub conv: ConvId,
    /// External conversation id.
    pub conv_ref: ConvRef,
    /// Sender.
    pub sender: UserId,
    /// Idempotency key, unique per sender.
    pub client_msg_id: String,
    /// Text.
    pub body: String,
}

/// Users, their devices and acknowledged cursors.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Creates a user; `Conflict("username")` when the name is taken (ignoring case).
    async fn create_user(&self, username: String, display_name: String, password_hash: String) -> StoreResult<UserRow>;

    /// The user and their password hash, by lower-case name.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<(UserRow, String)>>;

    /// Users by id, in no particular order; unknown ids are skipped.
    async fn users_by_ids(&self, ids: &[UserId]) -> StoreResult<Vec<UserRow>>;

    /// Users whose name or display name contains `q` (lower-case), prefix matches first.
    async fn search_users(&self, q: &str, offset: usize, limit: usize) -> StoreResult<Vec<UserRow>>;
    /// Changes a user's display name and/or picture; `None` when the user does not exist.
    async fn update_profile(
        &self,
        user: UserId,
        display_name: Option<String>,
        avatar: Option<String>,
        events: UserEvents,
    ) -> StoreResult<Option<UserRow>>;
    /// The user's settings object, as JSON text.
    async fn settings(&self, user: UserId) -> StoreResult<String>;
    /// Replaces the user's settings (JSON text) and stores the events.
    async fn put_settings(&self, user: UserId, json: String, events: Vec<NewEvent>) -> StoreResult<()>;

    /// Registers a login whose token hashes to `token_hash`, starting at cursor `acked`.
    async fn create_device(
        &self,
        user: UserId,
        name: String,
        token_hash: [u8; 32],
        acked: Pos,
    ) -> StoreResult<DeviceRow>;

    /// The device whose token hashes to `token_hash`.
    async fn device_by_token(&self, token_hash: [u8; 32]) -> StoreResult<Option<DeviceRow>>;

    /// Forgets a device (logout).
    async fn delete_device(&self, id: DeviceId) -> StoreResult<()>;

    /// Saves acknowledged cursors; positions only move forward.
    async fn save_acks(&self, acks: Vec<(DeviceId, Pos)>) -> StoreResult<()>;
}

/// Friend requests and friendships.
#[async_trait]
pub trait ContactStore: Send + Sync + 'static {
    /// Ids of the user's friends.
    async fn friend_ids(&self, user: UserId) -> StoreResult<Vec<UserId>>;

    /// Pending requests to and from the user.
    async fn friend_requests(&self, user: UserId) -> StoreResult<(Vec<RequestRow>, Vec<RequestRow>)>;

    /// A pending request by id.
    async fn friend_request(&self, id: i64) -> StoreResult<Option<RequestRow>>;

    /// Stores a pending request and its events; `Conflict("friend_request")` if one is pending
    /// between the two in either direction, `Conflict("friendship")` if they are friends.
    async fn create_friend_request(
        &self,
        from: UserId,
        to: UserId,
        note: String,
        events: Box<dyn FnOnce(i64) -> Vec<NewEvent> + Send>,
    ) -> StoreResult<RequestRow>;

    /// Accepts or declines the pending request `id` addressed to `by`, with its events.
    async fn answer_friend_request(
        &self,
        id: i64,
        by: UserId,
        accept: bool,
        events: Vec<NewEvent>,
    ) -> StoreResult<Answered>;

    /// Ends a friendship; false when there was none.
    async fn remove_friend(&self, a: UserId, b: UserId, events: Vec<NewEvent>) -> StoreResult<bool>;
}

/// Messages, conversations and receipts.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores a message (or finds the earlier one with the same `client_msg_id`), advances
    /// the sender's read position to it and emits `message.new` to the conversation.
    async fn send_message(&self, msg: NewMessage) -> StoreResult<Sent>;

    /// Messages of a conversation, ascending by seq: the newest `limit` before `before`, or
    /// the oldest `limit` after `after`.
    /// Only messages above `floor` are returned (history hidden from a late joiner).
    async fn history(
        &self,
        conv: ConvId,
        conv_ref: ConvRef,
        before: Option<i64>,
        after: Option<i64>,
        floor: i64,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;
    /// Recalls message `seq`: by its sender not before `not_before_ts`, or by anyone when
    /// `any_sender`; stores `event` when it takes effect.
    async fn recall(
        &self,
        conv: ConvId,
        seq: i64,
        by: UserId,
        any_sender: bool,
        not_before_ts: i64,
        event: NewEvent,
    ) -> StoreResult<Recall>;

    /// The user's conversations with their read positions and newest messages.
    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConvRow>>;

    /// Moves the user's read position forward to `seq` (capped at the last seq) and emits
    /// `event` built with the effective seq; `None` when it did not move.
    async fn mark_read(
        &self,
        user: UserId,
        conv: ConvId,
        seq: i64,
        event: Box<dyn FnOnce(i64) -> NewEvent + Send>,
    ) -> StoreResult<Option<i64>>;

    /// Moves each user's delivered position in each conversation forward; emits the events
    /// built for each move.
    async fn mark_delivered(
        &self,
        marks: Vec<(UserId, ConvId, i64)>,
        event: Box<dyn Fn(UserId, ConvId, i64) -> NewEvent + Send>,
    ) -> StoreResult<()>;
}

/// The event log: start-up state, appends, catch-up reads, retention.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// State the in-memory router is built from at start.
    async fn snapshot(&self) -> StoreResult<Snapshot>;

    /// Appends events that change no other state (presence, …).
    async fn append(&self, events: Vec<NewEvent>) -> StoreResult<()>;

    /// The user's events with positions after `after` and up to `until`, ascending, at most
    /// `limit`: those of every stream the user received at the event's position, including
    /// streams they no longer receive (a group they left since). [`StoreError::Expired`]
    /// when retention has swept past `after`.
    async fn events_after(
        &self,
        user: UserId,
        after: Pos,
        until: Pos,
        limit: usize,
    ) -> StoreResult<Vec<Arc<StoredEvent>>>;

    /// Removes messages and events older than `before_ts`; returns the new floor position.
    async fn sweep(&self, before_ts: i64) -> StoreResult<Pos>;
}

/// What adding a member did.
#[derive(Debug, Clone, PartialEq)]
pub enum Joined {
    /// Added; the group now.
    Added(Group),
    /// The user was a member already.
    AlreadyMember,
    /// The group has as many members as allowed.
    Full,
    /// No such group (or dissolved).
    NoGroup,
    /// Adding was to answer a join request, and there is none.
    NoRequest,
}

/// What recalling a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recall {
    /// Recalled now (or before).
    Done,
    /// No message with that seq.
    NoSuchMessage,
    /// Only the sender (or a manager) may recall it.
    NotYours,
    /// The sender's recall window has passed.
    TooLate,
}

/// Changes to a group's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct GroupChanges {
    /// New name.
    pub name: Option<String>,
    /// New join policy.
    pub join_policy: Option<JoinPolicy>,
    /// New history visibility for members who join later.
    pub history_visible: Option<bool>,
    /// New picture (content address).
    pub avatar: Option<String>,
}

/// Builds a mutation's events from the group as the mutation left it.
pub type GroupEvents = Box<dyn FnOnce(&Group) -> Vec<NewEvent> + Send>;
/// Builds a mutation's events from the user as the mutation left them.
pub type UserEvents = Box<dyn FnOnce(&UserRow) -> Vec<NewEvent> + Send>;

/// Groups, their members, roles and join requests.
#[async_trait]
pub trait GroupStore: Send + Sync + 'static {
    /// Creates a group with `owner` as its only member, and its conversation.
    async fn create_group(
        &self,
        owner: UserId,
        name: String,
        policy: JoinPolicy,
        history_visible: bool,
        events: GroupEvents,
    ) -> StoreResult<Group>;
    /// A group that exists (not dissolved).
    async fn group(&self, id: i64) -> StoreResult<Option<Group>>;
    /// Groups whose name contains `q` (lower-case), prefix matches first.
    async fn search_groups(&self, q: &str, offset: usize, limit: usize) -> StoreResult<Vec<Group>>;
    /// The groups a user belongs to.
    async fn groups_of(&self, user: UserId) -> StoreResult<Vec<Group>>;
    /// Members with their roles, owner first.
    async fn members(&self, group: i64) -> StoreResult<Vec<(UserRow, Role)>>;
    /// A user's role in a group, if a member.
    async fn role(&self, group: i64, user: UserId) -> StoreResult<Option<Role>>;
    /// Adds a member (at most `max` members); with `via_request`, only if the user asked
    /// to join, and the request is consumed. Events come after the member is in.
    async fn add_member(
        &self,
        group: i64,
        user: UserId,
        max: usize,
        via_request: bool,
        events: GroupEvents,
    ) -> StoreResult<Joined>;
    /// Removes a member; the events are stored before the removal, so the member gets them
    /// too. `None` when the user was no member.
    async fn remove_member(&self, group: i64, user: UserId, events: GroupEvents) -> StoreResult<Option<Group>>;
    /// Sets a member's role (never `owner`: see [`GroupStore::transfer_owner`]).
    async fn set_role(&self, group: i64, user: UserId, role: Role, events: Vec<NewEvent>) -> StoreResult<bool>;
    /// Makes member `to` the owner and `from` an admin.
    async fn transfer_owner(&self, group: i64, from: UserId, to: UserId, events: GroupEvents) -> StoreResult<bool>;
    /// Renames, re-pictures or changes the policies of a group.
    async fn update_group(&self, group: i64, changes: GroupChanges, events: GroupEvents) -> StoreResult<Option<Group>>;
    /// Dissolves a group: events first, then every member is removed.
    async fn dissolve_group(&self, group: i64, events: Vec<NewEvent>) -> StoreResult<bool>;
    /// Records a join request; false when one is pending already.
    async fn request_join(&self, group: i64, user: UserId, events: Vec<NewEvent>) -> StoreResult<bool>;
    /// Pending join requests: who and when.
    async fn join_requests(&self, group: i64) -> StoreResult<Vec<(UserRow, i64)>>;
    /// Drops a join request; false when there was none.
    async fn decline_join(&self, group: i64, user: UserId, events: Vec<NewEvent>) -> StoreResult<bool>;
    /// The lowest seq the member may read in history: 0, or their join point when the
    /// group hides earlier history from new members.
    async fn visible_from(&self, conv: ConvId, user: UserId) -> StoreResult<i64>;
}

/// The durable store: every part together. Reads may run concurrently; writes are
/// ordered and group-committed.
pub trait Store: AccountStore + ContactStore + MessageStore + EventStore + GroupStore {}

impl<T: AccountStore + ContactStore + MessageStore + EventStore + GroupStore> Store for T {}
