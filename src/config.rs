//! One typed configuration: command-line flags, `WEBIM_*` variables and an optional TOML
//! file, in that order of precedence, over built-in defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

/// `webim`: a real-time web messenger over HTTP long polling.
#[derive(Debug, Parser)]
#[command(name = "webim", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The binary's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Create load-test users, friendships, groups and logins straight in the store (run it
    /// while the server is stopped) and print them, tokens included, as JSON.
    Seed(SeedArgs),
}

/// What `webim seed` creates.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Directory of the database to fill [default: ./data].
    #[arg(long, env = "WEBIM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Pairs of friends (each user with one login).
    #[arg(long, default_value_t = 0)]
    pub pairs: usize,
    /// Groups to create.
    #[arg(long, default_value_t = 0)]
    pub groups: usize,
    /// Members of each group, owner included.
    #[arg(long, default_value_t = 0)]
    pub group_members: usize,
    /// Users with a login and no contacts (for held polls).
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// Start of every seeded username, so several seeds can share a database.
    #[arg(long, default_value = "seed")]
    pub prefix: String,
}

/// Settings for `webim serve`; every one may also come from a `WEBIM_*` variable or the
/// TOML file given by `--config` (keys are the long flag names with `_` for `-`).
#[derive(Debug, Args, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below.
    #[arg(long, env = "WEBIM_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "WEBIM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the database and uploaded files [default: ./data].
    #[arg(long, env = "WEBIM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Seconds a poll is held when the client names no timeout [default: 60].
    #[arg(long, env = "WEBIM_POLL_TIMEOUT_DEFAULT")]
    pub poll_timeout_default: Option<u64>,
    /// Longest a poll may be held, in seconds, whatever the client asks [default: 90].
    #[arg(long, env = "WEBIM_POLL_TIMEOUT_MAX")]
    pub poll_timeout_max: Option<u64>,
    /// Most events in one poll answer; `more: true` says there are others [default: 500].
    #[arg(long, env = "WEBIM_POLL_BATCH_LIMIT")]
    pub poll_batch_limit: Option<usize>,
    /// Days messages and events are kept for offline devices [default: 30].
    #[arg(long, env = "WEBIM_RETENTION_DAYS")]
    pub retention_days: Option<u64>,
    /// Seconds a user stays online after their last poll ended [default: 15].
    #[arg(long, env = "WEBIM_PRESENCE_GRACE")]
    pub presence_grace: Option<u64>,
    /// Largest request body in bytes on JSON routes [default: 65536].
    #[arg(long, env = "WEBIM_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Argon2id memory cost in KiB for new passwords [default: 19456].
    #[arg(long, env = "WEBIM_ARGON2_MEMORY_KIB")]
    pub argon2_memory_kib: Option<u32>,
    /// Seconds a sender may recall their own message [default: 120].
    #[arg(long, env = "WEBIM_RECALL_WINDOW")]
    pub recall_window: Option<u64>,
    /// Most members a group may have [default: 2000].
    #[arg(long, env = "WEBIM_MAX_GROUP_MEMBERS")]
    pub max_group_members: Option<usize>,
    /// SQLite durability: `full` fsyncs each group commit, `normal` survives process kills
    /// but not power loss [default: full].
    #[arg(long, env = "WEBIM_SYNC")]
    pub sync: Option<SyncMode>,
    /// Threads serving HTTP; 1 runs everything on one thread with one queue [default: the
    /// cores this process may use].
    #[arg(long, env = "WEBIM_WORKERS")]
    pub workers: Option<usize>,
}

/// How hard the embedded store pushes commits to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync every group commit: survives power loss.
    Full,
    /// Write the WAL without fsync: survives a killed process, not a power cut.
    Normal,
}

