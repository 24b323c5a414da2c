//! Wires the pieces into a running server: store, router, HTTP listener, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::chat::Chat;
use crate::config::Config;

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
        let listener = TcpListener::bind(listen).await.with_context(|| format!("Failed to listen on {listen}"))?;
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
        let app = crate::http::router(chat.clone());
        let listener = listener.tap_io(|tcp| {
            // Small answers must leave at once: latency is the product.
            let _ = tcp.set_nodelay(true);
        });
        let stop = async move {
            signal.await;
            tracing::info!("shutting down: answering held polls");
            let _ = shutdown.send(true);
        };
        axum::serve(listener, app).with_graceful_shutdown(stop).await.context("server failed")?;
        chat.flush().await;
        Ok(())
    }
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
