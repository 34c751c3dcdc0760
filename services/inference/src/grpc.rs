//! The gRPC edge: converts requests, calls the service, converts back.

use std::pin::Pin;

use std::sync::atomic::Ordering;

use abdoseg_protos::inference::v1::{
    GetModelStatusRequest, GetModelStatusResponse, LoadModelRequest, LoadModelResponse,
    LoadedModel, SegmentRequest, SegmentResponse, SegmentStreamRequest, SegmentStreamResponse,
    inference_service_server::InferenceService as Contract, segment_stream_request,
};
use abdoseg_storage::{Id, StorageError, keys::ModelKeys};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use abdoseg_server::deadline;

use crate::{Error, InferenceService, cache::WarmModel, stream::into_stream};

type ChunkStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl InferenceService {
    fn loaded(&self, model: &WarmModel) -> LoadedModel {
        LoadedModel {
            model_id: model.record.model_id.clone(),
            device: self.device_proto() as i32,
            memory_bytes: model.memory_bytes,
            batch_size: self.limits.batch_size as u32,
            loaded_at: Some(prost_types::Timestamp::from(model.loaded_at)),
            requests_served: model.served.load(Ordering::Relaxed),
        }
    }

    /// Checks a model reference: "latest" (or empty), or the id of a registered model.
    async fn check_model(&self, model_id: &str) -> Result<(), Error> {
        if model_id.is_empty() || model_id == "latest" {
            return Ok(());
        }
        let id =
            Id::parse(model_id).map_err(|e| Error::InvalidArgument(format!("model_id: {e}")))?;
        let record = ModelKeys::new(&id).record();
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
impl Contract for InferenceService {
    type SegmentStreamStream = ChunkStream<SegmentStreamResponse>;

    async fn segment(
        &self,
        request: Request<SegmentRequest>,
    ) -> Result<Response<SegmentResponse>, Status> {
        let deadline = deadline(request.metadata());
        let response = self
            .segment_in_store(request.into_inner(), deadline)
            .await?;
        Ok(Response::new(response))
    }

    async fn segment_stream(
        &self,
        request: Request<Streaming<SegmentStreamRequest>>,
    ) -> Result<Response<Self::SegmentStreamStream>, Status> {
        let deadline = deadline(request.metadata());
        let mut upload = request.into_inner();
        let first = tokio::time::timeout(self.requests.idle_timeout, upload.next())
            .await
            .map_err(|_| {
                Error::InvalidArgument("the upload sent no start message in time".into())
            })?;
        let start = match first.transpose()? {
            Some(SegmentStreamRequest {
                message: Some(segment_stream_request::Message::Start(start)),
            }) => start,
            Some(_) => {
                return Err(Error::InvalidArgument(
                    "the first message must be start, before any chunk".into(),
                )
                .into());
            }
            None => return Err(Error::InvalidArgument("the upload was empty".into()).into()),
        };
        self.check_model(&start.model_id).await?;
        let messages = self.segment_upload(start, upload, deadline).await?;
        Ok(Response::new(Box::pin(into_stream(messages))))
    }

    async fn load_model(
        &self,
        request: Request<LoadModelRequest>,
    ) -> Result<Response<LoadModelResponse>, Status> {
        let model = self
            .cache
            .get(&self.storage, &request.into_inner().model_id)
            .await?;
        Ok(Response::new(LoadModelResponse {
            model: Some(self.loaded(&model)),
        }))
    }

    async fn get_model_status(
        &self,
        _request: Request<GetModelStatusRequest>,
    ) -> Result<Response<GetModelStatusResponse>, Status> {
        let pending = self.queue.pending() as u32;
        Ok(Response::new(GetModelStatusResponse {
            models: self.cache.models().iter().map(|m| self.loaded(m)).collect(),
            device: self.device_proto() as i32,
            default_model_id: self.default_model().unwrap_or_default().to_owned(),
            ready: self.is_ready(),
            queue_depth: pending.saturating_sub(self.limits.concurrency as u32),
            queue_capacity: self.limits.queue_capacity as u32,
            cache_capacity_bytes: self.cache.capacity_bytes(),
        }))
    }
}
