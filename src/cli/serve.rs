//! `abdoseg serve all|preprocessing|training|inference|metrics`.

use std::{io::Write, process::ExitCode};

use abdoseg_server::{
    HostOptions, Lifecycle,
    config::{LogArgs, PeerArgs, ServerArgs, StoreArgs},
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
    log: LogArgs,
    /// Cases the preprocessing service prepares at once (each also uses every core for
    /// its slices).
    #[arg(long, env = "ABDOSEG_PREPROCESS_WORKERS", default_value_t = 2)]
    preprocess_workers: usize,
    /// Training jobs that run at once; later jobs wait in order. Each uses every core.
    #[arg(long, env = "ABDOSEG_TRAINING_JOBS", default_value_t = 1)]
    training_jobs: usize,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let _telemetry = telemetry::init(args.role.service_name(), args.log.log_format == "json")?;
    let store = args.store.store_config()?;
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
    };
    let lifecycle = Lifecycle::new();
    let services = registrations(&config, &lifecycle, addr)?;

    // Scripts and tests read the real address (port 0 picks one) from this line.
    println!("abdoseg listening on {addr}");
    std::io::stdout().flush()?;

    tokio::spawn({
        let lifecycle = lifecycle.clone();
        async move {
            wait_for_signal().await;
            lifecycle.shutdown();
        }
    });
    abdoseg_server::serve(listener, services, &[], lifecycle, config.host, |_| {}).await?;
    Ok(ExitCode::SUCCESS)
}