/// The resolved settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Directory for the database and files.
    pub data_dir: PathBuf,
    /// Poll hold time when the client names none.
    pub poll_timeout_default: Duration,
    /// Upper bound on the poll hold time.
    pub poll_timeout_max: Duration,
    /// Most events in one poll answer.
    pub poll_batch_limit: usize,
    /// How long messages and events are kept.
    pub retention: Duration,
    /// How long a user stays online after their last poll.
    pub presence_grace: Duration,
    /// Largest JSON request body.
    pub body_limit: usize,
    /// Argon2id memory cost (KiB).
    pub argon2_memory_kib: u32,
    /// How long a sender may recall their own message.
    pub recall_window: Duration,
    /// Most members a group may have.
    pub max_group_members: usize,
    /// Store durability mode.
    pub sync: SyncMode,
    /// Threads serving HTTP.
    pub workers: usize,
}

impl Config {
    /// Defaults with the data directory set; what tests and embedders start from.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        ServeArgs { data_dir: Some(data_dir.into()), ..Default::default() }
            .resolve(ServeArgs::default())
            .expect("defaults are valid")
    }

    /// Reads the TOML file named by `--config` (if any) and merges it under the flags.
    pub fn load(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("Failed to read config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("Failed to parse config file {}", path.display()))?
            }
            None => ServeArgs::default(),
        };
        args.resolve(file)
    }
}

impl ServeArgs {
    fn resolve(self, file: ServeArgs) -> anyhow::Result<Config> {
        let max = self.poll_timeout_max.or(file.poll_timeout_max).unwrap_or(90);
        let default = self.poll_timeout_default.or(file.poll_timeout_default).unwrap_or(60);
        anyhow::ensure!(max >= 1, "poll_timeout_max must be at least 1 second");
        anyhow::ensure!(default >= 1 && default <= max, "poll_timeout_default must be between 1 and poll_timeout_max");
        let limit = self.poll_batch_limit.or(file.poll_batch_limit).unwrap_or(500);
        anyhow::ensure!(limit >= 1, "poll_batch_limit must be at least 1");
        let days = self.retention_days.or(file.retention_days).unwrap_or(30);
        anyhow::ensure!(days >= 1, "retention_days must be at least 1");
        Ok(Config {
            listen: self.listen.or(file.listen).unwrap_or(([127, 0, 0, 1], 8080).into()),
            data_dir: self.data_dir.or(file.data_dir).unwrap_or_else(|| "data".into()),
            poll_timeout_default: Duration::from_secs(default),
            poll_timeout_max: Duration::from_secs(max),
            poll_batch_limit: limit,
            retention: Duration::from_secs(days * 86_400),
            presence_grace: Duration::from_secs(self.presence_grace.or(file.presence_grace).unwrap_or(15)),
            body_limit: self.body_limit.or(file.body_limit).unwrap_or(64 * 1024),
            argon2_memory_kib: self.argon2_memory_kib.or(file.argon2_memory_kib).unwrap_or(19_456).max(8),
            recall_window: Duration::from_secs(self.recall_window.or(file.recall_window).unwrap_or(120)),
            max_group_members: self.max_group_members.or(file.max_group_members).unwrap_or(2000).max(2),
            sync: self.sync.or(file.sync).unwrap_or(SyncMode::Full),
            workers: match self.workers.or(file.workers) {
                Some(0) => anyhow::bail!("workers must be at least 1"),
                Some(n) => n,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let file: ServeArgs =
            toml::from_str("poll_timeout_default = 30\nretention_days = 7\nlisten = \"0.0.0.0:9000\"").unwrap();
        let flags = ServeArgs { retention_days: Some(2), ..Default::default() };
        let c = flags.resolve(file).unwrap();
        assert_eq!(c.poll_timeout_default, Duration::from_secs(30));
        assert_eq!(c.retention, Duration::from_secs(2 * 86_400));
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.poll_timeout_max, Duration::from_secs(90));
    }

    #[test]
    fn inconsistent_timeouts_are_refused() {
        let flags = ServeArgs { poll_timeout_default: Some(100), ..Default::default() };
        assert!(flags.resolve(ServeArgs::default()).is_err());
        assert!(toml::from_str::<ServeArgs>("no_such_key = 1").is_err());
        let no_workers = ServeArgs { workers: Some(0), ..Default::default() };
        assert!(no_workers.resolve(ServeArgs::default()).is_err());
    }
}
