//! Every service reports SERVING under its fully qualified name.

use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::harness::Harness;

pub const SERVICES: [&str; 4] = [
    "abdoseg.preprocessing.v1.PreprocessingService",
    "abdoseg.training.v1.TrainingService",
    "abdoseg.inference.v1.InferenceService",
    "abdoseg.metrics.v1.MetricsService",
];

pub async fn status_of(
    client: &mut HealthClient<tonic::transport::Channel>,
    name: &str,
) -> ServingStatus {
    client
        .check(HealthCheckRequest {
            service: name.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

#[tokio::test]
async fn every_service_and_the_server_are_serving() {
    let harness = Harness::start().await;
    let mut health = HealthClient::new(harness.channel.clone());
    for name in SERVICES.into_iter().chain([""]) {
        assert_eq!(
            status_of(&mut health, name).await,
            ServingStatus::Serving,
            "{name:?}"
        );
    }
    harness.stack.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_services_are_not_found() {
    let harness = Harness::start().await;
    let mut health = HealthClient::new(harness.channel.clone());
    let err = health
        .check(HealthCheckRequest {
            service: "abdoseg.nothing.v1.NothingService".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    harness.stack.stop().await.unwrap();
}
