//! The gRPC edge: converts requests, calls the service, converts back.

use std::pin::Pin;

use abdoseg_protos::training::v1::{
    CancelJobRequest, CancelJobResponse, GetJobRequest, GetJobResponse, GetModelRequest,
    GetModelResponse, ListJobsRequest, ListJobsResponse, ListModelsRequest, ListModelsResponse,
    StartTrainingRequest, StartTrainingResponse, WatchJobRequest, WatchJobResponse,
    training_service_server::TrainingService as Contract,
};
use abdoseg_storage::{
    Id, Key, StorageError,
    keys::{JobKeys, ModelKeys},
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::{Error, TrainingService};

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Training ships with the models-and-training issue (#5).
const PENDING: &str = "training jobs ship with the U-Net models and the training loop";

fn not_yet(rpc: &'static str) -> Status {
    Error::NotYetAvailable {
        rpc,
        detail: PENDING,
    }
    .into()
}

fn parse_id(field: &str, value: &str) -> Result<Id, Error> {
    Id::parse(value).map_err(|e| Error::InvalidArgument(format!("{field}: {e}")))
}

impl TrainingService {
    /// NOT_FOUND unless the record exists; the record's decoding ships with #5.
    async fn require(&self, record: Key) -> Result<(), Error> {
        if self.storage.exists(&record).await? {
            Ok(())
        } else {
            Err(Error::Storage(StorageError::NotFound {
                key: record.to_string(),
            }))
        }
    }
}

#[tonic::async_trait]
impl Contract for TrainingService {
    type WatchJobStream = EventStream<WatchJobResponse>;

    async fn start_training(
        &self,
        request: Request<StartTrainingRequest>,
    ) -> Result<Response<StartTrainingResponse>, Status> {
        request
            .into_inner()
            .config
            .ok_or_else(|| Error::InvalidArgument("config is required".into()))?;
        Err(not_yet("StartTraining"))
    }

    async fn watch_job(
        &self,
        request: Request<WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let id = parse_id("job_id", &request.into_inner().job_id)?;
        self.require(JobKeys::new(&id).state()).await?;
        Err(not_yet("WatchJob"))
    }

    async fn get_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        let id = parse_id("job_id", &request.into_inner().job_id)?;
        self.require(JobKeys::new(&id).state()).await?;
        Err(not_yet("GetJob"))
    }

    async fn list_jobs(
        &self,
        _request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        Err(not_yet("ListJobs"))
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<CancelJobResponse>, Status> {
        let id = parse_id("job_id", &request.into_inner().job_id)?;
        self.require(JobKeys::new(&id).state()).await?;
        Err(not_yet("CancelJob"))
    }

    async fn list_models(
        &self,
        _request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        Err(not_yet("ListModels"))
    }

    async fn get_model(
        &self,
        request: Request<GetModelRequest>,
    ) -> Result<Response<GetModelResponse>, Status> {
        let model_id = request.into_inner().model_id;
        if model_id != "latest" {
            let id = parse_id("model_id", &model_id)?;
            self.require(ModelKeys::new(&id).record()).await?;
        }
        Err(not_yet("GetModel"))
    }
}
