//! The rules of the messenger: accounts, contacts, sending, the message connection,
//! receipts and presence. No HTTP here: every operation is a method on [`Chat`].

mod accounts;
mod contacts;
mod deliveries;
mod error;
mod groups;
mod messages;
mod poll;
mod presence;
mod profile;
mod seed;
mod tasks;
#[cfg(test)]
pub(crate) mod testing;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

pub use self::accounts::{Auth, LoggedIn};
pub use self::error::{ChatError, ChatResult};
pub use self::groups::JoinOutcome;
pub use self::messages::Target;
use self::poll::Sessions;
pub use self::poll::{format_cursor, parse_cursor, Batch};
use self::presence::Presence;
pub use self::seed::{SeedPlan, Seeded};
use crate::bus::Hub;
use crate::config::Config;
use crate::model::{User, UserId};
use crate::store::blobs::Blobs;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, UserRow};

/// The chat service: a cheap-to-clone handle over shared state.
#[derive(Clone)]
pub struct Chat {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    config: Config,
    presence: Presence,
    sessions: Sessions,
    deliveries: deliveries::Deliveries,
    tokens: accounts::TokenCache,
    blobs: Blobs,
    shutdown: watch::Receiver<bool>,
}

impl Chat {
    /// Opens the embedded store in the configured data dir, loads the router and starts the
    /// background tasks, which stop when `shutdown` turns true.
    pub async fn open(config: Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<Self> {
        let hub = Arc::new(Hub::default());
        let store = SqliteStore::open(&config.data_dir, config.sync, hub.clone())?;
        Self::with_store(Arc::new(store), hub, config, shutdown).await
    }

    /// Builds the service over any store whose commits feed `hub`.
    pub async fn with_store(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        config: Config,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        hub.load(store.snapshot().await?);
        let blobs = Blobs::new(config.data_dir.join("avatars"));
        let chat = Chat {
            inner: Arc::new(Inner {
                store,
                hub,
                config,
                presence: Presence::default(),
                sessions: Sessions::default(),
                deliveries: Default::default(),
                tokens: accounts::TokenCache::default(),
                blobs,
                shutdown,
            }),
        };
        tasks::spawn_all(&chat);
        Ok(chat)
    }

    /// The settings the service runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Saves what is only in memory (acknowledged cursors, queued delivery receipts); call
    /// after shutdown began.
    pub async fn flush(&self) {
        self.flush_deliveries().await;
        self.flush_acks().await;
    }

    fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The public view of a user row.
    fn user_view(&self, row: &UserRow) -> User {
        User {
            id: row.id,
            username: row.username.clone(),
            display_name: row.display_name.clone(),
            avatar_url: crate::model::user_avatar_url(row.id, row.avatar.as_deref()),
            online: self.inner.presence.is_online(row.id),
        }
    }

    /// The public views of the given users, by id; unknown ids are left out.
    async fn users_map(&self, ids: &[UserId]) -> ChatResult<HashMap<UserId, User>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(self.store().users_by_ids(&ids).await?.iter().map(|r| (r.id, self.user_view(r))).collect())
    }

    /// One user by id, or 404.
    async fn user(&self, id: i64) -> ChatResult<User> {
        let rows = self.store().users_by_ids(&[id]).await?;
        rows.first().map(|r| self.user_view(r)).ok_or(ChatError::NotFound("user"))
    }
}
