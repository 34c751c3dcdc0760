//! The gRPC host: serves a set of abdoseg services on one listener with health,
//! reflection, request tracing, message limits and a graceful, bounded shutdown.

use std::{convert::Infallible, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    body::Body,
    server::NamedService,
    service::RoutesBuilder,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{Lifecycle, health::ClosingHealth, propagation, rejections::RejectionLayer};

/// One service, ready to be added to a host.
pub struct ServiceRegistration {
    name: &'static str,
    add: Box<dyn FnOnce(&mut RoutesBuilder) + Send>,
}

impl std::fmt::Debug for ServiceRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRegistration")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ServiceRegistration {
    /// Wraps a generated tonic server (with its message limits already set).
    pub fn new<S>(service: S) -> Self
    where
        S: tonic::codegen::Service<
                tonic::codegen::http::Request<Body>,
                Error = Infallible,
                Response = tonic::codegen::http::Response<Body>,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Self {
            name: S::NAME,
            add: Box::new(move |routes| {
                routes.add_service(service);
            }),
        }
    }

    /// The fully qualified gRPC service name, as health checks and reflection know it.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The health of the services on a host: per service name, and "" for the host.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").finish_non_exhaustive()
    }
}

impl Health {
    pub async fn set_serving(&self, service: &str) {
        self.reporter
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }

    pub async fn set_not_serving(&self, service: &str) {
        self.reporter
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
}

/// How a host behaves at its edges.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Time in-flight calls get to finish once the listener closes.
    pub shutdown_grace: Duration,
    /// Time between turning NOT_SERVING and closing the listener.
    pub shutdown_delay: Duration,
}

/// Serves `services` on `listener` until `lifecycle` asks to stop.
///
/// Every service starts SERVING unless `not_ready` names it; a service that needs to
/// warm up first (a default model) turns itself SERVING through the returned
/// [`Health`]. On shutdown every service turns NOT_SERVING, the listener closes after
/// `shutdown_delay` (health Watch streams end with it), in-flight calls drain for at
/// most `shutdown_grace`, then background work gets the same grace.
pub async fn serve(
    listener: TcpListener,
    services: Vec<ServiceRegistration>,
    not_ready: &[&str],
    lifecycle: Lifecycle,
    options: HostOptions,
    on_health: impl FnOnce(Health),
) -> Result<(), tonic::transport::Error> {
    let reporter = HealthReporter::new();
    // Cancelled when the listener closes: open health Watch streams end then.
    let closing = CancellationToken::new();
    let health_service = ClosingHealth::server(&reporter, closing.clone());
    let health = Health { reporter };
    let names: Vec<&'static str> = services.iter().map(ServiceRegistration::name).collect();
    for name in &names {
        if not_ready.contains(name) {
            health.set_not_serving(name).await;
        } else {
            health.set_serving(name).await;
        }
    }
    health.set_serving("").await;
    on_health(health.clone());

    let reflection = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(abdoseg_protos::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in &names {
            builder = builder.with_service_name(*name);
        }
        builder
    };
    let reflection_v1 = reflection()
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid");

    let mut routes = RoutesBuilder::default();
    routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    for service in services {
        (service.add)(&mut routes);
    }

    let local = listener.local_addr().ok();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stop_accepting = {
        let lifecycle = lifecycle.clone();
        let health = health.clone();
        let names = names.clone();
        let delay = options.shutdown_delay;
        async move {
            lifecycle.shutdown_requested().await;
            health.set_not_serving("").await;
            for name in &names {
                health.set_not_serving(name).await;
            }
            tokio::time::sleep(delay).await;
            closing.cancel();
            tracing::info!("listener closed; draining in-flight calls");
        }
    };
    let server = Server::builder()
        .trace_fn(propagation::server_span)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(RejectionLayer)
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, stop_accepting);
    tracing::info!(address = ?local, services = ?names, "serving");

    let drained = {
        let lifecycle = lifecycle.clone();
        let deadline = options.shutdown_delay + options.shutdown_grace;
        async move {
            lifecycle.shutdown_requested().await;
            tokio::time::sleep(deadline).await;
        }
    };
    tokio::select! {
        result = server => result?,
        () = drained => tracing::warn!(
            grace = ?options.shutdown_grace,
            "in-flight calls did not finish within the grace period; closing them"
        ),
    }
    // The server can also end on its own (listener error): stop the rest too.
    lifecycle.shutdown();
    if !lifecycle.drain_background(options.shutdown_grace).await {
        tracing::warn!("background work did not finish within the grace period");
    }
    tracing::info!("stopped");
    Ok(())
}
