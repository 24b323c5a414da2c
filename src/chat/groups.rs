//! Groups: creating, finding, joining (open or by approval), roles, membership changes,
//! renaming and dissolving. Every change is an event to the members it concerns.

use super::{Chat, ChatError, ChatResult};
use crate::model::{ConvId, ConvRef, EventBody, Group, JoinPolicy, Member, NewEvent, Role, Stream, User, UserId};
use crate::store::{GroupChanges, Joined};

/// Most groups one search returns.
pub const GROUP_SEARCH_LIMIT: usize = 50;

/// What a join did.
#[derive(Debug, Clone)]
pub enum JoinOutcome {
    /// The caller is a member now.
    Joined(Group),
    /// The group needs approval: a request was made.
    Requested(Group),
}

/// Checks a group name: 1–64 characters once trimmed.
fn group_name(raw: &str) -> ChatResult<String> {
    let name = raw.trim();
    let n = name.chars().count();
    if (1..=64).contains(&n) && !name.chars().any(char::is_control) {
        Ok(name.to_owned())
    } else {
        Err(ChatError::invalid("invalid_name", "group name must be 1 to 64 characters"))
    }
}

impl Chat {
    /// Creates a group owned by `me`; it appears in the owner's conversations at once.
    pub async fn create_group(
        &self,
        me: UserId,
        name: &str,
        policy: JoinPolicy,
        history_visible: bool,
    ) -> ChatResult<Group> {
        let name = group_name(name)?;
        let events = Box::new(move |g: &Group| {
            vec![NewEvent::now(Stream::User(me), EventBody::GroupUpdated { group: g.clone() })]
        });
        Ok(self.store().create_group(me, name, policy, history_visible, events).await?)
    }

    /// Groups whose name contains `q`, prefix matches first.
    pub async fn search_groups(&self, q: &str, offset: usize) -> ChatResult<Vec<Group>> {
        let q = search_text(q)?;
        Ok(self.store().search_groups(&q, offset, GROUP_SEARCH_LIMIT).await?)
    }

    /// A group by id.
    pub async fn group(&self, id: i64) -> ChatResult<Group> {
        self.store().group(id).await?.ok_or(ChatError::NotFound("group"))
    }

    /// The groups `me` belongs to.
    pub async fn my_groups(&self, me: UserId) -> ChatResult<Vec<Group>> {
        Ok(self.store().groups_of(me).await?)
    }

    /// Members with roles and presence; members only.
    pub async fn members(&self, me: UserId, id: i64) -> ChatResult<Vec<Member>> {
        self.role_at_least(me, id, Role::Member).await?;
        let rows = self.store().members(id).await?;
        Ok(rows.iter().map(|(u, role)| Member { user: self.user_view(u), role: *role }).collect())
    }

    /// Joins an open group at once, or asks to join an approval group (its owner and
    /// admins get `group.join_request`).
    pub async fn join_group(&self, me: UserId, id: i64) -> ChatResult<JoinOutcome> {
        let group = self.group(id).await?;
        if self.store().role(id, me).await?.is_some() {
            return Err(ChatError::conflict("already_member", "you are in this group already"));
        }
        if group.join_policy == JoinPolicy::Approval {
            let user = self.user(me).await?;
            let managers = self.store().members(id).await?;
            let events = managers
                .iter()
                .filter(|(_, role)| role.manages())
                .map(|(m, _)| {
                    NewEvent::now(Stream::User(m.id), EventBody::GroupJoinRequest { group_id: id, user: user.clone() })
                })
                .collect();
            if !self.store().request_join(id, me, events).await? {
                return Err(ChatError::conflict("request_pending", "your request to join is already pending"));
            }
            return Ok(JoinOutcome::Requested(group));
        }
        self.admit(id, me, false).await.map(JoinOutcome::Joined)
    }

    /// Leaves a group; the owner must hand the group over first.
    pub async fn leave_group(&self, me: UserId, id: i64) -> ChatResult<()> {
        match self.role_at_least(me, id, Role::Member).await? {
            Role::Owner => Err(ChatError::conflict(
                "owner_cannot_leave",
                "transfer the ownership (or dissolve the group) before leaving",
            )),
            _ => self.expel(id, me).await,
        }
    }

