//! Sending and reading messages: idempotent sends, history pages, the conversation list
//! and read receipts.

use std::collections::HashMap;

use super::{Chat, ChatError, ChatResult};
use crate::model::{
    ConvId, ConvKind, ConvRef, Conversation, EventBody, Group, Message, NewEvent, Pos, Role, Stream, UserId,
};
use crate::store::{NewMessage, Recall, Sent, StoreError};

/// Longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 4000;
/// Largest history page.
pub const MAX_PAGE: usize = 200;
/// History page size when the client names none.
pub const DEFAULT_PAGE: usize = 50;

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A friend (direct conversation).
    User(UserId),
    /// A group.
    Group(i64),
}

impl Chat {
    /// Stores a message and delivers it; the same `client_msg_id` again returns the stored
    /// message with `created: false`.
    pub async fn send(&self, me: UserId, to: Target, client_msg_id: &str, body: &str) -> ChatResult<Sent> {
        if client_msg_id.is_empty() || client_msg_id.chars().count() > 64 {
            return Err(ChatError::invalid("invalid_client_msg_id", "client_msg_id must be 1 to 64 characters"));
        }
        let n = body.chars().count();
        if n == 0 || n > MAX_BODY_CHARS || body.trim().is_empty() {
            return Err(ChatError::invalid(
                "invalid_body",
                format!("body must be 1 to {MAX_BODY_CHARS} characters of text"),
            ));
        }
        let conv_ref = match to {
            Target::User(peer) => {
                if !self.hub().are_friends(me, peer) {
                    self.user(peer).await?;
                    return Err(ChatError::forbidden("not_friends", "you can only message your friends"));
                }
                ConvRef::direct(me, peer)
            }
            Target::Group(group) => {
                let conv_ref = ConvRef::Group(group);
                if self.hub().conv_id(conv_ref).is_none() {
                    return Err(ChatError::NotFound("group"));
                }
                conv_ref
            }
        };
        let conv = self.member_conv(me, conv_ref)?;
        let msg =
            NewMessage { conv, conv_ref, sender: me, client_msg_id: client_msg_id.to_owned(), body: body.to_owned() };
        match self.store().send_message(msg).await {
            Err(StoreError::Conflict(_)) => Err(ChatError::conflict(
                "client_msg_id_reused",
                "this client_msg_id was already used for another conversation",
            )),
            other => Ok(other?),
        }
    }

