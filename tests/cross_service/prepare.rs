//! PrepareDataset through gRPC on the file store and on S3: a phantom dataset plus the
//! real CT becomes a patient-level split of slice shards whose manifest accounts for
//! every slice; running it again changes nothing; bad cases are reported and skipped.

use std::path::PathBuf;

use abdoseg_dataset::{manifest::Manifest, sha256_hex, shard::decode_all};
use abdoseg_imaging::{
    labels::class_counts,
    nifti::{write_i16, write_labels},
    phantom::{Center, Grid, case_file_names, generate_case},
};
use abdoseg_protos::{
    common::v1::{IntensityScheme, PreprocessingConfig},
    preprocessing::v1::{
        DatasetCase, GetManifestRequest, PrepareDatasetRequest, PrepareDatasetResponse,
        UploadDestination, UploadVolumeRequest, UploadVolumeStart, prepare_dataset_response::Event,
        preprocessing_service_client::PreprocessingServiceClient, upload_destination::Destination,
        upload_volume_request::Message,
    },
};
use abdoseg_storage::{Key, Storage, StoreConfig, keys::DatasetKeys};
use bytes::Bytes;
use tonic::{Code, transport::Channel};

use crate::harness::{Harness, Options};

pub fn real_case_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/real-abdomen")
}

/// The phantoms' grid in these tests: 128 × 128 pixels of 3 mm, 40 slices of 6 mm from
/// over the liver's dome down past the kidneys (every organ; a drawn grid has up to 15
/// times the voxels, and drawing those was most of these tests' time).
const TEST_GRID: Grid = Grid {
    matrix: 128,
    slices: 40,
    spacing: 3.0,
    thickness: 6.0,
};

/// Writes phantom cases 1…`cases` under `raw/{name}/{images}` and `raw/{name}/{labels}`,
/// their label values translated by `numbering`.
async fn put_phantom_cases(
    storage: &Storage,
    name: &str,
    (cases, seed): (usize, u64),
    (images, labels): (&str, &str),
    numbering: [u8; 5],
) {
    for index in 1..=cases {
        let mut case =
            generate_case(seed, index, Center::new(seed, index % 3), Some(TEST_GRID)).unwrap();
        case.labels.data.mapv_inplace(|v| numbering[usize::from(v)]);
        let (image, label) = case_file_names(index);
        for (key, bytes) in [
            (
                format!("raw/{name}/{images}/{image}"),
                write_i16(&case.image, true).unwrap(),
            ),
            (
                format!("raw/{name}/{labels}/{label}"),
                write_labels(&case.labels, true).unwrap(),
            ),
        ] {
            storage
                .put(&Key::parse(&key).unwrap(), Bytes::from(bytes))
                .await
                .unwrap();
        }
    }
}

/// Writes `cases` phantom cases under `raw/{name}` directly into the store.
pub async fn put_phantoms(storage: &Storage, name: &str, cases: usize, seed: u64) {
    let layout = ("images", "labels");
    put_phantom_cases(storage, name, (cases, seed), layout, [0, 1, 2, 3, 4]).await;
}

/// Writes `cases` phantom cases under `raw/{name}` in nnU-Net's layout and numbering
/// (spleen 1, liver 2, kidney_left 3, kidney_right 4, pancreas 5) with its `dataset.json`.
pub async fn put_nnunet_phantoms(storage: &Storage, name: &str, cases: usize, seed: u64) {
    let layout = ("imagesTr", "labelsTr");
    put_phantom_cases(storage, name, (cases, seed), layout, [0, 2, 3, 1, 5]).await;
    let dataset_json = serde_json::json!({
        "labels": {"background": 0, "spleen": 1, "liver": 2, "kidney_left": 3, "kidney_right": 4, "pancreas": 5},
        "file_ending": ".nii.gz"
    });
    storage
        .put_json(
            &Key::parse(&format!("raw/{name}/dataset.json")).unwrap(),
            &dataset_json,
        )
        .await
        .unwrap();
}

