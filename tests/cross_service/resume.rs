//! kill -9 of the preprocessing service mid-job, a restart and the same request again:
//! the job completes, finished cases are reused, no shard is duplicated or corrupt.

use std::process::Child;

use abdoseg_dataset::manifest::Manifest;
use abdoseg_protos::preprocessing::v1::{
    prepare_dataset_response::Event, preprocessing_service_client::PreprocessingServiceClient,
};
use abdoseg_storage::{Id, Storage, StoreConfig, keys::DatasetKeys};
use tonic::transport::Channel;

use crate::{
    harness::spawn_binary,
    prepare::{check_manifest, prepare, put_phantoms, request},
};

fn start(store: &str) -> (Child, String) {
    spawn_binary(
        &[
            "serve",
            "preprocessing",
            "--store",
            store,
            "--preprocess-workers",
            "1",
        ],
        &[],
    )
}

async fn client(url: &str) -> PreprocessingServiceClient<Channel> {
    PreprocessingServiceClient::new(
        Channel::from_shared(url.to_owned())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_job_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let storage = Storage::open(&StoreConfig::new(store.parse().unwrap())).unwrap();
    put_phantoms(&storage, "resume", 8, 21).await;

    let (mut first, url) = start(&store);
    let mut events = client(&url)
        .await
        .prepare_dataset(request("raw/resume", 96))
        .await
        .unwrap()
        .into_inner();
    // Wait until at least one case is finished, then kill without warning.
    let dataset_id = loop {
        let event = events
            .message()
            .await
            .unwrap()
            .expect("the job ended before any case finished");
        if matches!(event.event, Some(Event::CaseFinished(_))) {
            break event.dataset_id;
        }
    };
    first.kill().unwrap();
    first.wait().unwrap();
    let keys = DatasetKeys::new(&Id::parse(&dataset_id).unwrap());
    assert!(
        !storage.exists(&keys.manifest()).await.unwrap(),
        "killed before the end"
    );

    let (mut second, url) = start(&store);
    let events = prepare(&mut client(&url).await, request("raw/resume", 96))
        .await
        .unwrap();
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(events.last().unwrap().dataset_id, dataset_id);
    assert!(matches!(
        events.last().unwrap().event,
        Some(Event::DatasetReady(_))
    ));
    let reused = events
        .iter()
        .filter(|e| matches!(&e.event, Some(Event::CaseFinished(f)) if f.reused))
        .count();
    assert!(reused >= 1, "finished cases are reused after the restart");

    let manifest: Manifest = storage.get_json(&keys.manifest()).await.unwrap();
    assert_eq!(manifest.cases.len(), 8);
    check_manifest(&storage, &manifest).await;
}
