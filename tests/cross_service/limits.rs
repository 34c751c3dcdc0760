//! Message size limits are enforced as configured, with the code gRPC names for them.

use abdoseg_protos::preprocessing::v1::{
    GetManifestRequest, preprocessing_service_client::PreprocessingServiceClient,
};
use abdoseg_storage::Storage;
use tonic::Code;

use crate::harness::{Harness, Options};

#[tokio::test]
async fn requests_over_the_limit_are_refused() {
    let options = Options {
        max_message_bytes: 4 * 1024,
        ..Options::default()
    };
    let harness = Harness::start_with(Storage::in_memory(), options, None).await;
    let mut client = PreprocessingServiceClient::new(harness.channel.clone());

    let small = client
        .get_manifest(GetManifestRequest {
            dataset_id: "x".repeat(100),
        })
        .await
        .unwrap_err();
    assert_eq!(small.code(), Code::NotFound, "under the limit: {small:?}");

    let large = client
        .get_manifest(GetManifestRequest {
            dataset_id: "x".repeat(8 * 1024),
        })
        .await
        .unwrap_err();
    // gRPC names RESOURCE_EXHAUSTED for a message over the limit (tonic says OUT_OF_RANGE).
    assert_eq!(
        large.code(),
        Code::ResourceExhausted,
        "over the limit: {large:?}"
    );
    harness.stack.stop().await.unwrap();
}
