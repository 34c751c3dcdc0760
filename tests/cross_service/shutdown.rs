//! Graceful shutdown: health turns NOT_SERVING first, new connections are refused,
//! and calls that never end are cut after the grace period instead of hanging.

use std::time::Duration;

use abdoseg_server::HostOptions;
use abdoseg_storage::Storage;
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    harness::{Harness, Options},
    health::{SERVICES, status_of},
};

fn options(grace: Duration, delay: Duration) -> Options {
    Options {
        host: HostOptions {
            shutdown_grace: grace,
            shutdown_delay: delay,
        },
        ..Options::default()
    }
}

#[tokio::test]
async fn health_turns_not_serving_before_the_listener_closes() {
    let harness = Harness::start_with(
        Storage::in_memory(),
        options(Duration::from_secs(5), Duration::from_millis(800)),
        None,
    )
    .await;
    let mut health = HealthClient::new(harness.channel.clone());
    assert_eq!(status_of(&mut health, "").await, ServingStatus::Serving);

    harness.stack.lifecycle.shutdown();
    // Within the shutdown delay the server still answers, and says it is going away.
    for name in SERVICES.into_iter().chain([""]) {
        let status = wait_for(&mut health, name, ServingStatus::NotServing).await;
        assert_eq!(status, ServingStatus::NotServing, "{name:?}");
    }
    let addr = harness.stack.addr;
    tokio::time::timeout(Duration::from_secs(20), harness.stack.stop())
        .await
        .expect("the stack stops")
        .unwrap();
    // Once stopped, nothing listens there any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

async fn wait_for(
    health: &mut HealthClient<tonic::transport::Channel>,
    name: &str,
    wanted: ServingStatus,
) -> ServingStatus {
    let mut status = status_of(health, name).await;
    for _ in 0..50 {
        if status == wanted {
            break;
        }
        tokio::task::yield_now().await;
        status = status_of(health, name).await;
    }
    status
}

#[tokio::test]
async fn calls_that_never_end_are_cut_after_the_grace_period() {
    let harness = Harness::start_with(
        Storage::in_memory(),
        options(Duration::from_millis(300), Duration::ZERO),
        None,
    )
    .await;
    // A health watch is a stream that only ends when the server does.
    let mut health = HealthClient::new(harness.channel.clone());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    let stopped = tokio::time::timeout(Duration::from_secs(20), harness.stack.stop()).await;
    assert!(
        stopped.is_ok(),
        "an open stream must not hold shutdown forever"
    );
    stopped.unwrap().unwrap();
}

#[tokio::test]
async fn an_open_health_watch_sees_not_serving_and_ends_with_the_delay() {
    let delay = Duration::from_millis(300);
    let harness = Harness::start_with(
        Storage::in_memory(),
        // A grace far longer than the test: the watch must not wait for it.
        options(Duration::from_secs(60), delay),
        None,
    )
    .await;
    let mut health = HealthClient::new(harness.channel.clone());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );
    let started = tokio::time::Instant::now();
    harness.stack.lifecycle.shutdown();
    let mut seen = Vec::new();
    while let Some(Ok(update)) = watch.next().await {
        seen.push(update.status());
    }
    assert_eq!(seen, vec![ServingStatus::NotServing]);
    tokio::time::timeout(Duration::from_secs(5), harness.stack.stop())
        .await
        .expect("the stack stops")
        .unwrap();
    assert!(
        started.elapsed() < delay + Duration::from_secs(1),
        "stopped after {:?}",
        started.elapsed()
    );
}
