//! The gRPC edge: converts requests, calls the job queue and the store, converts back.

use std::{pin::Pin, time::Duration};

use abdoseg_dataset::{manifest::Split, proto::preprocessing_from_proto};
use abdoseg_protos::training::v1::{
    self as pb, CancelJobRequest, CancelJobResponse, GetJobRequest, GetJobResponse,
    GetModelRequest, GetModelResponse, ListJobsRequest, ListJobsResponse, ListModelsRequest,
    ListModelsResponse, StartTrainingRequest, StartTrainingResponse, WatchJobRequest,
    WatchJobResponse, training_service_server::TrainingService as Contract,
    watch_job_response::Event as WireEvent,
};
use abdoseg_storage::{
    Id, Key, StorageError,
    keys::{JobKeys, ModelKeys},
};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use crate::{
    Error, TrainingService,
    convert::{epoch_to_proto, job_spec, job_to_proto, model_to_proto, state_to_proto, timestamp},
    data,
    jobs::Event,
    record::{JobRecord, JobState, ModelRecord, new_job_id, now},
};

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How long CancelJob waits for a running job to stop at its next batch.
const CANCEL_WAIT: Duration = Duration::from_secs(120);
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

fn parse_id(field: &str, value: &str) -> Result<Id, Error> {
    Id::parse(value).map_err(|e| Error::InvalidArgument(format!("{field}: {e}")))
}

impl TrainingService {
    async fn job(&self, id: &Id) -> Result<JobRecord, Error> {
        Ok(self.storage.get_json(&JobKeys::new(id).state()).await?)
    }