    /// An owner or admin adds `user`.
    pub async fn add_member(&self, me: UserId, id: i64, user: UserId) -> ChatResult<Group> {
        self.role_at_least(me, id, Role::Admin).await?;
        self.user(user).await?;
        self.admit(id, user, false).await
    }

    /// An owner or admin removes `user`; admins can remove plain members only.
    pub async fn remove_member(&self, me: UserId, id: i64, user: UserId) -> ChatResult<()> {
        let mine = self.role_at_least(me, id, Role::Admin).await?;
        if user == me {
            return self.leave_group(me, id).await;
        }
        let theirs = self.store().role(id, user).await?.ok_or(ChatError::NotFound("member"))?;
        if theirs >= mine {
            return Err(ChatError::forbidden("not_allowed", "you can only remove members whose role is below yours"));
        }
        self.expel(id, user).await
    }

    /// The owner makes a member an admin or an admin a member.
    pub async fn set_role(&self, me: UserId, id: i64, user: UserId, role: Role) -> ChatResult<()> {
        self.role_at_least(me, id, Role::Owner).await?;
        if role == Role::Owner {
            return Err(ChatError::invalid("invalid_role", "use the transfer route to make someone the owner"));
        }
        if user == me {
            return Err(ChatError::invalid("invalid_user_id", "the owner's role changes only by transfer"));
        }
        let conv = self.group_conv(id)?;
        let event = NewEvent::now(Stream::Conv(conv), EventBody::GroupMemberRole { group_id: id, user_id: user, role });
        if self.store().set_role(id, user, role, vec![event]).await? {
            Ok(())
        } else {
            Err(ChatError::NotFound("member"))
        }
    }

    /// The owner hands the group to another member and becomes an admin.
    pub async fn transfer_group(&self, me: UserId, id: i64, to: UserId) -> ChatResult<Group> {
        self.role_at_least(me, id, Role::Owner).await?;
        if to == me {
            return Err(ChatError::invalid("invalid_user_id", "you own this group already"));
        }
        let conv = self.group_conv(id)?;
        let events = Box::new(move |g: &Group| {
            let role = |user_id, role| {
                NewEvent::now(Stream::Conv(conv), EventBody::GroupMemberRole { group_id: g.id, user_id, role })
            };
            vec![
                role(to, Role::Owner),
                role(me, Role::Admin),
                NewEvent::now(Stream::Conv(conv), EventBody::GroupUpdated { group: g.clone() }),
            ]
        });
        if self.store().transfer_owner(id, me, to, events).await? {
            self.group(id).await
        } else {
            Err(ChatError::NotFound("member"))
        }
    }

    /// An owner or admin renames the group or changes its policies.
    pub async fn update_group(&self, me: UserId, id: i64, mut changes: GroupChanges) -> ChatResult<Group> {
        self.role_at_least(me, id, Role::Admin).await?;
        changes.name = changes.name.as_deref().map(group_name).transpose()?;
        self.apply_group_changes(id, changes).await
    }

    /// Stores group changes and tells every member.
    pub(super) async fn apply_group_changes(&self, id: i64, changes: GroupChanges) -> ChatResult<Group> {
        let conv = self.group_conv(id)?;
        let events = Box::new(move |g: &Group| {
            vec![NewEvent::now(Stream::Conv(conv), EventBody::GroupUpdated { group: g.clone() })]
        });
        self.store().update_group(id, changes, events).await?.ok_or(ChatError::NotFound("group"))
    }

    /// The owner dissolves the group: every member gets `group.dissolved` and loses access.
    pub async fn dissolve_group(&self, me: UserId, id: i64) -> ChatResult<()> {
        self.role_at_least(me, id, Role::Owner).await?;
        let conv = self.group_conv(id)?;
        let event = NewEvent::now(Stream::Conv(conv), EventBody::GroupDissolved { group_id: id });
        if self.store().dissolve_group(id, vec![event]).await? {
            Ok(())
        } else {
            Err(ChatError::NotFound("group"))
        }
    }

