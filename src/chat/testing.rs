//! What the crate's tests share: a service over a fresh store.

use std::sync::Arc;

use super::seed::Login;
use super::{Chat, SeedPlan};
use crate::bus::Hub;
use crate::config::Config;
use crate::store::sqlite::SqliteStore;

/// A service over a fresh store in a temporary directory with `pairs` pairs of friends
/// seeded; that directory; and what stops the service (dropping it stops it too).
pub async fn open_chat(
    tag: &str,
    pairs: usize,
) -> (Chat, Vec<[Login; 2]>, std::path::PathBuf, tokio::sync::watch::Sender<bool>) {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let config = Config::with_data_dir(std::env::temp_dir().join(format!("webim-{tag}-{}-{n}", std::process::id())));
    let hub = Arc::new(Hub::default());
    let store = SqliteStore::open(&config.data_dir, config.sync, hub.clone()).unwrap();
    let dir = config.data_dir.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let chat = Chat::with_store(Arc::new(store), hub, config, stopped).await.unwrap();
    let plan = SeedPlan { prefix: tag.into(), pairs, ..Default::default() };
    let seeded = chat.seed(&plan).await.unwrap().pairs;
    (chat, seeded, dir, stop)
}
