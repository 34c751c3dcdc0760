//! Admission control: a bounded number of requests run, a bounded number wait, and the
//! rest are refused at once with RESOURCE_EXHAUSTED, so that a crowd of requests can
//! neither exhaust the process nor queue without end.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Running plus waiting requests of one kind.
#[derive(Debug, Clone)]
pub struct Gate {
    what: &'static str,
    slots: Arc<Semaphore>,
    pending: Arc<AtomicUsize>,
    running: usize,
    waiting: usize,
}

/// A place among the running and waiting requests; given back on drop.
#[derive(Debug)]
pub struct Ticket {
    pending: Arc<AtomicUsize>,
    slots: Arc<Semaphore>,
}

/// The gate is full.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{running} {what} are running and {waiting} waiting, the most this service takes; retry later"
)]
pub struct GateFull {
    what: &'static str,
    running: usize,
    waiting: usize,
}

impl From<GateFull> for tonic::Status {
    fn from(full: GateFull) -> Self {
        tonic::Status::resource_exhausted(full.to_string())
    }
}

impl Gate {
    /// `running` at once, `waiting` more; `what` names them in refusals ("volume uploads").
    pub fn new(what: &'static str, running: usize, waiting: usize) -> Self {
        let running = running.max(1);
        Self {
            what,
            slots: Arc::new(Semaphore::new(running)),
            pending: Arc::new(AtomicUsize::new(0)),
            running,
            waiting,
        }
    }

    /// Takes a place, or refuses when every place is taken.
    pub fn admit(&self) -> Result<Ticket, GateFull> {
        let before = self.pending.fetch_add(1, Ordering::SeqCst);
        let ticket = Ticket {
            pending: Arc::clone(&self.pending),
            slots: Arc::clone(&self.slots),
        };
        if before >= self.running + self.waiting {
            return Err(GateFull {
                what: self.what,
                running: self.running,
                waiting: self.waiting,
            });
        }
        Ok(ticket)
    }

    /// Requests running or waiting now.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

impl Ticket {
    /// Waits for a running place; hold the permit while the work runs.
    pub async fn start(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn running_and_waiting_are_bounded_and_places_come_back() {
        let gate = Gate::new("uploads", 1, 1);
        let first = gate.admit().unwrap();
        let second = gate.admit().unwrap();
        let refused = gate.admit().unwrap_err();
        assert!(refused.to_string().contains("retry later"));
        assert_eq!(
            tonic::Status::from(refused).code(),
            tonic::Code::ResourceExhausted
        );
        assert_eq!(gate.pending(), 2);
        let running = first.start().await.unwrap();
        // The second waits for the first's slot.
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), second.start());
        assert!(waiting.await.is_err());
        drop(running);
        drop(first);
        assert!(second.start().await.is_some());
        assert!(gate.admit().is_ok());
    }
}
