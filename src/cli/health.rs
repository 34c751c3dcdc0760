//! `abdoseg health`: the gRPC health of each service on a running server.

use std::process::ExitCode;

use abdoseg_server::config::DEFAULT_LISTEN;
use anyhow::Context;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The services a full server hosts, as health checks name them.
pub const SERVICE_NAMES: [&str; 4] = [
    "abdoseg.preprocessing.v1.PreprocessingService",
    "abdoseg.training.v1.TrainingService",
    "abdoseg.inference.v1.InferenceService",
    "abdoseg.metrics.v1.MetricsService",
];

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The server's URL.
    #[arg(long, env = "ABDOSEG_URL", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
    url: String,
    /// Check only this service (fully qualified name); all four by default.
    #[arg(long)]
    service: Option<String>,
}

pub async fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let channel = tonic::transport::Endpoint::from_shared(args.url.clone())
        .with_context(|| format!("invalid server URL {:?}", args.url))?
        .connect()
        .await
        .with_context(|| format!("cannot reach {}", args.url))?;
    let mut client = HealthClient::new(channel);
    let names: Vec<String> = match args.service {
        Some(name) => vec![name],
        None => SERVICE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut all_serving = true;
    for name in names {
        let status = match client
            .check(HealthCheckRequest {
                service: name.clone(),
            })
            .await
        {
            Ok(response) => response.into_inner().status().as_str_name().to_owned(),
            Err(status) if status.code() == tonic::Code::NotFound => "NOT_HOSTED".to_owned(),
            Err(status) => return Err(status).context("health check failed"),
        };
        all_serving &= status == ServingStatus::Serving.as_str_name();
        println!("{name:<48} {status}");
    }
    Ok(if all_serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
