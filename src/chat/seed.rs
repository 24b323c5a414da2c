//! Seeding for load tests: users, friendships, groups and logins created through the store
//! (never through HTTP, which stays closed to this), with their tokens handed back.

use serde::Serialize;
use tokio::task::JoinSet;

use super::accounts::{hash_token, new_token};
use super::{Chat, ChatError, ChatResult};
use crate::model::{JoinPolicy, UserId};
use crate::store::{Answered, Joined};

/// A password hash no password matches: seeded users cannot log in, only use their tokens.
const NO_PASSWORD: &str = "!seeded";

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct SeedPlan {
    /// Start of every username.
    pub prefix: String,
    /// Pairs of friends.
    pub pairs: usize,
    /// Groups.
    pub groups: usize,
    /// Members of each group, owner included.
    pub group_members: usize,
    /// Users with no contacts.
    pub idle: usize,
}

/// A seeded user's login.
#[derive(Debug, Clone, Serialize)]
pub struct Login {
    /// The user.
    pub user_id: UserId,
    /// A bearer token of a fresh device.
    pub token: String,
    /// Where the device's message connection starts.
    pub cursor: String,
}

/// A seeded group.
#[derive(Debug, Clone, Serialize)]
pub struct SeededGroup {
    /// Group id.
    pub id: i64,
    /// Members, owner first.
    pub members: Vec<Login>,
}

/// Everything seeded.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Seeded {
    /// Friends, two by two.
    pub pairs: Vec<[Login; 2]>,
    /// Groups with their members.
    pub groups: Vec<SeededGroup>,
    /// Users with no contacts.
    pub idle: Vec<Login>,
}

impl Chat {
    /// Creates what `plan` asks for; many at once, so the group commit batches them.
    pub async fn seed(&self, plan: &SeedPlan) -> ChatResult<Seeded> {
        let names =
            |kind: &str, n: usize| -> Vec<String> { (0..n).map(|i| format!("{}_{kind}{i}", plan.prefix)).collect() };
        let pair_users = self.seed_users(names("p", plan.pairs * 2)).await?;
        let mut pairs = Vec::with_capacity(plan.pairs);
        let mut tasks = JoinSet::new();
        for two in pair_users.chunks(2) {
            let (chat, a, b) = (self.clone(), two[0].user_id, two[1].user_id);
            tasks.spawn(async move { chat.seed_friendship(a, b).await });
            pairs.push([two[0].clone(), two[1].clone()]);
        }
        join_all(tasks).await?;
        let mut groups = Vec::with_capacity(plan.groups);
        for g in 0..plan.groups {
            let members = self.seed_users(names(&format!("g{g}m"), plan.group_members.max(1))).await?;
            let owner = members[0].user_id;
            let group = self
                .store()
                .create_group(owner, format!("{} group {g}", plan.prefix), JoinPolicy::Open, true, Box::new(|_| vec![]))
                .await?;
            let mut tasks = JoinSet::new();
            for m in &members[1..] {
                let (chat, user, id) = (self.clone(), m.user_id, group.id);
                tasks.spawn(async move {
                    match chat.store().add_member(id, user, usize::MAX, false, Box::new(|_| vec![])).await? {
                        Joined::Added(_) => Ok(()),
                        other => Err(ChatError::internal(format!("seeding a member failed: {other:?}"))),
                    }
                });
            }
            join_all(tasks).await?;
            groups.push(SeededGroup { id: group.id, members });
        }
        let idle = self.seed_users(names("i", plan.idle)).await?;
        Ok(Seeded { pairs, groups, idle })
    }

    async fn seed_users(&self, names: Vec<String>) -> ChatResult<Vec<Login>> {
        let mut tasks = JoinSet::new();
        for (i, name) in names.into_iter().enumerate() {
            let chat = self.clone();
            tasks.spawn(async move {
                let user = chat.store().create_user(name.clone(), name, NO_PASSWORD.into()).await?;
                let token = new_token();
                let cursor = chat.hub().head();
                chat.store().create_device(user.id, "seed".into(), hash_token(&token), cursor).await?;
                Ok::<_, ChatError>((i, Login { user_id: user.id, token, cursor: super::format_cursor(cursor) }))
            });
        }
        let mut logins: Vec<(usize, Login)> = Vec::new();
        while let Some(done) = tasks.join_next().await {
            logins.push(done.map_err(ChatError::internal)??);
        }
        logins.sort_by_key(|(i, _)| *i);
        Ok(logins.into_iter().map(|(_, l)| l).collect())
    }

    async fn seed_friendship(&self, a: UserId, b: UserId) -> ChatResult<()> {
        let request = self.store().create_friend_request(a, b, String::new(), Box::new(|_| vec![])).await?;
        match self.store().answer_friend_request(request.id, b, true, vec![]).await? {
            Answered::Accepted(_) => Ok(()),
            other => Err(ChatError::internal(format!("seeding a friendship failed: {other:?}"))),
        }
    }
}

async fn join_all(mut tasks: JoinSet<ChatResult<()>>) -> ChatResult<()> {
    while let Some(done) = tasks.join_next().await {
        done.map_err(ChatError::internal)??;
    }
    Ok(())
}