    /// Pending join requests; owners and admins only.
    pub async fn join_requests(&self, me: UserId, id: i64) -> ChatResult<Vec<(User, i64)>> {
        self.role_at_least(me, id, Role::Admin).await?;
        Ok(self.store().join_requests(id).await?.iter().map(|(u, ts)| (self.user_view(u), *ts)).collect())
    }

    /// An owner or admin accepts `user`'s request to join.
    pub async fn accept_join(&self, me: UserId, id: i64, user: UserId) -> ChatResult<Group> {
        self.role_at_least(me, id, Role::Admin).await?;
        self.admit(id, user, true).await
    }

    /// An owner or admin declines `user`'s request; the asker gets `group.join_declined`.
    pub async fn decline_join(&self, me: UserId, id: i64, user: UserId) -> ChatResult<()> {
        self.role_at_least(me, id, Role::Admin).await?;
        let event = NewEvent::now(Stream::User(user), EventBody::GroupJoinDeclined { group_id: id });
        if self.store().decline_join(id, user, vec![event]).await? {
            Ok(())
        } else {
            Err(ChatError::NotFound("join_request"))
        }
    }

    /// Adds a member and tells everyone in the group, the newcomer included.
    async fn admit(&self, id: i64, user: UserId, via_request: bool) -> ChatResult<Group> {
        let conv = self.group_conv(id)?;
        let joiner = self.user(user).await?;
        let events = Box::new(move |g: &Group| {
            vec![NewEvent::now(
                Stream::Conv(conv),
                EventBody::GroupMemberJoined { group_id: g.id, user: joiner, group: g.clone() },
            )]
        });
        match self.store().add_member(id, user, self.config().max_group_members, via_request, events).await? {
            Joined::Added(group) => Ok(group),
            Joined::AlreadyMember => Err(ChatError::conflict("already_member", "already in this group")),
            Joined::Full => Err(ChatError::conflict(
                "group_full",
                format!("this group has reached its limit of {} members", self.config().max_group_members),
            )),
            Joined::NoGroup => Err(ChatError::NotFound("group")),
            Joined::NoRequest => Err(ChatError::NotFound("join_request")),
        }
    }

    /// Removes a member; they get `group.member_left` too, and nothing after it.
    async fn expel(&self, id: i64, user: UserId) -> ChatResult<()> {
        let conv = self.group_conv(id)?;
        let events = Box::new(move |g: &Group| {
            vec![NewEvent::now(
                Stream::Conv(conv),
                EventBody::GroupMemberLeft { group_id: g.id, user_id: user, group: g.clone() },
            )]
        });
        self.store().remove_member(id, user, events).await?.map(|_| ()).ok_or(ChatError::NotFound("member"))
    }

    /// The caller's role, if at least `least`: 404 for no group, 403 `not_member` or
    /// `not_allowed` otherwise.
    pub(super) async fn role_at_least(&self, me: UserId, id: i64, least: Role) -> ChatResult<Role> {
        self.group(id).await?;
        match self.store().role(id, me).await? {
            None => Err(ChatError::forbidden("not_member", "you are not a member of this group")),
            Some(role) if role < least => Err(ChatError::forbidden(
                "not_allowed",
                format!(
                    "only the group's {} may do this",
                    if least == Role::Owner { "owner" } else { "owner or admins" }
                ),
            )),
            Some(role) => Ok(role),
        }
    }

    fn group_conv(&self, id: i64) -> ChatResult<ConvId> {
        self.hub().conv_id(ConvRef::Group(id)).ok_or(ChatError::NotFound("group"))
    }
}

/// Lower-cases and checks search text: 1–64 characters.
pub(super) fn search_text(q: &str) -> ChatResult<String> {
    let q = q.trim().to_lowercase();
    if q.is_empty() || q.chars().count() > 64 {
        return Err(ChatError::invalid("invalid_query", "search text must be 1 to 64 characters"));
    }
    Ok(q)
}
