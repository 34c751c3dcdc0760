//! What the store keeps for a job (`jobs/{id}/job.json`); the model records it registers
//! are `abdoseg_registry`'s. The runner is the only writer of a job's record after it
//! was created, so the record is never written by two hands.

use std::time::{SystemTime, UNIX_EPOCH};

use abdoseg_model::{
    device::Device,
    train::{EpochReport, best_epoch},
};
pub use abdoseg_registry::{ClassWeighting, JobSpec, ModelRecord};
use serde::{Deserialize, Serialize};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    /// Whether the job will never change again.
    pub fn is_final(self) -> bool {
        match self {
            JobState::Queued | JobState::Running => false,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled => true,
        }
    }
}

/// A job and its progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub state: JobState,
    pub spec: JobSpec,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    pub updated_at: u64,
    /// One report per finished epoch, in order, each epoch exactly once.
    pub history: Vec<EpochReport>,
    pub model_id: Option<String>,
    pub error: Option<String>,
    pub resolved_device: Option<Device>,
    /// The class weights actually used (after `class_weighting` was applied).
    pub class_weights: Option<Vec<f32>>,
    /// Runs that ended with the process dying (found `running` at the next start)
    /// since the job last finished an epoch. At [`MAX_CRASHES`] the job fails instead of
    /// taking the process down again.
    #[serde(default)]
    pub crashes: u32,
}

/// Crashes in a row, without a finished epoch between them, after which a job is failed.
pub const MAX_CRASHES: u32 = 3;

impl JobRecord {
    pub fn new(job_id: String, spec: JobSpec) -> Self {
        let now = now();
        Self {
            job_id,
            state: JobState::Queued,
            spec,
            created_at: now,
            updated_at: now,
            history: Vec::new(),
            model_id: None,
            error: None,
            resolved_device: None,
            class_weights: None,
            crashes: 0,
        }
    }

    pub fn epochs_done(&self) -> usize {
        self.history.last().map_or(0, |r| r.epoch)
    }

    pub fn best_epoch(&self) -> Option<usize> {
        best_epoch(&self.history)
    }

    /// Moves to `state` and stamps the time.
    pub fn set_state(&mut self, state: JobState) {
        self.state = state;
        self.updated_at = now();
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A new job id that sorts by creation time: `job-{millis}-{random}`.
pub fn new_job_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("job-{millis:013}-{:08x}", rand::random::<u32>())
}

/// The model a job registers has an id derived from the job's, so that registering
/// again after a crash names the same model.
pub fn model_id_for(job_id: &str) -> String {
    format!("model-{}", job_id.trim_start_matches("job-"))
}
