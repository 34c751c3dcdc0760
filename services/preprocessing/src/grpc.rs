//! The gRPC edge: converts requests, calls the service, converts back.

use std::pin::Pin;

use abdoseg_protos::preprocessing::v1::{
    GetManifestRequest, GetManifestResponse, ListDatasetsRequest, ListDatasetsResponse,
    PrepareDatasetRequest, PrepareDatasetResponse, PreprocessVolumeRequest,
    PreprocessVolumeResponse, UploadVolumeRequest, UploadVolumeResponse,
    preprocessing_service_server::PreprocessingService as Contract,
};
use abdoseg_storage::{Id, Key, StorageError, keys::DatasetKeys};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::{Error, PreprocessingService};

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Dataset preparation ships with the preprocessing issue (#4), on top of the imaging core (#3).
const PENDING: &str = "dataset preparation ships with the imaging core and preprocessing pipeline";

fn not_yet(rpc: &'static str) -> Status {
    Error::NotYetAvailable {
        rpc,
        detail: PENDING,
    }
    .into()
}

#[tonic::async_trait]
impl Contract for PreprocessingService {
    type PrepareDatasetStream = EventStream<PrepareDatasetResponse>;

    async fn prepare_dataset(
        &self,
        request: Request<PrepareDatasetRequest>,
    ) -> Result<Response<Self::PrepareDatasetStream>, Status> {
        let request = request.into_inner();
        Key::parse(&request.source_prefix).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Err(not_yet("PrepareDataset"))
    }

    async fn preprocess_volume(
        &self,
        request: Request<PreprocessVolumeRequest>,
    ) -> Result<Response<PreprocessVolumeResponse>, Status> {
        let volume = request
            .into_inner()
            .volume
            .ok_or_else(|| Error::InvalidArgument("volume is required".into()))?;
        Key::parse(&volume.key).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Err(not_yet("PreprocessVolume"))
    }

    async fn get_manifest(
        &self,
        request: Request<GetManifestRequest>,
    ) -> Result<Response<GetManifestResponse>, Status> {
        let id = Id::parse(&request.into_inner().dataset_id)
            .map_err(|e| Error::InvalidArgument(format!("dataset_id: {e}")))?;
        let manifest = DatasetKeys::new(&id).manifest();
        if !self.storage.exists(&manifest).await.map_err(Error::from)? {
            return Err(Error::Storage(StorageError::NotFound {
                key: manifest.to_string(),
            })
            .into());
        }
        Err(not_yet("GetManifest"))
    }

    async fn list_datasets(
        &self,
        _request: Request<ListDatasetsRequest>,
    ) -> Result<Response<ListDatasetsResponse>, Status> {
        Err(not_yet("ListDatasets"))
    }

    async fn upload_volume(
        &self,
        _request: Request<Streaming<UploadVolumeRequest>>,
    ) -> Result<Response<UploadVolumeResponse>, Status> {
        Err(not_yet("UploadVolume"))
    }
}
