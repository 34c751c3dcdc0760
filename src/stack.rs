//! Composes the services into one server: all four on one address (the embedded
//! default), or any one of them alone, with its peers at configured addresses.

use std::net::SocketAddr;

use abdoseg_inference::{InferenceLimits, InferenceService};
use abdoseg_metrics::{MetricsService, inference_client};
use abdoseg_preprocessing::PreprocessingService;
use abdoseg_server::{
    Health, HostOptions, Lifecycle, RequestLimits, ServiceRegistration, config::PeerArgs,
    prometheus::Metrics,
};
use abdoseg_storage::Storage;
use abdoseg_training::TrainingService;
use anyhow::Context;
use tokio::{net::TcpListener, task::JoinHandle};

/// Which services a process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// All four services on one address.
    All,
    Preprocessing,
    Training,
    Inference,
    Metrics,
}

impl Role {
    fn serves(self, other: Role) -> bool {
        self == Role::All || self == other
    }

    /// The name used for telemetry, e.g. `abdoseg-inference`.
    pub fn service_name(self) -> &'static str {
        match self {
            Role::All => "abdoseg",
            Role::Preprocessing => "abdoseg-preprocessing",
            Role::Training => "abdoseg-training",
            Role::Inference => "abdoseg-inference",
            Role::Metrics => "abdoseg-metrics",
        }
    }
}

/// Everything a stack needs besides its listener.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub role: Role,
    pub storage: Storage,
    pub peers: PeerArgs,
    pub max_message_bytes: usize,
    pub host: HostOptions,
    /// Cases the preprocessing service prepares at once.
    pub preprocess_workers: usize,
    /// Training jobs that run at once.
    pub training_jobs: usize,
    /// The inference service's bounds.
    pub inference: InferenceLimits,
    /// A model the inference service loads at start (NOT_SERVING until it has).
    pub default_model: Option<String>,
    /// The Prometheus registry the services register their metrics in.
    pub metrics: Metrics,
    /// The request bounds every service applies; one memory budget for the process.
    pub requests: RequestLimits,
}

/// The services of a stack, and the inference service when it must warm a model first.
#[derive(Debug)]
pub struct Registrations {
    pub services: Vec<ServiceRegistration>,
    warm_up: Option<InferenceService>,
}

impl Registrations {
    /// Serves them on `listener` until `lifecycle` stops; a default model is loaded in the
    /// background (retrying while it cannot be) and the inference service turns SERVING
    /// once it is.
    pub async fn serve(
        self,
        listener: TcpListener,
        lifecycle: Lifecycle,
        host: HostOptions,
    ) -> Result<(), tonic::transport::Error> {
        let not_ready: &[&str] = if self.warm_up.is_some() {
            &[abdoseg_inference::SERVICE_NAME]
        } else {
            &[]
        };
        let warm_up = self.warm_up;
        let background = lifecycle.clone();
        abdoseg_server::serve(
            listener,
            self.services,
            not_ready,
            lifecycle,
            host,
            move |health| {
                if let Some(service) = warm_up {
                    background.spawn(warm(service, health));
                }
            },
        )
        .await
    }
}

async fn warm(service: InferenceService, health: Health) {
    loop {
        match service.warm_default_model().await {
            Ok(()) => {
                tracing::info!(model = ?service.default_model(), "default model loaded; serving");
                health.set_serving(abdoseg_inference::SERVICE_NAME).await;
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "the default model cannot be loaded yet; retrying in 5 s");
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        }
    }
}

/// Builds the registrations of the services `config.role` names. A peer that runs in
/// this process is reached at `local`, the address this stack listens on.
pub fn registrations(
    config: &StackConfig,
    lifecycle: &Lifecycle,
    local: SocketAddr,
) -> anyhow::Result<Registrations> {
    let role = config.role;
    let max = config.max_message_bytes;
    let storage = &config.storage;
    let mut services = Vec::new();
    let mut warm_up = None;
    if role.serves(Role::Preprocessing) {
        services.push(
            PreprocessingService::new(
                storage.clone(),
                lifecycle.clone(),
                config.preprocess_workers,
            )
            .with_request_limits(config.requests.clone())
            .registration(max),
        );
    }
    if role.serves(Role::Training) {
        services.push(
            TrainingService::new(storage.clone(), lifecycle.clone(), config.training_jobs)
                .with_budget(config.requests.budget.clone())
                .registration(max),
        );
    }
    if role.serves(Role::Inference) {
        let inference = InferenceService::with_limits(
            storage.clone(),
            config.inference,
            config.default_model.clone(),
        )
        .context("the inference service cannot use its device")?
        .with_request_limits(config.requests.clone());
        if config.default_model.is_some() {
            warm_up = Some(inference.clone());
        }
        services.push(inference.registration(max));
    }
    if role.serves(Role::Metrics) {
        let url = match (&config.peers.inference_url, role) {
            (Some(url), _) => url.clone(),
            (None, Role::All) => format!("http://{local}"),
            (None, _) => anyhow::bail!(
                "the metrics service needs the inference service's address: \
                 set --inference-url or ABDOSEG_INFERENCE_URL"
            ),
        };
        let inference =
            inference_client(&url).with_context(|| format!("invalid inference URL {url:?}"))?;
        services.push(
            MetricsService::new(storage.clone(), inference, &config.metrics)
                .with_request_limits(config.requests.clone())
                .registration(max),
        );
    }
    Ok(Registrations { services, warm_up })
}

/// A stack serving in the background of this process.
#[derive(Debug)]
pub struct RunningStack {
    /// The address it listens on (the real port when asked for port 0).
    pub addr: SocketAddr,
    /// Shut it down with `lifecycle.shutdown()`, then await `task`.
    pub lifecycle: Lifecycle,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl RunningStack {
    /// The `http://` URL clients connect to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Asks the stack to stop and waits until it has.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.lifecycle.shutdown();
        self.task.await.context("the server task panicked")?
    }
}

/// Starts a stack on `listener` in the background.
pub fn spawn(listener: TcpListener, config: StackConfig) -> anyhow::Result<RunningStack> {
    let addr = listener.local_addr()?;
    let lifecycle = Lifecycle::new();
    let registrations = registrations(&config, &lifecycle, addr)?;
    let task = tokio::spawn({
        let lifecycle = lifecycle.clone();
        async move {
            registrations
                .serve(listener, lifecycle, config.host)
                .await
                .context("the gRPC server failed")
        }
    });
    Ok(RunningStack {
        addr,
        lifecycle,
        task,
    })
}