    /// One page of the records under `all` (ids newest first), from after `page_token`.
    async fn page<T: DeserializeOwned>(
        &self,
        all: &Key,
        record: impl Fn(&Id) -> Key,
        page_size: u32,
        page_token: &str,
    ) -> Result<(Vec<T>, String), Error> {
        let size = match page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let mut ids = self.storage.list_children(all).await?;
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::new();
        let mut last = String::new();
        for id in ids
            .iter()
            .filter(|id| page_token.is_empty() || id.as_str() < page_token)
        {
            if out.len() == size {
                return Ok((out, last));
            }
            let Ok(parsed) = Id::parse(id) else { continue };
            match self.storage.get_json(&record(&parsed)).await {
                Ok(value) => out.push(value),
                // A job being created or a model being registered: not listed yet.
                Err(StorageError::NotFound { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
            last.clone_from(id);
        }
        Ok((out, String::new()))
    }

    /// Checks a request against its dataset and queues it.
    async fn start(&self, config: pb::TrainingConfig) -> Result<JobRecord, Error> {
        let preprocessing = config.preprocessing;
        let spec = job_spec(config)?;
        let datasets = data::JobDatasets::read(&self.storage, &spec).await?;
        let manifest = &datasets.main;
        if let Some(requested) = preprocessing {
            let requested = preprocessing_from_proto(Some(requested))
                .map_err(|e| Error::InvalidArgument(format!("config.preprocessing: {e}")))?;
            if requested != manifest.preprocessing {
                return Err(Error::InvalidArgument(format!(
                    "config.preprocessing differs from dataset {}'s; leave it out to use the dataset's",
                    spec.dataset_id
                )));
            }
        }
        let multiple = spec.training.model().size_multiple();
        let (h, w) = (
            manifest.preprocessing.slice_height,
            manifest.preprocessing.slice_width,
        );
        if h % multiple != 0 || w % multiple != 0 {
            return Err(Error::InvalidArgument(format!(
                "dataset slices are {h}×{w}; depth {} needs sides divisible by {multiple}",
                spec.training.depth
            )));
        }
        // A job that could never fit in memory is refused now, not after it was queued
        // (where it would take the process down, and again after every restart).
        let training_peak = spec.training.peak_bytes(h, w);
        self.budget
            .check(datasets.bytes(&spec.training.context) + training_peak)
            .map_err(|e| Error::InvalidArgument(format!("config: {e}")))?;
        // 2.5D places neighbours in millimetres: every case must say how far apart its
        // slices are.
        if spec.training.context.slices > 1
            && let Some(case) = datasets.all_cases().find(|case| {
                case.axial_spacing_mm()
                    .is_none_or(|mm| mm.is_nan() || mm <= 0.0)
            })
        {
            return Err(Error::InvalidArgument(format!(
                "config.context_slices: case {} has no axial slice spacing in its record",
                case.case_id
            )));
        }
        for split in [Split::Train, Split::Validation] {
            if manifest.cases_in(split).next().is_none() {
                return Err(Error::FailedPrecondition(format!(
                    "dataset {} has no {split:?} cases",
                    spec.dataset_id
                )));
            }
        }
        let record = JobRecord::new(new_job_id(), spec);
        let key = JobKeys::new(&parse_id("job_id", &record.job_id)?).state();
        self.storage
            .put_if_absent(
                &key,
                serde_json::to_vec(&record)
                    .map_err(|e| Error::Internal(e.to_string()))?
                    .into(),
            )
            .await?;
        tracing::info!(job = %record.job_id, dataset = %record.spec.dataset_id, "training job queued");
        self.jobs.enqueue(record.job_id.clone());
        Ok(record)
    }
}

fn wire(job_id: &str, event: WireEvent) -> WatchJobResponse {
    WatchJobResponse {
        job_id: job_id.to_owned(),
        time: Some(timestamp(now())),
        event: Some(event),
    }
}

fn event_to_wire(event: Event) -> WireEvent {
    match event {
        Event::State(state) => WireEvent::StateChanged(state_to_proto(state) as i32),
        Event::Batch {
            epoch,
            batch,
            batches,
            loss,
        } => WireEvent::BatchProgress(pb::BatchProgress {
            epoch: epoch as u32,
            batch: batch as u32,
            batches_total: batches as u32,
            loss,
        }),
        Event::Epoch(report) => WireEvent::EpochFinished(epoch_to_proto(&report)),
        Event::Checkpoint { epoch, key } => WireEvent::CheckpointSaved(pb::CheckpointSaved {
            epoch: epoch as u32,
            checkpoint: Some(abdoseg_protos::common::v1::ObjectRef {
                key,
                ..Default::default()
            }),
        }),
        Event::Finished {
            model_id,
            best_epoch,
        } => WireEvent::Finished(pb::JobFinished {
            model_id,
            best_epoch: best_epoch as u32,
        }),
        Event::Failed(error) => WireEvent::Failed(pb::JobFailed { error }),
        Event::Cancelled => WireEvent::StateChanged(pb::JobState::Cancelled as i32),
        // Never sent as an event: the stream ends with UNAVAILABLE instead.
        Event::Paused => WireEvent::StateChanged(pb::JobState::Queued as i32),
    }
}

/// How a watch ends when the server stops before the job does.
fn stopping() -> Status {
    Status::unavailable(
        "the server is stopping: the job is paused at its last checkpoint and resumes when \
         the training service starts again; watch it again then",
    )
}

/// The last event of a job that has ended.
fn final_event(record: &JobRecord) -> Option<WireEvent> {
    match record.state {
        JobState::Succeeded => Some(WireEvent::Finished(pb::JobFinished {
            model_id: record.model_id.clone().unwrap_or_default(),
            best_epoch: record.best_epoch().unwrap_or(0) as u32,
        })),
        JobState::Failed => Some(WireEvent::Failed(pb::JobFailed {
            error: record.error.clone().unwrap_or_default(),
        })),
        JobState::Queued | JobState::Running | JobState::Cancelled => None,
    }
}

#[tonic::async_trait]
impl Contract for TrainingService {
    type WatchJobStream = EventStream<WatchJobResponse>;

    async fn start_training(
        &self,
        request: Request<StartTrainingRequest>,
    ) -> Result<Response<StartTrainingResponse>, Status> {
        let config = request
            .into_inner()
            .config
            .ok_or_else(|| Error::InvalidArgument("config is required".into()))?;
        let record = self.start(config).await?;
        Ok(Response::new(StartTrainingResponse {
            job: Some(job_to_proto(&record, true)),
        }))
    }

    async fn watch_job(
        &self,
        request: Request<WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let id = parse_id("job_id", &request.into_inner().job_id)?;
        // Subscribe before reading the record, so that nothing falls between the two.
        let mut events = self
            .jobs
            .live(id.as_str())
            .map(|live| live.events.subscribe());
        let record = self.job(&id).await?;
        let job_id = record.job_id.clone();
        let (tx, rx) = mpsc::channel(64);
        let mut first = vec![wire(
            &job_id,
            WireEvent::StateChanged(state_to_proto(record.state) as i32),
        )];
        if record.state.is_final() {
            first.extend(final_event(&record).map(|e| wire(&job_id, e)));
            events = None;
        }
        let lifecycle = self.jobs.lifecycle.clone();
        tokio::spawn(async move {
            for event in first {
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            let Some(events) = events.as_mut() else {
                return;
            };
            loop {
                let received = tokio::select! {
                    received = events.recv() => received,
                    () = lifecycle.shutdown_requested() => {
                        let _ = tx.send(Err(stopping())).await;
                        return;
                    }
                };
                match received {
                    Ok(Event::Paused) => {
                        let _ = tx.send(Err(stopping())).await;
                        return;
                    }
                    Ok(event) => {
                        let last = event.is_last();
                        if tx
                            .send(Ok(wire(&job_id, event_to_wire(event))))
                            .await
                            .is_err()
                            || last
                        {
                            return;
                        }
                    }
                    // A slow watcher misses batch progress, never the end.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        let id = parse_id("job_id", &request.into_inner().job_id)?;
        let record = self.job(&id).await?;
        Ok(Response::new(GetJobResponse {
            job: Some(job_to_proto(&record, true)),
        }))
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let request = request.into_inner();
        let (jobs, next_page_token) = self
            .page::<JobRecord>(
                &JobKeys::all(),
                |id| JobKeys::new(id).state(),
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(ListJobsResponse {
            jobs: jobs.iter().map(|j| job_to_proto(j, false)).collect(),
            next_page_token,
        }))
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<CancelJobResponse>, Status> {
        let id = parse_id("job_id", &request.into_inner().job_id)?;
        let record = self.job(&id).await?;
        let record = if record.state.is_final() {
            record
        } else if let Some(live) = self.jobs.live(id.as_str()) {
            let mut events = live.events.subscribe();
            live.cancel.cancel();
            let _ = tokio::time::timeout(CANCEL_WAIT, async {
                loop {
                    match events.recv().await {
                        Ok(event) if event.is_last() => break,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            })
            .await;
            self.job(&id).await?
        } else {
            // Nothing in this process runs it (its process is gone): settle it here.
            self.jobs
                .update(id.as_str(), |r| r.set_state(JobState::Cancelled))
                .await?
        };
        Ok(Response::new(CancelJobResponse {
            job: Some(job_to_proto(&record, true)),
        }))
    }

    async fn list_models(
        &self,
        request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        let request = request.into_inner();
        let (models, next_page_token) = self
            .page::<ModelRecord>(
                &ModelKeys::all(),
                |id| ModelKeys::new(id).record(),
                request.page_size,
                &request.page_token,
            )
            .await?;
        Ok(Response::new(ListModelsResponse {
            models: models.iter().map(|m| model_to_proto(m, false)).collect(),
            next_page_token,
        }))
    }

    async fn get_model(
        &self,
        request: Request<GetModelRequest>,
    ) -> Result<Response<GetModelResponse>, Status> {
        let model_id = request.into_inner().model_id;
        if model_id != "latest" {
            parse_id("model_id", &model_id)?;
        }
        let record = abdoseg_registry::resolve(&self.storage, &model_id)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(GetModelResponse {
            model: Some(model_to_proto(&record, true)),
        }))
    }
}
