//! The training service: U-Net training jobs that run off the request path, survive
//! restarts through checkpoints in the store, and register the models they produce.
//!
//! - [`convert`]: the contract's messages to and from the records.
//! - [`record`]: what the store keeps for jobs and models.
//! - [`jobs`]: the queue (configured concurrency), live events, recovery after restart.
//! - [`runner`]: one job's run, checkpoint by checkpoint, and the model registration.

mod convert;
mod data;
mod error;
mod grpc;
mod jobs;
pub mod record;
mod runner;

use std::sync::Arc;

use abdoseg_protos::training::v1::training_service_server::TrainingServiceServer;
use abdoseg_server::{Lifecycle, MemoryBudget, ServiceRegistration};
use abdoseg_storage::Storage;

pub use error::Error;
use jobs::Jobs;

/// The service's state: the store that holds jobs and models, and the job queue.
#[derive(Debug, Clone)]
pub struct TrainingService {
    storage: Storage,
    jobs: Arc<Jobs>,
    /// The process's memory budget: a job reserves its estimate before it trains.
    budget: MemoryBudget,
}

impl TrainingService {
    /// `concurrency`: how many jobs train at once; the others wait in order.
    pub fn new(storage: Storage, lifecycle: Lifecycle, concurrency: usize) -> Self {
        let budget = MemoryBudget::detect();
        Self {
            jobs: Jobs::new(storage.clone(), lifecycle, concurrency, budget.clone()),
            storage,
            budget,
        }
    }

    /// The process's memory budget, shared with the other services of the process.
    pub fn with_budget(mut self, budget: MemoryBudget) -> Self {
        self.jobs = Jobs::new(
            self.storage.clone(),
            self.jobs.lifecycle.clone(),
            self.jobs.concurrency(),
            budget.clone(),
        );
        self.budget = budget;
        self
    }

    /// The tonic server with its message limits, ready for a host. Jobs a previous
    /// process left queued or running are picked up again in the background.
    pub fn registration(self, max_message_bytes: usize) -> ServiceRegistration {
        let jobs = Arc::clone(&self.jobs);
        self.jobs.lifecycle.spawn(async move {
            match jobs.recover().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "resuming unfinished training jobs"),
                Err(error) => tracing::error!(%error, "cannot look for unfinished jobs"),
            }
        });
        ServiceRegistration::new(
            TrainingServiceServer::new(self)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
    }
}
