//! grpc.health.v1 whose Watch streams end when the server closes its listener: an open
//! Watch (every Kubernetes gRPC probe client keeps one) must not hold a stopping process
//! for its whole grace period. Check and the statuses are tonic-health's own.

use std::pin::Pin;

use futures::StreamExt as _;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::{
    pb::{
        HealthCheckRequest, HealthCheckResponse,
        health_server::{self, Health},
    },
    server::{HealthReporter, HealthService},
};

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

/// The health service of a host.
pub(crate) struct ClosingHealth {
    inner: HealthService,
    closing: CancellationToken,
}

impl ClosingHealth {
    /// Serves `reporter`'s statuses; Watch streams end once `closing` is cancelled.
    pub(crate) fn server(
        reporter: &HealthReporter,
        closing: CancellationToken,
    ) -> health_server::HealthServer<Self> {
        health_server::HealthServer::new(Self {
            inner: HealthService::from_health_reporter(reporter.clone()),
            closing,
        })
    }
}

#[tonic::async_trait]
impl Health for ClosingHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let statuses = self.inner.watch(request).await?.into_inner();
        let closing = self.closing.clone().cancelled_owned();
        Ok(Response::new(Box::pin(statuses.take_until(closing))))
    }
}
