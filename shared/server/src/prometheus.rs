//! Prometheus metrics: one registry per process that the services register into at
//! start, served as text at `GET /metrics` on a separate listener.

use std::{
    convert::Infallible,
    sync::{Arc, RwLock},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::{encoding::text::encode, registry::Registry};
use tokio::net::TcpListener;

use crate::Lifecycle;

/// The process's metrics registry; clones share it.
#[derive(Clone, Default)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// The content type of Prometheus' text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers metrics under the `abdoseg_` prefix.
    pub fn register(&self, with: impl FnOnce(&mut Registry)) {
        let mut registry = self.registry.write().unwrap_or_else(|e| e.into_inner());
        with(registry.sub_registry_with_prefix("abdoseg"));
    }

    /// Every metric in the text format.
    pub fn encode(&self) -> String {
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }

    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let (status, content_type, body) = match (request.method(), request.uri().path()) {
            (&Method::GET, "/metrics") => (StatusCode::OK, CONTENT_TYPE, self.encode()),
            (_, "/metrics") => (
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "GET only\n".into(),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "metrics are at /metrics\n".into(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(value) = content_type.parse() {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, value);
        }
        response
    }

    /// Serves `/metrics` on `listener` until `lifecycle` shuts down.
    pub async fn serve(self, listener: TcpListener, lifecycle: Lifecycle) {
        let token = lifecycle.token();
        loop {
            let stream = tokio::select! {
                _ = token.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "metrics endpoint: accept failed");
                        continue;
                    }
                },
            };
            let metrics = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let response = metrics.respond(&request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if let Err(error) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(%error, "metrics endpoint: connection ended");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[test]
    fn registered_metrics_carry_the_prefix() {
        let metrics = Metrics::new();
        let counter = Counter::<u64>::default();
        metrics.register(|r| r.register("things", "Things seen", counter.clone()));
        counter.inc_by(3);
        let text = metrics.encode();
        assert!(text.contains("# TYPE abdoseg_things counter"), "{text}");
        assert!(text.contains("abdoseg_things_total 3"), "{text}");
    }
}
