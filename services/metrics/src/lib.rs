//! The metrics service: per-organ overlap and surface metrics per case and per split,
//! the study's table, overlays and reports. Model evaluation calls the inference
//! service over gRPC at its configured address.
//!
//! - [`measures`]: IoU, Dice, counts, precision, recall, volume difference, HD95, NSD.
//! - [`aggregate`]: means, medians and the study's pooled IoU over a split.
//! - [`overlay`] and [`rendering`]: the yellow/green/red pictures and the 2×3 grid.
//! - [`report`]: Markdown, self-contained HTML and training curves.

pub mod aggregate;
mod convert;
mod error;
mod grpc;
pub mod measures;
mod model_evaluation;
mod objects;
pub mod overlay;
pub mod rendering;
pub mod report;
mod reports;
mod telemetry;

use abdoseg_protos::{
    inference::v1::inference_service_client::InferenceServiceClient,
    metrics::v1::metrics_service_server::MetricsServiceServer,
};
use abdoseg_server::{
    Gate, RequestLimits, ServiceRegistration, prometheus::Metrics,
    propagation::inject_trace_context,
};
use abdoseg_storage::Storage;
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

pub use error::Error;
pub use model_evaluation::{DEFAULT_CONCURRENCY, MAX_CONCURRENCY};
pub use objects::ObjectLimits;
pub use telemetry::Telemetry;

type TraceInterceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// A client of the inference service that carries the caller's trace along.
pub type InferenceClient = InferenceServiceClient<InterceptedService<Channel, TraceInterceptor>>;

/// Connects lazily to the inference service at `url` (e.g. `http://inference:50051`):
/// the metrics service starts even while inference is still coming up.
pub fn inference_client(url: &str) -> Result<InferenceClient, tonic::transport::Error> {
    let channel = Endpoint::from_shared(url.to_owned())?.connect_lazy();
    Ok(InferenceServiceClient::with_interceptor(
        channel,
        inject_trace_context as TraceInterceptor,
    ))
}

/// The service's state: the store with predictions and reports, its inference peer,
/// its read limits and its Prometheus metrics.
#[derive(Debug, Clone)]
pub struct MetricsService {
    storage: Storage,
    inference: InferenceClient,
    limits: ObjectLimits,
    telemetry: Telemetry,
    requests: RequestLimits,
    /// EvaluatePrediction and RenderOverlays: the calls that decode volumes on request.
    volumes: Gate,
}

/// Single-case calls (EvaluatePrediction, RenderOverlays) that run at once, and that may
/// wait.
const VOLUME_CALLS_RUNNING: usize = 2;
const VOLUME_CALLS_WAITING: usize = 16;

impl MetricsService {
    /// A service whose metrics are registered in `metrics`.
    pub fn new(storage: Storage, inference: InferenceClient, metrics: &Metrics) -> Self {
        Self {
            storage,
            inference,
            limits: ObjectLimits::default(),
            telemetry: Telemetry::register(metrics),
            requests: RequestLimits::default(),
            volumes: Gate::new("evaluations", VOLUME_CALLS_RUNNING, VOLUME_CALLS_WAITING),
        }
    }

    /// The process's request bounds (its memory budget is shared with the other
    /// services of the process).
    pub fn with_request_limits(mut self, requests: RequestLimits) -> Self {
        self.limits.max_voxels = requests.max_voxels;
        self.requests = requests;
        self
    }

    /// The tonic server with its message limits, ready for a host.
    pub fn registration(self, max_message_bytes: usize) -> ServiceRegistration {
        ServiceRegistration::new(
            MetricsServiceServer::new(self)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
    }

    fn evaluator(&self) -> model_evaluation::Evaluator {
        model_evaluation::Evaluator {
            storage: self.storage.clone(),
            inference: self.inference.clone(),
            limits: self.limits,
            budget: self.requests.budget.clone(),
            telemetry: self.telemetry.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inference_url_must_be_a_uri() {
        assert!(inference_client("http://127.0.0.1:50051").is_ok());
        assert!(inference_client("not a uri").is_err());
    }
}
