//! The gRPC edge: converts requests, calls the service, converts back.

use std::pin::Pin;

use abdoseg_protos::inference::v1::{
    GetModelStatusRequest, GetModelStatusResponse, LoadModelRequest, LoadModelResponse,
    SegmentRequest, SegmentResponse, SegmentStreamRequest, SegmentStreamResponse,
    inference_service_server::InferenceService as Contract, segment_stream_request,
};
use abdoseg_storage::{Id, Key, StorageError, keys::ModelKeys};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::{Error, InferenceService};

type ChunkStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Segmentation ships with the inference issue (#6), on top of trained models (#5).
const PENDING: &str = "segmentation ships with the trained models and the inference pipeline";

fn not_yet(rpc: &'static str) -> Status {
    Error::NotYetAvailable {
        rpc,
        detail: PENDING,
    }
    .into()
}

impl InferenceService {
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
        let request = request.into_inner();
        let volume = request
            .volume
            .ok_or_else(|| Error::InvalidArgument("volume is required".into()))?;
        Key::parse(&volume.key).map_err(|e| Error::InvalidArgument(format!("volume: {e}")))?;
        self.check_model(&request.model_id).await?;
        Err(not_yet("Segment"))
    }

    async fn segment_stream(
        &self,
        request: Request<Streaming<SegmentStreamRequest>>,
    ) -> Result<Response<Self::SegmentStreamStream>, Status> {
        let mut upload = request.into_inner();
        let start = match upload.next().await.transpose()? {
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
        Err(not_yet("SegmentStream"))
    }

    async fn load_model(
        &self,
        request: Request<LoadModelRequest>,
    ) -> Result<Response<LoadModelResponse>, Status> {
        self.check_model(&request.into_inner().model_id).await?;
        Err(not_yet("LoadModel"))
    }

    async fn get_model_status(
        &self,
        _request: Request<GetModelStatusRequest>,
    ) -> Result<Response<GetModelStatusResponse>, Status> {
        Err(not_yet("GetModelStatus"))
    }
}
