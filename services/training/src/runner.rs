//! One job's run: resolve the device, load the slices, resume from the last checkpoint,
//! train epoch by epoch (checkpoint, then the record), register the best epoch's model.
//!
//! Order of writes per epoch: the checkpoint's model and optimizer, its state (which
//! marks it complete), then the job record with the epoch appended. A kill between any
//! two leaves a record whose last epoch has a complete checkpoint, so a restart redoes
//! at most the epoch in flight and the history never has a gap or a repeat.

use std::sync::Arc;

use abdoseg_dataset::manifest::{Manifest, Split};
use abdoseg_model::{
    device::{CpuBackend, Device},
    train::{Checkpoint, Trainer, TrainingSlice, evaluate, should_stop},
};
use abdoseg_storage::{
    Id, Key,
    keys::{JobKeys, ModelKeys},
};
use burn::{backend::Autodiff, module::Module, tensor::backend::AutodiffBackend};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use crate::{
    Error, data,
    jobs::{Event, Jobs, LiveJob},
    record::{ClassWeighting, JobRecord, JobState, MAX_CRASHES, ModelRecord, model_id_for, now},
};

/// Longest a job waits for memory that other work holds before it fails.
const MEMORY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The run stopped before its end: cancelled, or the process is shutting down.
#[derive(Debug)]
pub struct Stop;

enum Outcome {
    Trained(Box<JobRecord>),
    Stopped,
}

/// What a checkpoint's `state.json` says (the RNG streams derive from seed and epoch).
#[derive(Debug, Serialize, Deserialize)]
struct CheckpointState {
    epoch: usize,
    seed: u64,
    mean_foreground_validation_iou: f64,
}

/// Runs a job to its end or until it is stopped; failures are recorded on the job.
pub async fn run(jobs: Arc<Jobs>, job_id: String, live: LiveJob) -> Result<(), Stop> {
    match run_job(&jobs, &job_id, &live).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Stop),
        Err(error) => {
            let message = error.to_string();
            tracing::error!(job = %job_id, error = %message, "training job failed");
            let failed = jobs
                .update(&job_id, |record| {
                    record.error = Some(message.clone());
                    record.set_state(JobState::Failed);
                })
                .await;
            if let Err(error) = failed {
                tracing::error!(job = %job_id, %error, "cannot record the failure");
            }
            let _ = live.events.send(Event::Failed(message));
            Ok(())
        }
    }
}