/// Uploads the real CT and its labels through UploadVolume as case `Real_00001`.
async fn upload_real_case(client: &mut PreprocessingServiceClient<Channel>, dataset: &str) {
    for (file, label) in [
        ("images/Case_00001_0000.nii.gz", false),
        ("labels/Case_00001.nii.gz", true),
    ] {
        let data =
            std::fs::read(real_case_dir().join(file)).expect("the real case beside the checkout");
        let case = DatasetCase {
            dataset: dataset.into(),
            case_id: "Real_00001".into(),
        };
        let destination = if label {
            Destination::DatasetLabel(case)
        } else {
            Destination::DatasetImage(case)
        };
        let mut messages = vec![UploadVolumeRequest {
            message: Some(Message::Start(UploadVolumeStart {
                destination: Some(UploadDestination {
                    destination: Some(destination),
                }),
                total_size_bytes: data.len() as u64,
                sha256: sha256_hex(&data),
            })),
        }];
        messages.extend(data.chunks(256 << 10).map(|c| UploadVolumeRequest {
            message: Some(Message::Chunk(c.to_vec())),
        }));
        let response = client
            .upload_volume(tokio_stream::iter(messages))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.geometry.unwrap().shape, [122, 101, 112]);
    }
}

pub fn request(source: &str, size: u32) -> PrepareDatasetRequest {
    PrepareDatasetRequest {
        source_prefix: source.into(),
        preprocessing: Some(PreprocessingConfig {
            scheme: IntensityScheme::He as i32,
            slice_width: size,
            slice_height: size,
            ..PreprocessingConfig::default()
        }),
        seed: 42,
        ..PrepareDatasetRequest::default()
    }
}

pub async fn prepare(
    client: &mut PreprocessingServiceClient<Channel>,
    request: PrepareDatasetRequest,
) -> Result<Vec<PrepareDatasetResponse>, tonic::Status> {
    let mut stream = client.prepare_dataset(request).await?.into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.message().await? {
        events.push(event);
    }
    Ok(events)
}

/// Every slice of every shard is in the manifest, with the right class counts.
pub async fn check_manifest(storage: &Storage, manifest: &Manifest) {
    let mut seen = std::collections::HashSet::new();
    for case in &manifest.cases {
        assert!(
            seen.insert(case.case_id.clone()),
            "{} is in two splits",
            case.case_id
        );
        let shard = storage
            .get(&Key::parse(&case.shard_key).unwrap())
            .await
            .unwrap();
        assert_eq!(
            sha256_hex(&shard),
            case.shard_sha256,
            "{} shard digest",
            case.case_id
        );
        let slices = decode_all(&shard).unwrap();
        assert_eq!(slices.len(), case.slices.len(), "{}: slices", case.case_id);
        for ((_, labels), counts) in slices.iter().zip(&case.slices) {
            assert_eq!(&class_counts(labels.iter()), counts);
        }
    }
    let keys = DatasetKeys::new(&abdoseg_storage::Id::parse(&manifest.dataset_id).unwrap());
    let shards = storage
        .list(&Key::parse(&format!("{}/shards", keys.prefix())).unwrap())
        .await
        .unwrap();
    assert_eq!(
        shards.len(),
        manifest.cases.len(),
        "one shard per case, no more"
    );
}

