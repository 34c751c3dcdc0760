//! The gRPC edge: converts requests, calls the service, converts back.

use std::pin::Pin;

use abdoseg_protos::common::v1::ObjectRef;
use abdoseg_protos::metrics::v1::{
    EvaluateModelRequest, EvaluateModelResponse, EvaluatePredictionRequest,
    EvaluatePredictionResponse, GetReportRequest, GetReportResponse, ListReportsRequest,
    ListReportsResponse, RenderOverlaysRequest, RenderOverlaysResponse,
    metrics_service_server::MetricsService as Contract,
};
use abdoseg_storage::{Id, Key, StorageError, keys::ReportKeys};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::{Error, MetricsService};

type EventStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Evaluation ships with the metrics issue (#7).
const PENDING: &str = "evaluation ships with the metrics and report pipeline";

fn not_yet(rpc: &'static str) -> Status {
    Error::NotYetAvailable {
        rpc,
        detail: PENDING,
    }
    .into()
}

fn object_key(field: &str, reference: Option<ObjectRef>) -> Result<Key, Error> {
    let reference =
        reference.ok_or_else(|| Error::InvalidArgument(format!("{field} is required")))?;
    Key::parse(&reference.key).map_err(|e| Error::InvalidArgument(format!("{field}: {e}")))
}

#[tonic::async_trait]
impl Contract for MetricsService {
    type EvaluateModelStream = EventStream<EvaluateModelResponse>;

    async fn evaluate_prediction(
        &self,
        request: Request<EvaluatePredictionRequest>,
    ) -> Result<Response<EvaluatePredictionResponse>, Status> {
        let request = request.into_inner();
        object_key("prediction", request.prediction)?;
        object_key("ground_truth", request.ground_truth)?;
        Err(not_yet("EvaluatePrediction"))
    }

    async fn evaluate_model(
        &self,
        request: Request<EvaluateModelRequest>,
    ) -> Result<Response<Self::EvaluateModelStream>, Status> {
        Id::parse(&request.into_inner().dataset_id)
            .map_err(|e| Error::InvalidArgument(format!("dataset_id: {e}")))?;
        Err(not_yet("EvaluateModel"))
    }

    async fn render_overlays(
        &self,
        request: Request<RenderOverlaysRequest>,
    ) -> Result<Response<RenderOverlaysResponse>, Status> {
        let request = request.into_inner();
        object_key("image", request.image)?;
        object_key("prediction", request.prediction)?;
        object_key("ground_truth", request.ground_truth)?;
        Err(not_yet("RenderOverlays"))
    }

    async fn get_report(
        &self,
        request: Request<GetReportRequest>,
    ) -> Result<Response<GetReportResponse>, Status> {
        let id = Id::parse(&request.into_inner().report_id)
            .map_err(|e| Error::InvalidArgument(format!("report_id: {e}")))?;
        let record = ReportKeys::new(&id).record();
        if !self.storage.exists(&record).await.map_err(Error::from)? {
            return Err(Error::Storage(StorageError::NotFound {
                key: record.to_string(),
            })
            .into());
        }
        Err(not_yet("GetReport"))
    }

    async fn list_reports(
        &self,
        _request: Request<ListReportsRequest>,
    ) -> Result<Response<ListReportsResponse>, Status> {
        Err(not_yet("ListReports"))
    }
}
