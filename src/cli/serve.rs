//! `abdoseg serve all|preprocessing|training|inference|metrics`.

use std::{io::Write, process::ExitCode};

use abdoseg_inference::InferenceLimits;
use abdoseg_model::device::DeviceRequest;
use abdoseg_server::{
    HostOptions, Lifecycle,
    config::{LimitArgs, LogArgs, PeerArgs, ServerArgs, StoreArgs},
    prometheus::Metrics,
    telemetry, wait_for_signal,
};
use abdoseg_storage::Storage;
use anyhow::Context;
use tokio::net::TcpListener;

use crate::stack::{Role, StackConfig, registrations};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Which services to serve.
    #[arg(value_enum)]
    role: Role,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    peers: PeerArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    log: LogArgs,
    /// Cases the preprocessing service prepares at once (each also uses every core for
    /// its slices).
    #[arg(long, env = "ABDOSEG_PREPROCESS_WORKERS", default_value_t = 2)]
    preprocess_workers: usize,
    /// Training jobs that run at once; later jobs wait in order. Each uses every core.
    #[arg(long, env = "ABDOSEG_TRAINING_JOBS", default_value_t = 1)]
    training_jobs: usize,
    #[command(flatten)]
    inference: InferenceArgs,
}

/// The inference service's bounds and its default model.
#[derive(Debug, clap::Args)]
struct InferenceArgs {
    /// A model (id or `latest`) loaded at start; inference reports NOT_SERVING until then.
    #[arg(long, env = "ABDOSEG_DEFAULT_MODEL")]
    default_model: Option<String>,
    /// Segmentations that run at once.
    #[arg(long, env = "ABDOSEG_INFERENCE_CONCURRENCY", default_value_t = 1)]
    inference_concurrency: usize,
    /// Segmentations that may wait beyond those; more get RESOURCE_EXHAUSTED.
    #[arg(long, env = "ABDOSEG_INFERENCE_QUEUE", default_value_t = 8)]
    inference_queue: usize,
    /// Slices per forward pass.
    #[arg(long, env = "ABDOSEG_INFERENCE_BATCH_SIZE", default_value_t = 16)]
    inference_batch_size: usize,
    /// Largest volume file accepted, in MiB.
    #[arg(long, env = "ABDOSEG_MAX_VOLUME_MIB", default_value_t = 1024)]
    max_volume_mib: u64,
    /// Memory the warm models' weights may take, in MiB.
    #[arg(long, env = "ABDOSEG_MODEL_CACHE_MIB", default_value_t = 2048)]
    model_cache_mib: u64,
    /// Where inference runs: `auto` takes CUDA when a driver is there, else the CPU.
    #[arg(
        long,
        env = "ABDOSEG_INFERENCE_DEVICE",
        value_enum,
        default_value = "auto"
    )]
    inference_device: DeviceName,
    /// Answer `latest` with an error while the store has no trained model, instead of the
    /// model shipped in the binary (shared/registry/bundled/README.md).
    #[arg(long, env = "ABDOSEG_NO_BUNDLED_MODEL")]
    no_bundled_model: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DeviceName {
    Auto,
    Cpu,
    Cuda,
}

impl InferenceArgs {
    fn limits(&self) -> InferenceLimits {
        InferenceLimits {
            concurrency: self.inference_concurrency.max(1),
            queue_capacity: self.inference_queue,
            batch_size: self.inference_batch_size.max(1),
            max_input_bytes: self.max_volume_mib << 20,
            cache_bytes: self.model_cache_mib << 20,
            device: match self.inference_device {
                DeviceName::Auto => DeviceRequest::Auto,
                DeviceName::Cpu => DeviceRequest::Cpu,
                DeviceName::Cuda => DeviceRequest::Cuda,
            },
            bundled_model: !self.no_bundled_model,
            ..InferenceLimits::default()
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let _telemetry = telemetry::init(args.role.service_name(), args.log.log_format == "json")?;
    // This process owns the store: it may clear what interrupted writes left.
    let store = args.store.store_config()?.as_owner();
    let storage = Storage::open(&store).context("cannot open the object store")?;
    tracing::info!(store = %store.location.to_url(), "object store opened");

    let listener = TcpListener::bind(args.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.server.listen))?;
    let addr = listener.local_addr()?;
    let config = StackConfig {
        role: args.role,
        storage,
        peers: args.peers,
        max_message_bytes: args.server.max_message_bytes,
        host: HostOptions {
            shutdown_grace: args.server.shutdown_grace(),
            shutdown_delay: args.server.shutdown_delay(),
        },
        preprocess_workers: args.preprocess_workers,
        training_jobs: args.training_jobs,
        inference: args.inference.limits(),
        default_model: args.inference.default_model.clone(),
        metrics: Metrics::new(),
        requests: args.limits.request_limits(),
    };
    tracing::info!(
        memory_budget_mib = config.requests.budget.total_bytes() >> 20,
        "request bounds set"
    );
    let lifecycle = Lifecycle::new();
    let registrations = registrations(&config, &lifecycle, addr)?;
    let metrics_addr = match args.server.metrics_listen {
        Some(at) => {
            let listener = TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen for metrics on {at}"))?;
            let metrics_addr = listener.local_addr()?;
            tokio::spawn(config.metrics.clone().serve(listener, lifecycle.clone()));
            Some(metrics_addr)
        }
        None => None,
    };

    // Scripts and tests read the real addresses (port 0 picks one) from these lines.
    println!("abdoseg listening on {addr}");
    if let Some(metrics_addr) = metrics_addr {
        println!("abdoseg metrics on http://{metrics_addr}/metrics");
    }
    std::io::stdout().flush()?;

    tokio::spawn({
        let lifecycle = lifecycle.clone();
        async move {
            wait_for_signal().await;
            lifecycle.shutdown();
        }
    });
    registrations
        .serve(listener, lifecycle, config.host)
        .await?;
    Ok(ExitCode::SUCCESS)
}