    /// A page of history, ascending by seq: the newest before `before`, or the oldest after
    /// `after`.
    pub async fn history(
        &self,
        me: UserId,
        cid: &str,
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<usize>,
    ) -> ChatResult<Vec<Message>> {
        let conv_ref = ConvRef::parse(cid).ok_or(ChatError::NotFound("conversation"))?;
        let conv = self.member_conv(me, conv_ref)?;
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ChatError::invalid("invalid_limit", format!("limit must be 1 to {MAX_PAGE}")));
        }
        if before.is_some_and(|b| b < 1) || after.is_some_and(|a| a < 0) {
            return Err(ChatError::invalid("invalid_seq", "before_seq must be at least 1 and after_seq at least 0"));
        }
        let floor = self.store().visible_from(conv, me).await?;
        Ok(self.store().history(conv, conv_ref, before, after, floor, limit).await?)
    }

    /// The user's conversations, most recent first, and the cursor to poll from so that
    /// nothing after this list is missed.
    pub async fn conversations(&self, me: UserId) -> ChatResult<(Vec<Conversation>, Pos)> {
        // Read the head first: whatever commits after it reaches the client through polling.
        let cursor = self.hub().head();
        let rows = self.store().conversations(me).await?;
        let peers: Vec<UserId> = rows
            .iter()
            .filter_map(|r| match r.conv {
                ConvRef::Direct(a, b) => Some(if a == me { b } else { a }),
                ConvRef::Group(_) => None,
            })
            .collect();
        let users = self.users_map(&peers).await?;
        let groups: HashMap<i64, Group> = if rows.iter().any(|r| matches!(r.conv, ConvRef::Group(_))) {
            self.store().groups_of(me).await?.into_iter().map(|g| (g.id, g)).collect()
        } else {
            HashMap::new()
        };
        let mut list: Vec<Conversation> = rows
            .into_iter()
            .map(|r| {
                let (kind, peer, group) = match r.conv {
                    ConvRef::Direct(a, b) => {
                        (ConvKind::Direct, users.get(if a == me { &b } else { &a }).cloned(), None)
                    }
                    ConvRef::Group(g) => (ConvKind::Group, None, groups.get(&g).cloned()),
                };
                Conversation {
                    id: r.conv.to_string(),
                    kind,
                    peer,
                    group,
                    unread: (r.last_seq - r.read_seq).max(0),
                    last_message: r.last_message,
                    last_seq: r.last_seq,
                    read_seq: r.read_seq,
                    peer_read_seq: r.peer_read_seq,
                    peer_delivered_seq: r.peer_delivered_seq,
                }
            })
            .collect();
        list.sort_by_key(|c| std::cmp::Reverse(c.last_message.as_ref().map(|m| m.ts).unwrap_or(0)));
        Ok((list, cursor))
    }

    /// Marks the conversation read up to `seq`; the other side of a direct chat and the
    /// user's other devices get `conversation.read`.
    pub async fn mark_read(&self, me: UserId, cid: &str, seq: i64) -> ChatResult<()> {
        let conv_ref = ConvRef::parse(cid).ok_or(ChatError::NotFound("conversation"))?;
        let conv = self.member_conv(me, conv_ref)?;
        if seq < 0 {
            return Err(ChatError::invalid("invalid_seq", "seq must be at least 0"));
        }
        let stream = match conv_ref {
            ConvRef::Direct(..) => Stream::Conv(conv),
            ConvRef::Group(_) => Stream::User(me),
        };
        let conversation_id = conv_ref.to_string();
        let event = Box::new(move |seq| {
            NewEvent::now(stream, EventBody::ConversationRead { conversation_id, user_id: me, seq })
        });
        self.store().mark_read(me, conv, seq, event).await?;
        Ok(())
    }

    /// Recalls message `seq`: its sender within the recall window (2 minutes unless
    /// configured), or a group's owner or
    /// admins at any time. Every member's devices get `message.recalled`.
    pub async fn recall(&self, me: UserId, cid: &str, seq: i64) -> ChatResult<()> {
        let conv_ref = ConvRef::parse(cid).ok_or(ChatError::NotFound("conversation"))?;
        let conv = self.member_conv(me, conv_ref)?;
        let manages = match conv_ref {
            ConvRef::Group(g) => self.store().role(g, me).await?.is_some_and(Role::manages),
            ConvRef::Direct(..) => false,
        };
        let event = NewEvent::now(
            Stream::Conv(conv),
            EventBody::MessageRecalled { conversation_id: conv_ref.to_string(), seq },
        );
        let not_before = crate::model::now_ms() - self.config().recall_window.as_millis() as i64;
        match self.store().recall(conv, seq, me, manages, not_before, event).await? {
            Recall::Done => Ok(()),
            Recall::NoSuchMessage => Err(ChatError::NotFound("message")),
            Recall::NotYours => {
                Err(ChatError::forbidden("not_sender", "only the sender (or a group admin) may recall a message"))
            }
            Recall::TooLate => {
                Err(ChatError::forbidden("recall_window_passed", "the time to recall this message has passed"))
            }
        }
    }

    /// The internal id of a conversation the user belongs to: 404 if it does not exist,
    /// 403 if the user is not in it.
    fn member_conv(&self, me: UserId, conv_ref: ConvRef) -> ChatResult<ConvId> {
        let conv = self.hub().conv_id(conv_ref).ok_or(ChatError::NotFound("conversation"))?;
        if self.hub().is_member(conv, me) {
            Ok(conv)
        } else {
            Err(ChatError::forbidden("not_member", "you are not in this conversation"))
        }
    }
}
