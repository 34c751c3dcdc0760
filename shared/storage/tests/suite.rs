//! One behavioural suite for the store, run against every backend: memory, a local
//! folder, and a real S3 endpoint (s3s-fs) served inside the test process.

use abdoseg_storage::{
    Id, Key, S3Options, Storage, StorageError, StoreConfig, StoreLocation,
    keys::{DatasetKeys, JobKeys},
};
use abdoseg_testkit::S3Server;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};

fn key(s: &str) -> Key {
    Key::parse(s).unwrap()
}

fn id(s: &str) -> Id {
    Id::parse(s).unwrap()
}

async fn put_get_head_delete(store: &Storage) {
    let k = key("volumes/case-1.nii.gz");
    assert!(!store.exists(&k).await.unwrap());
    let written = store
        .put(&k, Bytes::from_static(b"hello volume"))
        .await
        .unwrap();
    assert_eq!(written.size, 12);
    assert_eq!(
        store.get(&k).await.unwrap(),
        Bytes::from_static(b"hello volume")
    );
    let head = store.head(&k).await.unwrap();
    assert_eq!(head.size, 12);
    assert!(store.exists(&k).await.unwrap());

    store
        .put(&k, Bytes::from_static(b"replaced"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&k).await.unwrap(),
        Bytes::from_static(b"replaced")
    );

    store.delete(&k).await.unwrap();
    assert!(!store.exists(&k).await.unwrap());
    // Deleting twice is fine.
    store.delete(&k).await.unwrap();
}

async fn missing_objects_are_not_found(store: &Storage) {
    let k = key("models/nope/model.json");
    assert!(matches!(
        store.get(&k).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        store.head(&k).await,
        Err(StorageError::NotFound { .. })
    ));
}

async fn ranges(store: &Storage) {
    let k = key("datasets/d/shards/Case_00001.slices");
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    store.put(&k, Bytes::from(data.clone())).await.unwrap();
    let part = store.get_range(&k, 1000..1010).await.unwrap();
    assert_eq!(&part[..], &data[1000..1010]);
    let streamed: Vec<Bytes> = store
        .get_stream(&k)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.concat(), data);
    store.delete(&k).await.unwrap();
}

