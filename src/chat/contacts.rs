//! Contacts: finding people, friend requests and friendships. Each step is an event for
//! the other side (and for the actor's other devices where it changes their lists).

use super::{Chat, ChatError, ChatResult};
use crate::model::{ConvRef, EventBody, FriendRequest, NewEvent, Stream, User, UserId};
use crate::store::{Answered, RequestRow, StoreError};

/// Most users one search returns.
pub const SEARCH_LIMIT: usize = 50;

impl Chat {
    /// Users whose username or display name contains `q` (case-insensitive), prefix
    /// matches first, at most 50.
    pub async fn search_users(&self, q: &str, offset: usize) -> ChatResult<Vec<User>> {
        let q = super::groups::search_text(q)?;
        let rows = self.store().search_users(&q, offset, SEARCH_LIMIT).await?;
        Ok(rows.iter().map(|r| self.user_view(r)).collect())
    }

    /// The user's friends, by display name.
    pub async fn friends(&self, me: UserId) -> ChatResult<Vec<User>> {
        let ids = self.store().friend_ids(me).await?;
        let mut users: Vec<User> = self.store().users_by_ids(&ids).await?.iter().map(|r| self.user_view(r)).collect();
        users.sort_by(|a, b| a.display_name.to_lowercase().cmp(&b.display_name.to_lowercase()).then(a.id.cmp(&b.id)));
        Ok(users)
    }

    /// Asks `to` to be friends; `friend.request` reaches them and the asker's devices.
    pub async fn request_friend(&self, me: UserId, to: UserId, note: Option<&str>) -> ChatResult<FriendRequest> {
        if to == me {
            return Err(ChatError::invalid("invalid_user_id", "you cannot befriend yourself"));
        }
        let note = note.unwrap_or("").trim().to_owned();
        if note.chars().count() > 500 {
            return Err(ChatError::invalid("invalid_note", "the note must be at most 500 characters"));
        }
        let users = self.users_map(&[me, to]).await?;
        let (from_user, to_user) = match (users.get(&me), users.get(&to)) {
            (Some(f), Some(t)) => (f.clone(), t.clone()),
            _ => return Err(ChatError::NotFound("user")),
        };
        let (f, t, n) = (from_user.clone(), to_user.clone(), note.clone());
        let events = Box::new(move |id| {
            let request = FriendRequest { id, from: f, to: t, note: n, ts: crate::model::now_ms() };
            // The asker's other devices learn of it too, to list it as outgoing.
            vec![
                NewEvent::now(Stream::User(to), EventBody::FriendRequest { request: request.clone() }),
                NewEvent::now(Stream::User(me), EventBody::FriendRequest { request }),
            ]
        });
        match self.store().create_friend_request(me, to, note, events).await {
            Ok(row) => Ok(FriendRequest { id: row.id, from: from_user, to: to_user, note: row.note, ts: row.ts }),
            Err(StoreError::Conflict("friendship")) => {
                Err(ChatError::conflict("already_friends", "you are friends already"))
            }
            Err(StoreError::Conflict(_)) => {
                Err(ChatError::conflict("request_pending", "a friend request between you is already pending"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Pending requests: (incoming, outgoing).
    pub async fn friend_requests(&self, me: UserId) -> ChatResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        let (incoming, outgoing) = self.store().friend_requests(me).await?;
        let ids: Vec<UserId> = incoming.iter().chain(&outgoing).flat_map(|r| [r.from, r.to]).collect();
        let users = self.users_map(&ids).await?;
        let view = |rows: Vec<RequestRow>| -> Vec<FriendRequest> {
            rows.into_iter()
                .filter_map(|r| {
                    Some(FriendRequest {
                        id: r.id,
                        from: users.get(&r.from)?.clone(),
                        to: users.get(&r.to)?.clone(),
                        note: r.note,
                        ts: r.ts,
                    })
                })
                .collect()
        };
        Ok((view(incoming), view(outgoing)))
    }

    /// Accepts request `id` made to `me`: both get `friend.accepted` with the other as
    /// `user`, and their direct conversation exists from now on.
    pub async fn accept_friend(&self, me: UserId, id: i64) -> ChatResult<(User, ConvRef)> {
        let request = self.pending_request_to(me, id).await?;
        let users = self.users_map(&[me, request.from]).await?;
        let (Some(mine), Some(theirs)) = (users.get(&me), users.get(&request.from)) else {
            return Err(ChatError::NotFound("friend_request"));
        };
        let conv = ConvRef::direct(me, request.from);
        let accepted =
            |user: &User| EventBody::FriendAccepted { user: user.clone(), conversation_id: conv.to_string() };
        let events = vec![
            NewEvent::now(Stream::User(request.from), accepted(mine)),
            NewEvent::now(Stream::User(me), accepted(theirs)),
        ];
        match self.store().answer_friend_request(id, me, true, events).await? {
            Answered::Accepted(conv) => Ok((theirs.clone(), conv)),
            _ => Err(ChatError::NotFound("friend_request")),
        }
    }

    /// Declines request `id` made to `me`; the asker gets `friend.declined`.
    pub async fn decline_friend(&self, me: UserId, id: i64) -> ChatResult<()> {
        let request = self.pending_request_to(me, id).await?;
        let events =
            vec![NewEvent::now(Stream::User(request.from), EventBody::FriendDeclined { request_id: id, user_id: me })];
        match self.store().answer_friend_request(id, me, false, events).await? {
            Answered::Declined => Ok(()),
            _ => Err(ChatError::NotFound("friend_request")),
        }
    }

    /// Ends a friendship; both get `friend.removed` naming the other. History stays.
    pub async fn remove_friend(&self, me: UserId, other: UserId) -> ChatResult<()> {
        let events = vec![
            NewEvent::now(Stream::User(other), EventBody::FriendRemoved { user_id: me }),
            NewEvent::now(Stream::User(me), EventBody::FriendRemoved { user_id: other }),
        ];
        if self.store().remove_friend(me, other, events).await? {
            Ok(())
        } else {
            Err(ChatError::NotFound("friend"))
        }
    }

    async fn pending_request_to(&self, me: UserId, id: i64) -> ChatResult<RequestRow> {
        self.store().friend_request(id).await?.filter(|r| r.to == me).ok_or(ChatError::NotFound("friend_request"))
    }
}

impl Chat {
    /// A user as anyone may see them (for public pictures); 404 when unknown.
    pub async fn public_user(&self, id: UserId) -> ChatResult<User> {
        self.user(id).await
    }
}
