//! The server under test: seeding it, starting it (pinned to a core when asked) and
//! reading its CPU time and memory from /proc.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A seeded login.
#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    /// The user.
    pub user_id: i64,
    /// Bearer token.
    pub token: String,
    /// Where its message connection starts.
    pub cursor: String,
}

/// A seeded group.
#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    /// Group id.
    pub id: i64,
    /// Members, owner first.
    pub members: Vec<Login>,
}

/// What `webim seed` printed.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Seeded {
    /// Friends two by two.
    pub pairs: Vec<[Login; 2]>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Users with no contacts.
    pub idle: Vec<Login>,
}

/// A command running `bin`, pinned to core `cpu` by `taskset` when given (which execs it,
/// so the child's pid is `bin`'s).
pub fn pinned(bin: impl AsRef<std::ffi::OsStr>, cpu: Option<usize>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(bin);
            c
        }
        None => Command::new(bin),
    }
}

/// A running `webim serve`.
pub struct Server {
    child: Child,
    /// `http://host:port`.
    pub base: String,
    /// Its process id, for /proc.
    pub pid: u32,
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `webim` binary.
    pub bin: PathBuf,
    /// Its data directory (fresh per run).
    pub data_dir: PathBuf,
    /// Pin the server to this core.
    pub cpu: Option<usize>,
    /// `full` or `normal`.
    pub sync: String,
}

impl Launch {
    /// Fills the database with `webim seed` (the server must not be running).
    pub async fn seed(&self, args: &[String]) -> anyhow::Result<Seeded> {
        let out = Command::new(&self.bin).arg("seed").arg("--data-dir").arg(&self.data_dir).args(args).output().await?;
        if !out.status.success() {
            bail!("webim seed failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        serde_json::from_slice(&out.stdout).context("webim seed printed no JSON")
    }

    /// Starts `webim serve` on a free port and waits until it listens.
    pub async fn start(&self) -> anyhow::Result<Server> {
        let mut cmd = pinned(&self.bin, self.cpu);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--sync", &self.sync, "--poll-timeout-max", "90", "--data-dir"])
            .arg(&self.data_dir)
            .env("WEBIM_LOG", "webim=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("cannot start {}", self.bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return Ok(rest.trim().to_owned());
                }
            }
            bail!("the server exited before listening")
        })
        .await
        .context("the server did not listen within 60 s")??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server { child, base, pid })
    }
}

impl Server {
    /// User plus system CPU seconds the server has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid).unwrap_or(f64::NAN)
    }

    /// Resident memory in bytes.
    pub fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid).unwrap_or(0)
    }

    /// Stops the server.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// CPU seconds of a process from `/proc/PID/stat` (clock ticks are 1/100 s on Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    Some((utime + stime) / 100.0)
}

/// Resident memory of a process from `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A fresh, empty directory for a run.
pub fn fresh_dir(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
