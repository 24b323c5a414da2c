//! The `webim` binary: parse the command line, build, run.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use webim::app::{runtime, shutdown_signal, Application};
use webim::chat::{Chat, SeedPlan};
use webim::config::{Cli, Command, Config, SyncMode};

/// jemalloc keeps each size class in runs of its own, so the 8 KiB buffers hyper reserves per
/// connection take no memory until written; with glibc's malloc, which interleaves them with
/// small objects, a held poll cost 18.7 KB instead of 11.5 KB (BENCHMARKS.md).
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (`malloc_conf` in `man jemalloc`). By default
/// memory freed after a burst (thousands of polls arriving at once) stays in the process for
/// ten seconds and is given back only when something allocates again, so an idle server
/// kept it for good: 11.9 KB per held poll instead of 7.1 KB. A background thread now
/// returns it one second after it was freed.
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: MallocConf =
    MallocConf(c"background_thread:true,max_background_threads:1,dirty_decay_ms:1000".as_ptr());

/// A C string pointer with the layout of jemalloc's `const char *malloc_conf`.
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: it points to a string literal, which is never written and lives for the whole run.
unsafe impl Sync for MallocConf {}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(EnvFilter::try_from_env("WEBIM_LOG").unwrap_or_else(|_| EnvFilter::new("webim=info")))
        .init();
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = Config::load(args)?;
            runtime(config.workers)?.block_on(async {
                let app = Application::build(config).await?;
                tracing::info!("webim listening on http://{}", app.local_addr());
                app.run_until(shutdown_signal()).await
            })
        }
        Command::Seed(args) => runtime(1)?.block_on(async {
            let data_dir = args.data_dir.clone().unwrap_or_else(|| "data".into());
            let mut config = Config::with_data_dir(data_dir);
            config.sync = SyncMode::Normal;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let chat = Chat::open(config, stopped).await?;
            let plan = SeedPlan {
                prefix: args.prefix,
                pairs: args.pairs,
                groups: args.groups,
                group_members: args.group_members,
                idle: args.idle,
            };
            let seeded = chat.seed(&plan).await?;
            let _ = stop.send(true);
            serde_json::to_writer(std::io::stdout().lock(), &seeded)?;
            println!();
            Ok(())
        }),
    }
}
