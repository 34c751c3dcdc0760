//! Composes the services into one server: all four on one address (the embedded
//! default), or any one of them alone, with its peers at configured addresses.

use std::net::SocketAddr;

use abdoseg_inference::InferenceService;
use abdoseg_metrics::{MetricsService, inference_client};
use abdoseg_preprocessing::PreprocessingService;
use abdoseg_server::{HostOptions, Lifecycle, ServiceRegistration, config::PeerArgs};
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
}

/// Builds the registrations of the services `config.role` names. A peer that runs in
/// this process is reached at `local`, the address this stack listens on.
pub fn registrations(
    config: &StackConfig,
    lifecycle: &Lifecycle,
    local: SocketAddr,
) -> anyhow::Result<Vec<ServiceRegistration>> {
    let role = config.role;
    let max = config.max_message_bytes;
    let storage = &config.storage;
    let mut services = Vec::new();
    if role.serves(Role::Preprocessing) {
        services.push(
            PreprocessingService::new(
                storage.clone(),
                lifecycle.clone(),
                config.preprocess_workers,
            )
            .registration(max),
        );
    }
    if role.serves(Role::Training) {
        services.push(
            TrainingService::new(storage.clone(), lifecycle.clone(), config.training_jobs)
                .registration(max),
        );
    }
    if role.serves(Role::Inference) {
        services.push(InferenceService::new(storage.clone()).registration(max));
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
        services.push(MetricsService::new(storage.clone(), inference).registration(max));
    }
    Ok(services)
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
    let services = registrations(&config, &lifecycle, addr)?;
    let task = tokio::spawn({
        let lifecycle = lifecycle.clone();
        async move {
            abdoseg_server::serve(listener, services, &[], lifecycle, config.host, |_| {})
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