async fn bounded_reads_refuse_oversized_objects(store: &Storage) {
    let k = key("volumes/big.nii.gz");
    store.put(&k, Bytes::from(vec![7u8; 4096])).await.unwrap();
    assert_eq!(store.get_bounded(&k, 4096).await.unwrap().len(), 4096);
    match store.get_bounded(&k, 4095).await {
        Err(StorageError::TooLarge { size, limit, .. }) => {
            assert_eq!((size, limit), (4096, 4095));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

async fn conditional_put_lets_one_writer_win(store: &Storage) {
    let k = key("jobs/j1/checkpoints/epoch-00001/state.json");
    store
        .put_if_absent(&k, Bytes::from_static(b"first"))
        .await
        .unwrap();
    let second = store.put_if_absent(&k, Bytes::from_static(b"second")).await;
    assert!(
        matches!(second, Err(StorageError::AlreadyExists { .. })),
        "{second:?}"
    );
    assert_eq!(store.get(&k).await.unwrap(), Bytes::from_static(b"first"));
}

async fn multipart_streams_large_objects(store: &Storage) {
    let k = key("predictions/large.nii.gz");
    // Three parts of S3's 5 MiB minimum, the last one short.
    let chunk = Bytes::from(vec![42u8; 1 << 20]);
    let chunks = stream::iter((0..12).map(|_| Ok::<_, StorageError>(chunk.clone())));
    let written = store.put_stream(&k, chunks).await.unwrap();
    assert_eq!(written.size, 12 << 20);
    let read = store.get(&k).await.unwrap();
    assert_eq!(read.len(), 12 << 20);
    assert!(read.iter().all(|&b| b == 42));
}

async fn failed_streams_leave_nothing_behind(store: &Storage) {
    let k = key("predictions/broken.nii.gz");
    let chunks = stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(StorageError::NotFound {
            key: "upstream".into(),
        }),
    ]);
    assert!(store.put_stream(&k, chunks.boxed()).await.is_err());
    assert!(!store.exists(&k).await.unwrap());
}

async fn listing(store: &Storage) {
    let ds = DatasetKeys::new(&id("listing"));
    for case in ["Case_00003", "Case_00001", "Case_00002"] {
        store
            .put(&ds.shard(&id(case)), Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    store
        .put_json(&ds.manifest(), &serde_json::json!({"cases": 3}))
        .await
        .unwrap();
    // A sibling whose name shares the prefix's text must not be listed.
    let sibling = DatasetKeys::new(&id("listing2"));
    store
        .put(&sibling.manifest(), Bytes::from_static(b"{}"))
        .await
        .unwrap();

    let keys: Vec<String> = store
        .list(ds.prefix())
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key.to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "datasets/listing/manifest.json",
            "datasets/listing/shards/Case_00001.slices",
            "datasets/listing/shards/Case_00002.slices",
            "datasets/listing/shards/Case_00003.slices",
        ]
    );
    let children = store.list_children(&DatasetKeys::all()).await.unwrap();
    assert_eq!(children, ["listing", "listing2"]);
    assert!(store.list(&key("nothing/here")).await.unwrap().is_empty());

    let manifest: serde_json::Value = store.get_json(&ds.manifest()).await.unwrap();
    assert_eq!(manifest["cases"], 3);
    assert_eq!(store.delete_prefix(ds.prefix()).await.unwrap(), 4);
    assert!(store.list(ds.prefix()).await.unwrap().is_empty());
}

async fn json_errors_name_the_key(store: &Storage) {
    let k = JobKeys::new(&id("bad-json")).state();
    store
        .put(&k, Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    match store.get_json::<serde_json::Value>(&k).await {
        Err(StorageError::Json { key, .. }) => assert_eq!(key, k.to_string()),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

async fn run_suite(store: Storage) {
    put_get_head_delete(&store).await;
    missing_objects_are_not_found(&store).await;
    ranges(&store).await;
    bounded_reads_refuse_oversized_objects(&store).await;
    conditional_put_lets_one_writer_win(&store).await;
    multipart_streams_large_objects(&store).await;
    failed_streams_leave_nothing_behind(&store).await;
    listing(&store).await;
    json_errors_name_the_key(&store).await;
}

#[tokio::test]
async fn memory_store() {
    run_suite(Storage::open(&StoreConfig::new(StoreLocation::Memory)).unwrap()).await;
}

#[tokio::test]
async fn file_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nested").join("store");
    let url = format!("file://{}", root.display());
    let store = Storage::open(&StoreConfig::new(url.parse().unwrap())).unwrap();
    assert!(root.is_dir(), "opening a file store creates its folder");
    run_suite(store).await;
}

#[tokio::test]
async fn s3_store() {
    let server = S3Server::start().await.unwrap();
    let store = Storage::open(&s3_config(&server, "")).unwrap();
    run_suite(store).await;
}

#[tokio::test]
async fn s3_store_under_a_prefix() {
    let server = S3Server::start().await.unwrap();
    let prefixed = Storage::open(&s3_config(&server, "/team/abdoseg")).unwrap();
    let k = key("models/m/model.json");
    prefixed.put(&k, Bytes::from_static(b"{}")).await.unwrap();
    // The same object seen from the bucket's root sits under the prefix.
    let root = Storage::open(&s3_config(&server, "")).unwrap();
    assert!(
        root.exists(&key("team/abdoseg/models/m/model.json"))
            .await
            .unwrap()
    );
    assert!(!root.exists(&k).await.unwrap());
}

#[tokio::test]
async fn s3_with_wrong_credentials_fails_clearly() {
    let server = S3Server::start().await.unwrap();
    let mut config = s3_config(&server, "");
    config.s3.secret_access_key = Some("wrong".into());
    let store = Storage::open(&config).unwrap();
    let err = store
        .put(&key("volumes/x.nii.gz"), Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Backend { .. }), "{err:?}");
}

fn s3_config(server: &S3Server, prefix: &str) -> StoreConfig {
    StoreConfig::new(format!("s3://{}{prefix}", server.bucket).parse().unwrap()).with_s3(
        S3Options {
            endpoint: Some(server.endpoint.clone()),
            region: Some(server.region.clone()),
            access_key_id: Some(server.access_key_id.clone()),
            secret_access_key: Some(server.secret_access_key.clone()),
            session_token: None,
        },
    )
}

#[test]
fn only_the_owner_clears_the_staging_files_of_interrupted_writes() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("jobs/j1/job.json#3");
    std::fs::create_dir_all(staging.parent().unwrap()).unwrap();
    std::fs::write(&staging, b"{half").unwrap();
    let url = format!("file://{}", dir.path().display());
    // A command-line tool opening the folder leaves a write in flight alone...
    Storage::open(&StoreConfig::new(url.parse().unwrap())).unwrap();
    assert!(staging.exists());
    // ...the server that owns it clears what a killed write left.
    Storage::open(&StoreConfig::new(url.parse().unwrap()).as_owner()).unwrap();
    assert!(!staging.exists());
}
