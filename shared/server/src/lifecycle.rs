//! Graceful shutdown: one token that SIGTERM/SIGINT cancels, and a tracker of the
//! background work that must get a bounded grace period to finish.

use std::{future::Future, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Shared by the server and every service: who asked to stop, and what is still running.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    shutdown: CancellationToken,
    background: TaskTracker,
}

impl Lifecycle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks everything to stop.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Completes once shutdown was asked for.
    pub async fn shutdown_requested(&self) {
        self.shutdown.cancelled().await;
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// A token for background work to watch, so that it can stop at a safe point.
    pub fn token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs background work that shutdown waits for (within the grace period).
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.background.spawn(task)
    }

    /// Runs blocking background work (preprocessing, training) off the async runtime.
    pub fn spawn_blocking<F, T>(&self, task: F) -> tokio::task::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.background.spawn_blocking(task)
    }

    /// Waits up to `grace` for background work; returns whether all of it finished.
    pub async fn drain_background(&self, grace: Duration) -> bool {
        self.background.close();
        tokio::time::timeout(grace, self.background.wait())
            .await
            .is_ok()
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn wait_for_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn background_work_gets_its_grace_and_no_more() {
        let lifecycle = Lifecycle::new();
        let token = lifecycle.token();
        // Stops promptly when asked.
        lifecycle.spawn(async move { token.cancelled().await });
        lifecycle.shutdown();
        assert!(lifecycle.drain_background(Duration::from_secs(5)).await);

        let stubborn = Lifecycle::new();
        stubborn.spawn(std::future::pending::<()>());
        stubborn.shutdown();
        let started = tokio::time::Instant::now();
        assert!(!stubborn.drain_background(Duration::from_millis(50)).await);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
