//! The services' edges: requests are validated, each cause maps to its own status, and
//! the services read the one store they share (memory and a real S3 endpoint).

use abdoseg_dataset::{
    config::PreprocessConfig,
    manifest::{Fingerprint, Manifest, SplitFractions},
};
use abdoseg_protos::{
    common::v1::ObjectRef,
    inference::v1::{
        SegmentRequest, SegmentStreamRequest, inference_service_client::InferenceServiceClient,
        segment_stream_request::Message,
    },
    metrics::v1::{GetReportRequest, metrics_service_client::MetricsServiceClient},
    preprocessing::v1::{
        GetManifestRequest, preprocessing_service_client::PreprocessingServiceClient,
    },
    training::v1::{
        GetModelRequest, StartTrainingRequest, training_service_client::TrainingServiceClient,
    },
};
use abdoseg_storage::{Id, keys::DatasetKeys};
use bytes::Bytes;
use tonic::Code;

use crate::harness::Harness;

async fn manifest_lookup_reads_the_shared_store(harness: &Harness) {
    let mut client = PreprocessingServiceClient::new(harness.channel.clone());
    let ask = |id: &str| GetManifestRequest {
        dataset_id: id.to_owned(),
    };

    let err = client.get_manifest(ask("../etc")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let err = client.get_manifest(ask("missing")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // A manifest put into the store by anyone is what the service answers with.
    let keys = DatasetKeys::new(&Id::parse("present").unwrap());
    let manifest = Manifest {
        dataset_id: "present".into(),
        format_version: 1,
        abdoseg_version: "test".into(),
        source_prefix: "raw/x".into(),
        layout: "abdomenct1k".into(),
        preprocessing: PreprocessConfig::default(),
        seed: 3,
        split: SplitFractions::default(),
        cases: Vec::new(),
        failed: Vec::new(),
        fingerprint: Fingerprint::default(),
        created_at: 0,
    };
    harness
        .storage
        .put_json(&keys.manifest(), &manifest)
        .await
        .unwrap();
    let served = client
        .get_manifest(ask("present"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(served.manifest.unwrap().seed, 3);

    // A corrupt object is an internal error whose message names no key.
    let broken = DatasetKeys::new(&Id::parse("broken").unwrap());
    harness
        .storage
        .put(&broken.manifest(), Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    let err = client.get_manifest(ask("broken")).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    assert!(!err.message().contains("datasets/"), "{}", err.message());
}

#[tokio::test]
async fn services_share_the_memory_store() {
    let harness = Harness::start().await;
    manifest_lookup_reads_the_shared_store(&harness).await;
    harness.stack.stop().await.unwrap();
}

#[tokio::test]
async fn services_share_the_s3_store() {
    let harness = Harness::start_on_s3().await;
    manifest_lookup_reads_the_shared_store(&harness).await;
    harness.stack.stop().await.unwrap();
}

#[tokio::test]
async fn bad_requests_get_invalid_argument_and_missing_things_not_found() {
    let harness = Harness::start().await;
    let mut training = TrainingServiceClient::new(harness.channel.clone());
    let err = training
        .start_training(StartTrainingRequest { config: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = training
        .get_model(GetModelRequest {
            model_id: "no-such-model".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let mut inference = InferenceServiceClient::new(harness.channel.clone());
    let err = inference
        .segment(SegmentRequest {
            volume: Some(ObjectRef {
                key: "/etc/passwd".into(),
                ..ObjectRef::default()
            }),
            ..SegmentRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // An upload must open with its start message.
    let chunk_first = tokio_stream::iter([SegmentStreamRequest {
        message: Some(Message::Chunk(vec![0u8; 16])),
    }]);
    let err = inference.segment_stream(chunk_first).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");

    let mut metrics = MetricsServiceClient::new(harness.channel.clone());
    let err = metrics
        .get_report(GetReportRequest {
            report_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    harness.stack.stop().await.unwrap();
}