/// `Ok(true)`: the job reached a final state; `Ok(false)`: it was stopped.
async fn run_job(jobs: &Arc<Jobs>, job_id: &str, live: &LiveJob) -> Result<bool, Error> {
    let storage = &jobs.storage;
    let key = JobKeys::new(&Id::parse(job_id)?).state();
    let mut record: JobRecord = storage.get_json(&key).await?;
    if record.state.is_final() {
        return Ok(true);
    }
    // Found running: the process that ran it died (an orderly stop queues it again).
    if record.state == JobState::Running {
        record.crashes += 1;
        tracing::warn!(job = %job_id, crashes = record.crashes, "the job's last run ended with the process");
    }
    if record.crashes >= MAX_CRASHES {
        return Err(Error::FailedPrecondition(format!(
            "the job's runs ended with the process {} times in a row without finishing an \
             epoch; it is not retried (lower batch_size, base_filters or slices_per_epoch)",
            record.crashes
        )));
    }
    let (device, note) = record
        .spec
        .device
        .resolve()
        .map_err(|e| Error::FailedPrecondition(e.to_string()))?;
    if let Some(note) = note {
        tracing::info!(job = %job_id, "{note}");
    }
    let datasets = data::JobDatasets::read(storage, &record.spec).await?;
    let manifest = &datasets.main;
    record.class_weights = match record.spec.class_weighting {
        ClassWeighting::None => None,
        ClassWeighting::InverseSqrtFrequency => {
            Some(data::inverse_sqrt_frequency(datasets.training_cases()).to_vec())
        }
        ClassWeighting::Manual => record.spec.training.class_weights.map(|w| w.to_vec()),
    };
    // The job's memory is reserved before anything is loaded; it waits while other
    // work holds it.
    let (h, w) = (
        manifest.preprocessing.slice_height,
        manifest.preprocessing.slice_width,
    );
    let context = record.spec.training.context;
    let peak = datasets.bytes(&context) + record.spec.training.peak_bytes(h, w);
    let _reservation = tokio::select! {
        reservation = jobs.budget.reserve(peak, MEMORY_PATIENCE) => {
            reservation.map_err(|e| Error::FailedPrecondition(e.to_string()))?
        }
        () = live.cancel.cancelled() => return Ok(false),
    };
    record.resolved_device = Some(device);
    record.set_state(JobState::Running);
    storage.put_json(&key, &record).await?;
    let _ = live.events.send(Event::State(JobState::Running));

    let mut train = data::slices(storage, manifest, &[Split::Train], context).await?;
    for extra in &datasets.extra_training {
        train.extend(data::slices(storage, extra, data::ALL_SPLITS, context).await?);
    }
    let validation = data::slices(storage, manifest, &[Split::Validation], context).await?;
    let real_validation = match &datasets.real_validation {
        Some(real) => data::slices(storage, real, data::ALL_SPLITS, context).await?,
        None => Vec::new(),
    };
    if validation.is_empty() {
        return Err(Error::FailedPrecondition(
            "the dataset has no validation cases to choose the best epoch on".into(),
        ));
    }
    let context = Context {
        jobs: Arc::clone(jobs),
        live: live.clone(),
        handle: Handle::current(),
        train,
        validation,
        real_validation,
    };
    let outcome = tokio::task::spawn_blocking(move || match device {
        Device::Cpu => train_epochs::<Autodiff<CpuBackend>>(&context, record, &Default::default()),
        Device::Cuda => train_on_cuda(&context, record),
    })
    .await
    .map_err(|e| Error::Internal(format!("training crashed: {e}")))??;
    match outcome {
        Outcome::Stopped => Ok(false),
        Outcome::Trained(record) => {
            register(jobs, live, *record, manifest).await?;
            Ok(true)
        }
    }
}

#[cfg(feature = "cuda")]
fn train_on_cuda(context: &Context, record: JobRecord) -> Result<Outcome, Error> {
    use abdoseg_model::device::CudaBackend;
    train_epochs::<Autodiff<CudaBackend>>(context, record, &Default::default())
}

#[cfg(not(feature = "cuda"))]
fn train_on_cuda(_context: &Context, _record: JobRecord) -> Result<Outcome, Error> {
    Err(Error::FailedPrecondition(
        abdoseg_model::device::DeviceError::NotBuilt.to_string(),
    ))
}

struct Context {
    jobs: Arc<Jobs>,
    live: LiveJob,
    handle: Handle,
    train: Vec<TrainingSlice>,
    validation: Vec<TrainingSlice>,
    /// Every slice of the real validation dataset; empty without one.
    real_validation: Vec<TrainingSlice>,
}