async fn prepares_on(harness: Harness) {
    let mut client = PreprocessingServiceClient::new(harness.channel.clone());
    put_phantoms(&harness.storage, "mixed", 10, 5).await;
    upload_real_case(&mut client, "mixed").await;

    let events = prepare(&mut client, request("raw/mixed", 64))
        .await
        .unwrap();
    let last = events.last().unwrap();
    assert!(
        matches!(last.event, Some(Event::DatasetReady(_))),
        "{last:?}"
    );
    assert_eq!((last.cases_done, last.cases_total), (11, 11));
    assert!(
        events
            .iter()
            .all(|e| !matches!(e.event, Some(Event::CaseFailed(_))))
    );

    let id = last.dataset_id.clone();
    let keys = DatasetKeys::new(&abdoseg_storage::Id::parse(&id).unwrap());
    let manifest: Manifest = harness.storage.get_json(&keys.manifest()).await.unwrap();
    assert_eq!(manifest.cases.len(), 11);
    assert_eq!(last.slices_written as usize, manifest.slice_count());
    // 60/20/20 of 11 patients.
    let count = |s| manifest.cases_in(s).count();
    use abdoseg_dataset::manifest::Split;
    assert_eq!(
        (
            count(Split::Train),
            count(Split::Validation),
            count(Split::Test)
        ),
        (7, 2, 2)
    );
    check_manifest(&harness.storage, &manifest).await;
    let served = client
        .get_manifest(GetManifestRequest {
            dataset_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .manifest
        .unwrap();
    assert_eq!(served.cases.len(), 11);
    assert_eq!(
        served.cases.iter().map(|c| c.slices.len()).sum::<usize>(),
        manifest.slice_count()
    );

    // Again: the same dataset, every case reused, not one object changed.
    let before = harness.storage.list(keys.prefix()).await.unwrap();
    let again = prepare(&mut client, request("raw/mixed", 64))
        .await
        .unwrap();
    assert_eq!(again.last().unwrap().dataset_id, id);
    assert!(
        again
            .iter()
            .filter_map(|e| match &e.event {
                Some(Event::CaseFinished(f)) => Some(f.reused),
                _ => None,
            })
            .all(|reused| reused)
    );
    assert_eq!(harness.storage.list(keys.prefix()).await.unwrap(), before);
    harness.stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn prepares_phantoms_and_the_real_case_on_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::new(format!("file://{}", dir.path().display()).parse().unwrap());
    let storage = Storage::open(&config).unwrap();
    prepares_on(Harness::start_with(storage, Options::default(), None).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prepares_phantoms_and_the_real_case_on_s3() {
    prepares_on(Harness::start_on_s3().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_cases_are_reported_and_the_good_ones_complete() {
    let harness = Harness::start().await;
    let storage = &harness.storage;
    put_phantoms(storage, "bad", 5, 9).await;
    let image = |i: usize| Key::parse(&format!("raw/bad/images/{}", case_file_names(i).0)).unwrap();
    let label = |i: usize| Key::parse(&format!("raw/bad/labels/{}", case_file_names(i).1)).unwrap();
    // Case 2: corrupt (truncated gzip). Case 3: a label map from another case's grid.
    // Case 4: no label map at all.
    let whole = storage.get(&image(2)).await.unwrap();
    storage
        .put(&image(2), whole.slice(..whole.len() / 2))
        .await
        .unwrap();
    let other = storage.get(&label(5)).await.unwrap();
    storage.put(&label(3), other).await.unwrap();
    storage.delete(&label(4)).await.unwrap();

    let mut client = PreprocessingServiceClient::new(harness.channel.clone());
    let events = prepare(&mut client, request("raw/bad", 32)).await.unwrap();
    let failures: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match &e.event {
            Some(Event::CaseFailed(f)) => Some((f.case_id.clone(), f.reason.clone())),
            _ => None,
        })
        .collect();
    let reason = |case: &str| {
        failures
            .iter()
            .find(|(c, _)| c == case)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{case} was not reported: {failures:?}"))
    };
    assert!(
        reason("Case_00002").contains("gzip") || reason("Case_00002").contains("truncated"),
        "{}",
        reason("Case_00002")
    );
    assert!(
        reason("Case_00003").contains("grid"),
        "{}",
        reason("Case_00003")
    );
    assert!(
        reason("Case_00004").contains("missing label"),
        "{}",
        reason("Case_00004")
    );
    let last = events.last().unwrap();
    let Some(Event::DatasetReady(ready)) = &last.event else {
        panic!("the dataset did not complete: {last:?}");
    };
    assert_eq!(ready.cases_failed, 3);
    let manifest = client
        .get_manifest(GetManifestRequest {
            dataset_id: last.dataset_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .manifest
        .unwrap();
    let good: Vec<_> = manifest.cases.iter().map(|c| c.case_id.as_str()).collect();
    assert_eq!(good, ["Case_00001", "Case_00005"]);
    assert_eq!(manifest.failed_cases.len(), 3);

    // Whole-request errors come back as statuses.
    let mut unknown = request("raw/bad", 32);
    unknown.preprocessing.as_mut().unwrap().scheme = 42;
    let err = prepare(&mut client, unknown).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("scheme"), "{}", err.message());
    let err = prepare(&mut client, request("raw/nothing-here", 32))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("no cases"), "{}", err.message());
    let mut bad_split = request("raw/bad", 32);
    bad_split.split = Some(abdoseg_protos::preprocessing::v1::SplitFractions {
        train: 0.9,
        validation: 0.9,
        test: 0.0,
    });
    assert_eq!(
        prepare(&mut client, bad_split).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    harness.stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn nnunet_layouts_are_translated_by_label_name() {
    let harness = Harness::start().await;
    let storage = &harness.storage;
    put_nnunet_phantoms(storage, "nn", 3, 4).await;

    let mut client = PreprocessingServiceClient::new(harness.channel.clone());
    let events = prepare(&mut client, request("raw/nn", 32)).await.unwrap();
    let id = events.last().unwrap().dataset_id.clone();
    let keys = DatasetKeys::new(&abdoseg_storage::Id::parse(&id).unwrap());
    let manifest: Manifest = storage.get_json(&keys.manifest()).await.unwrap();
    assert_eq!(manifest.layout, "nnunet");
    assert_eq!(manifest.cases.len(), 3);
    check_manifest(storage, &manifest).await;
    // Every AbdomenCT-1K class is present after translation, the liver the largest organ.
    let totals = manifest
        .cases
        .iter()
        .flat_map(|c| &c.slices)
        .fold([0u64; 5], |mut t, s| {
            for (a, b) in t.iter_mut().zip(s) {
                *a += b;
            }
            t
        });
    assert!(totals[1..].iter().all(|&v| v > 0), "{totals:?}");
    assert!(
        totals[1] > totals[2] && totals[1] > totals[3] && totals[1] > totals[4],
        "{totals:?}"
    );
    harness.stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn preprocess_volume_uses_the_inference_path() {
    use abdoseg_protos::{common::v1::ObjectRef, preprocessing::v1::PreprocessVolumeRequest};
    let harness = Harness::start().await;
    let data = std::fs::read(real_case_dir().join("images/Case_00001_0000.nii.gz")).unwrap();
    harness
        .storage
        .put(
            &Key::parse("volumes/real.nii.gz").unwrap(),
            Bytes::from(data),
        )
        .await
        .unwrap();
    let mut client = PreprocessingServiceClient::new(harness.channel.clone());
    let response = client
        .preprocess_volume(PreprocessVolumeRequest {
            volume: Some(ObjectRef {
                key: "volumes/real.nii.gz".into(),
                ..ObjectRef::default()
            }),
            preprocessing: request("unused", 64).preprocessing,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.slice_count, 112);
    assert_eq!(response.geometry.unwrap().orientation, "RAS");
    let shard = harness
        .storage
        .get(&Key::parse(&response.slices.unwrap().key).unwrap())
        .await
        .unwrap();
    let slices = decode_all(&shard).unwrap();
    assert_eq!(slices.len(), 112);
    assert_eq!(slices[0].0.dim(), (64, 64));
    // HE output spreads over the whole range somewhere in the body.
    assert!(
        slices
            .iter()
            .any(|(image, _)| image.iter().any(|&v| v > 0.99))
    );

    let missing = client
        .preprocess_volume(PreprocessVolumeRequest {
            volume: Some(ObjectRef {
                key: "volumes/none.nii.gz".into(),
                ..ObjectRef::default()
            }),
            preprocessing: None,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    harness.stack.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn zscore_takes_its_statistics_from_the_training_split() {
    let harness = Harness::start().await;
    put_phantoms(&harness.storage, "z", 5, 13).await;
    let mut client = PreprocessingServiceClient::new(harness.channel.clone());
    let mut zscore = request("raw/z", 32);
    zscore.preprocessing.as_mut().unwrap().scheme = IntensityScheme::Zscore as i32;
    let events = prepare(&mut client, zscore).await.unwrap();
    assert!(matches!(
        events.last().unwrap().event,
        Some(Event::DatasetReady(_))
    ));
    let id = abdoseg_storage::Id::parse(&events.last().unwrap().dataset_id).unwrap();
    let manifest: Manifest = harness
        .storage
        .get_json(&DatasetKeys::new(&id).manifest())
        .await
        .unwrap();
    let [lower, upper, mean, std] = manifest.fingerprint.zscore.expect("zscore statistics");
    // Foreground organs sit between fat and bone.
    assert!(
        lower < mean && mean < upper && std > 0.0,
        "{lower} {upper} {mean} {std}"
    );
    assert!((0.0..300.0).contains(&mean), "{mean}");
    check_manifest(&harness.storage, &manifest).await;
    // Float shards: normalized values, negative for fat and air.
    let shard = harness
        .storage
        .get(&Key::parse(&manifest.cases[0].shard_key).unwrap())
        .await
        .unwrap();
    let slices = decode_all(&shard).unwrap();
    assert!(
        slices
            .iter()
            .any(|(image, _)| image.iter().any(|&v| v < -1.0))
    );
    harness.stack.stop().await.unwrap();
}
