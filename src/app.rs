//! Wires the pieces into a running server: store, router, HTTP listener, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use crate::chat::Chat;
use crate::config::Config;
use crate::one_send::OneSend;

/// A server bound to its address and ready to run.
pub struct Application {
    listener: TcpListener,
    chat: Chat,
    shutdown: watch::Sender<bool>,
}

impl Application {
    /// Opens the store and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let (shutdown, stop) = watch::channel(false);
        let listen = config.listen;
        let chat = Chat::open(config, stop).await.context("Failed to open the store")?;
        let listener = bind(listen).with_context(|| format!("Failed to listen on {listen}"))?;
        Ok(Application { listener, chat, shutdown })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The chat service, for embedding and tests.
    pub fn chat(&self) -> &Chat {
        &self.chat
    }

    /// Serves until `signal` completes; then held polls answer at once, requests in flight
    /// finish, and in-memory state is saved.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, chat, shutdown } = self;
        let app = crate::http::api(chat.clone());
        let stop = async move {
            signal.await;
            tracing::info!("shutting down: answering held polls");
            let _ = shutdown.send(true);
        };
        serve(listener, app, stop).await?;
        chat.flush().await;
        Ok(())
    }
}

/// Of the ready tasks, how often a one-thread runtime takes the next from its queue of
/// wake-ups from other threads rather than from its own (tokio's default: 1 in 31). Those
/// are finished work coming back (the commit task, store reads); at 1 in 31, a burst of
/// polls reading the store waited seconds behind newly arrived requests.
const FOREIGN_WAKE_INTERVAL: u32 = 4;

/// The runtime the server runs on, with `workers` threads serving HTTP.
///
/// One worker gets a one-thread runtime, not a multi-thread one with one worker: the latter
/// keeps at most 256 ready tasks in the worker's own queue and moves the rest to a shared
/// queue that a busy worker serves only every few dozen tasks. With thousands of
/// connections ready at once (a server saturated on one core), the connections that landed
/// there waited for seconds while newer ones were read first (BENCHMARKS.md, seventh
/// measurement). A one-thread runtime's own queue has no bound and serves in order.
pub fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if workers <= 1 {
        let mut b = tokio::runtime::Builder::new_current_thread();
        b.global_queue_interval(FOREIGN_WAKE_INTERVAL);
        b
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    builder.enable_all().build()
}

/// Connections the kernel completes and queues while the server has not yet accepted them.
/// After a restart, every open browser reconnects at once; with the 128 that
/// `TcpListener::bind` asks for, a burst of a few thousand overflows the queue and the
/// dropped handshakes are retried only after a second or more. The kernel caps it at
/// `net.core.somaxconn` (4,096 by default).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` as `TcpListener::bind` does (address reuse on), with a longer queue.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As std does: on Windows the same option would let another program take the port.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts connections and serves HTTP/1.1 on each until `stop`, then lets them finish.
///
/// Hand-rolled rather than `axum::serve` because that one builds every connection with
/// hyper-util's HTTP/1-or-2 auto builder, whose per-connection task is far larger than a
/// plain HTTP/1 connection's: with tens of thousands of held polls, that size is the
/// server's memory.
async fn serve(listener: TcpListener, app: crate::http::Api, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Small answers must leave at once: latency is the product.
        let _ = tcp.set_nodelay(true);
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(OneSend(tcp)), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    // Held polls have been told to answer; give requests in flight a bounded time.
    if tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown()).await.is_err() {
        tracing::warn!("some connections were still open after 30 s; closing");
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    use super::runtime;

    #[test]
    fn one_worker_gets_a_one_thread_runtime_and_more_get_a_pool() {
        assert_eq!(runtime(1).unwrap().handle().runtime_flavor(), RuntimeFlavor::CurrentThread);
        let pool = runtime(3).unwrap();
        assert_eq!(pool.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
        assert_eq!(pool.metrics().num_workers(), 3);
    }
}