/// The epochs, on a blocking thread; store writes go through the runtime's handle.
fn train_epochs<B: AutodiffBackend>(
    context: &Context,
    mut record: JobRecord,
    device: &B::Device,
) -> Result<Outcome, Error> {
    let storage = &context.jobs.storage;
    let job_keys = JobKeys::new(&Id::parse(&record.job_id)?);
    let mut config = record.spec.training.clone();
    config.class_weights = record
        .class_weights
        .as_deref()
        .and_then(|w| w.try_into().ok());
    let mut trainer =
        Trainer::<B>::new(&config, &context.train, device).map_err(Error::FailedPrecondition)?;
    let done = record.epochs_done();
    if done > 0 {
        let keys = job_keys.checkpoint(done as u32);
        let checkpoint = context.handle.block_on(async {
            Ok::<_, Error>(Checkpoint {
                epochs_done: done,
                model: storage.get(&keys.model()).await?.to_vec(),
                optimizer: storage.get(&keys.optimizer()).await?.to_vec(),
            })
        })?;
        trainer
            .restore(&checkpoint)
            .map_err(|e| Error::Internal(format!("checkpoint of epoch {done}: {e}")))?;
        tracing::info!(job = %record.job_id, epoch = done, "resumed from checkpoint");
    }
    while !should_stop(&config, &record.history) {
        let epoch = trainer.epochs_done() + 1;
        let events = &context.live.events;
        let report = trainer.run_epoch(
            &context.train,
            &context.validation,
            |batch, batches, loss| {
                let _ = events.send(Event::Batch {
                    epoch,
                    batch,
                    batches,
                    loss,
                });
            },
            || context.live.cancel.is_cancelled(),
        );
        let Some(mut report) = report else {
            return Ok(Outcome::Stopped);
        };
        if !context.real_validation.is_empty() {
            let (_, overlap) =
                evaluate(&trainer.model(), &context.real_validation, &config, device);
            report.real_validation = Some(overlap);
        }
        let checkpoint = trainer.checkpoint().map_err(Error::Internal)?;
        let keys = job_keys.checkpoint(epoch as u32);
        let state = CheckpointState {
            epoch,
            seed: config.seed,
            mean_foreground_validation_iou: report.validation.mean_foreground_iou(),
        };
        record.history.push(report.clone());
        record.crashes = 0;
        record.updated_at = now();
        let best = record.best_epoch().unwrap_or(epoch);
        context.handle.block_on(async {
            storage
                .put(&keys.model(), Bytes::from(checkpoint.model))
                .await?;
            storage
                .put(&keys.optimizer(), Bytes::from(checkpoint.optimizer))
                .await?;
            storage.put_json(&keys.state(), &state).await?;
            let _ = events.send(Event::Checkpoint {
                epoch,
                key: keys.prefix().to_string(),
            });
            storage.put_json(&job_keys.state(), &record).await?;
            prune(storage, &job_keys, epoch, best).await
        })?;
        let _ = events.send(Event::Epoch(Box::new(report)));
    }
    Ok(Outcome::Trained(Box::new(record)))
}

/// Deletes every checkpoint but the latest (to resume from) and the best (the model).
async fn prune(
    storage: &abdoseg_storage::Storage,
    job: &JobKeys,
    latest: usize,
    best: usize,
) -> Result<(), Error> {
    let keep = [job.checkpoint(latest as u32), job.checkpoint(best as u32)];
    for name in storage.list_children(&job.checkpoints()).await? {
        let prefix = Key::parse(&format!("{}/{name}", job.checkpoints()))?;
        if keep.iter().all(|k| k.prefix() != &prefix) {
            storage.delete_prefix(&prefix).await?;
        }
    }
    Ok(())
}

/// Registers the best epoch's weights as a model, then marks the job succeeded. The model
/// id derives from the job's, so a registration interrupted by a crash is redone in place.
async fn register(
    jobs: &Jobs,
    live: &LiveJob,
    record: JobRecord,
    manifest: &Manifest,
) -> Result<(), Error> {
    let storage = &jobs.storage;
    let best = record
        .best_epoch()
        .ok_or_else(|| Error::Internal("the job finished without an epoch".into()))?;
    let job_keys = JobKeys::new(&Id::parse(&record.job_id)?);
    let weights = storage
        .get(&job_keys.checkpoint(best as u32).model())
        .await?;
    let model_id = model_id_for(&record.job_id);
    let keys = ModelKeys::new(&Id::parse(&model_id)?);
    let info = storage.put(&keys.weights(), weights).await?;
    let training = &record.spec.training;
    let parameter_count = training
        .model()
        .init::<CpuBackend>(&Default::default())
        .num_params() as u64;
    let model = ModelRecord {
        model_id: model_id.clone(),
        name: record.spec.name.clone(),
        job_id: record.job_id.clone(),
        spec: record.spec.clone(),
        preprocessing: manifest.preprocessing.clone(),
        zscore_statistics: manifest.fingerprint.zscore,
        history: record.history.clone(),
        best_epoch: best,
        dataset_id: manifest.dataset_id.clone(),
        abdoseg_version: env!("CARGO_PKG_VERSION").to_owned(),
        weights_key: keys.weights().to_string(),
        weights_bytes: info.size,
        parameter_count,
        created_at: now(),
    };
    storage.put_json(&keys.record(), &model).await?;
    let mut record = record;
    record.model_id = Some(model_id.clone());
    record.set_state(JobState::Succeeded);
    storage.put_json(&job_keys.state(), &record).await?;
    tracing::info!(job = %record.job_id, model = %model_id, best_epoch = best, "model registered");
    let _ = live.events.send(Event::Finished {
        model_id,
        best_epoch: best,
    });
    Ok(())
}
