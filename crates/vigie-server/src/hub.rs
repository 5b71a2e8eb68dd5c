//! The hub: live fan-out of "something changed" to open pages and streams.
//!
//! Writers publish a [`Change`] after their commit; every SSE stream subscribed to the hub
//! wakes and sends fresh data. The channel is a broadcast with a small buffer: a slow browser
//! that falls behind skips to the latest state instead of holding memory. The hub also carries
//! the shutdown signal, so live streams end and Ctrl-C does not wait on open browser tabs.

use tokio::sync::{broadcast, watch};

/// What changed, so a stream can ignore what it does not show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Projects,
    Users,
    Tokens,
}

#[derive(Clone)]
pub struct Hub {
    changes: broadcast::Sender<Change>,
    shutdown: watch::Receiver<bool>,
}

impl Hub {
    /// A hub, and the sender that tells it the server is shutting down.
    pub fn new() -> (Hub, watch::Sender<bool>) {
        let (changes, _) = broadcast::channel(64);
        let (stop, shutdown) = watch::channel(false);
        (Hub { changes, shutdown }, stop)
    }

    pub fn publish(&self, change: Change) {
        // No subscriber is not an error: nobody is watching right now.
        let _ = self.changes.send(change);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Resolves when the server starts shutting down.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
