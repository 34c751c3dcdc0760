//! The job queue: jobs wait for one of `concurrency` slots, run off the async runtime,
//! publish their events to watchers, and are picked up again after a restart.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use abdoseg_model::train::EpochReport;
use abdoseg_server::{Lifecycle, MemoryBudget};
use abdoseg_storage::{Id, Storage, keys::JobKeys};
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    record::{JobRecord, JobState},
    runner,
};

/// Something that happened to a job.
#[derive(Debug, Clone)]
pub enum Event {
    State(JobState),
    Batch {
        epoch: usize,
        batch: usize,
        batches: usize,
        loss: f64,
    },
    Epoch(Box<EpochReport>),
    Checkpoint {
        epoch: usize,
        key: String,
    },
    Finished {
        model_id: String,
        best_epoch: usize,
    },
    Failed(String),
    Cancelled,
    /// The server is stopping: the job stops at its last checkpoint and resumes when the
    /// service starts again.
    Paused,
}

impl Event {
    /// Whether nothing follows this event.
    pub fn is_last(&self) -> bool {
        matches!(
            self,
            Event::Finished { .. } | Event::Failed(_) | Event::Cancelled | Event::Paused
        )
    }
}

/// A job this process is queueing or running.
#[derive(Debug, Clone)]
pub struct LiveJob {
    pub events: broadcast::Sender<Event>,
    pub cancel: CancellationToken,
}

/// The jobs of this process.
#[derive(Debug)]
pub struct Jobs {
    pub storage: Storage,
    pub lifecycle: Lifecycle,
    /// The process's memory budget: a job holds its estimate while it trains.
    pub budget: MemoryBudget,
    concurrency: usize,
    slots: Arc<Semaphore>,
    live: Mutex<HashMap<String, LiveJob>>,
}

impl Jobs {
    pub fn new(
        storage: Storage,
        lifecycle: Lifecycle,
        concurrency: usize,
        budget: MemoryBudget,
    ) -> Arc<Self> {
        Arc::new(Self {
            storage,
            lifecycle,
            budget,
            concurrency: concurrency.max(1),
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            live: Mutex::new(HashMap::new()),
        })
    }

    /// Jobs that train at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The live job with this id, if this process queues or runs it.
    pub fn live(&self, job_id: &str) -> Option<LiveJob> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(job_id)
            .cloned()
    }

    /// Queues a job whose record is in the store.
    pub fn enqueue(self: &Arc<Self>, job_id: String) {
        let live = LiveJob {
            events: broadcast::channel(1024).0,
            cancel: self.lifecycle.token().child_token(),
        };
        {
            let mut map = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            if map.contains_key(&job_id) {
                return;
            }
            map.insert(job_id.clone(), live.clone());
        }
        let jobs = Arc::clone(self);
        self.lifecycle.spawn(async move {
            jobs.run(&job_id, &live).await;
            jobs.live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&job_id);
        });
    }

    /// Requeues every job a previous process left queued or running, oldest first.
    pub async fn recover(self: &Arc<Self>) -> Result<usize, Error> {
        let mut ids = self.storage.list_children(&JobKeys::all()).await?;
        ids.sort();
        let mut requeued = 0;
        for id in ids {
            let Ok(parsed) = Id::parse(&id) else { continue };
            let record: JobRecord =
                match self.storage.get_json(&JobKeys::new(&parsed).state()).await {
                    Ok(record) => record,
                    Err(error) => {
                        tracing::warn!(job = %id, %error, "skipping an unreadable job record");
                        continue;
                    }
                };
            if !record.state.is_final() {
                tracing::info!(job = %id, epochs_done = record.epochs_done(), "resuming job");
                self.enqueue(id);
                requeued += 1;
            }
        }
        Ok(requeued)
    }

    async fn run(self: &Arc<Self>, job_id: &str, live: &LiveJob) {
        let slot = tokio::select! {
            slot = Arc::clone(&self.slots).acquire_owned() => slot,
            () = live.cancel.cancelled() => {
                self.settle(job_id, live, Err(runner::Stop)).await;
                return;
            }
        };
        let Ok(_slot) = slot else { return };
        let outcome = runner::run(Arc::clone(self), job_id.to_owned(), live.clone()).await;
        self.settle(job_id, live, outcome).await;
    }

    /// Records how a run ended: finished and failed runs say so; a stop is a cancellation
    /// when the job was cancelled, and leaves the job to resume when the process stops.
    async fn settle(&self, job_id: &str, live: &LiveJob, outcome: Result<(), runner::Stop>) {
        let cancelled = live.cancel.is_cancelled() && !self.lifecycle.is_shutting_down();
        match outcome {
            Ok(()) => {}
            Err(runner::Stop) if cancelled => {
                if let Err(error) = self
                    .update(job_id, |record| {
                        if !record.state.is_final() {
                            record.set_state(JobState::Cancelled);
                        }
                    })
                    .await
                {
                    tracing::error!(job = %job_id, %error, "cannot record the cancellation");
                }
                let _ = live.events.send(Event::Cancelled);
            }
            Err(runner::Stop) => {
                // Queued again, so that the next start knows this stop was orderly and
                // does not count it as a crash.
                if let Err(error) = self
                    .update(job_id, |record| {
                        if record.state == JobState::Running {
                            record.set_state(JobState::Queued);
                        }
                    })
                    .await
                {
                    tracing::warn!(job = %job_id, %error, "cannot record the pause");
                }
                let _ = live.events.send(Event::Paused);
                tracing::info!(job = %job_id, "job paused by shutdown; it resumes on restart");
            }
        }
    }

    /// Reads, changes and writes back a job's record.
    pub async fn update(
        &self,
        job_id: &str,
        change: impl FnOnce(&mut JobRecord),
    ) -> Result<JobRecord, Error> {
        let key = JobKeys::new(&Id::parse(job_id)?).state();
        let mut record: JobRecord = self.storage.get_json(&key).await?;
        change(&mut record);
        self.storage.put_json(&key, &record).await?;
        Ok(record)
    }
}
