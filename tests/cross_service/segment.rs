//! Segment through gRPC with a model trained through gRPC: the label map lands in the
//! store on the input's exact grid (the real CT included), with organ figures, digests
//! and timings; bad input gets a clear status and the service stays up.

use abdoseg_dataset::sha256_hex;
use abdoseg_imaging::nifti::{ReadLimits, read_ct, read_labels};
use abdoseg_protos::training::v1::TrainingConfig;
use abdoseg_protos::{
    common::v1::{ObjectRef, Organ},
    inference::v1::{
        GetModelStatusRequest, LoadModelRequest, SegmentOptions, SegmentRequest,
        inference_service_client::InferenceServiceClient,
    },
    training::v1::{JobState, training_service_client::TrainingServiceClient},
};
use abdoseg_storage::{Key, Storage};
use bytes::Bytes;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient};

use crate::{
    harness::{Harness, Options},
    health::status_of,
    prepare::real_case_dir,
    training::{config, small_dataset, start, wait_for_state},
};

fn real_ct_path() -> std::path::PathBuf {
    real_case_dir().join("images/Case_00001_0000.nii.gz")
}

/// The real CT into the store as `volumes/real.nii.gz`.
async fn put_real_ct(storage: &Storage) {
    let bytes = std::fs::read(real_ct_path()).unwrap();
    storage
        .put(
            &Key::parse("volumes/real.nii.gz").unwrap(),
            Bytes::from(bytes),
        )
        .await
        .unwrap();
}

/// An 8×8×4 int16 volume with a 1 mm identity grid.
fn tiny_volume() -> abdoseg_imaging::Volume<i16> {
    let mut affine = [[0.0; 4]; 4];
    for (i, row) in affine.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    abdoseg_imaging::Volume {
        geometry: abdoseg_imaging::Geometry::new([8, 8, 4], affine).unwrap(),
        data: ndarray::Array3::zeros((4, 8, 8)),
    }
}

fn request(key: &str, model_id: &str) -> SegmentRequest {
    SegmentRequest {
        volume: Some(ObjectRef {
            key: key.into(),
            ..ObjectRef::default()
        }),
        model_id: model_id.into(),
        ..SegmentRequest::default()
    }
}

/// Segments `key` and checks the label map against the input's grid.
pub(crate) async fn segment_and_check(
    harness: &Harness,
    client: &mut InferenceServiceClient<Channel>,
    key: &str,
    model_id: &str,
) {
    let response = client
        .segment(request(key, model_id))
        .await
        .unwrap()
        .into_inner();
    let summary = response.summary.unwrap();
    assert_eq!(summary.model_id, model_id);
    let input = harness
        .storage
        .get(&Key::parse(key).unwrap())
        .await
        .unwrap();
    assert_eq!(summary.input_sha256, sha256_hex(&input));
    let written = harness
        .storage
        .get(&Key::parse(&response.label_map.unwrap().key).unwrap())
        .await
        .unwrap();
    assert_eq!(summary.output_sha256, sha256_hex(&written));
    let ct = read_ct(&input, &ReadLimits::default()).unwrap();
    let labels = read_labels(&written, &ReadLimits::default()).unwrap();
    assert!(labels.geometry.same_grid(&ct.geometry), "{key}: same grid");
    assert_eq!(
        labels.geometry.affine(),
        ct.geometry.affine(),
        "{key}: same affine"
    );
    assert!(labels.data.iter().all(|&v| v < 5));
    assert_eq!(summary.organs.len(), 4);
    assert_eq!(summary.organs[0].organ, Organ::Liver as i32);
    for organ in &summary.organs {
        let class = (organ.organ - 1) as u8;
        let count = labels.data.iter().filter(|&&v| v == class).count() as u64;
        assert_eq!(organ.voxel_count, count, "{key}: organ {}", organ.organ);
        let ml = count as f64 * ct.geometry.voxel_volume_ml();
        assert!((organ.volume_ml - ml).abs() < 1e-6 * ml.max(1.0));
    }
    let geometry = summary.geometry.unwrap();
    let shape: Vec<u32> = ct.geometry.shape().iter().map(|&v| v as u32).collect();
    assert_eq!(geometry.shape, shape);
    let timings = summary.timings.unwrap();
    assert!(timings.inference.is_some() && timings.preprocess.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn segment_writes_label_maps_on_the_input_grid() {
    let harness = Harness::start().await;
    let dataset_id = small_dataset(&harness).await;
    let mut training = TrainingServiceClient::new(harness.channel.clone());
    let job = start(&mut training, config(&dataset_id, 1)).await;
    let job = wait_for_state(&mut training, &job.job_id).await;
    assert_eq!(job.state, JobState::Succeeded as i32, "{}", job.error);

    let mut client = InferenceServiceClient::new(harness.channel.clone());
    // A phantom in the store, and the real CT (its own orientation and dtype).
    segment_and_check(
        &harness,
        &mut client,
        "raw/train/images/Case_00001_0000.nii.gz",
        &job.model_id,
    )
    .await;
    put_real_ct(&harness.storage).await;
    segment_and_check(&harness, &mut client, "volumes/real.nii.gz", &job.model_id).await;

    // "latest" is the model just trained; options are honoured.
    let response = client
        .segment(SegmentRequest {
            options: Some(SegmentOptions {
                keep_largest_components: Some(false),
                batch_size: 3,
            }),
            output_key: "predictions/plain.nii".into(),
            ..request("raw/train/images/Case_00002_0000.nii.gz", "latest")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.label_map.unwrap().key, "predictions/plain.nii");
    assert_eq!(response.summary.unwrap().model_id, job.model_id);

    // Bad input: a clear status, and the service stays up.
    let real = harness
        .storage
        .get(&Key::parse("volumes/real.nii.gz").unwrap())
        .await
        .unwrap();
    let plain = abdoseg_imaging::nifti::write_i16(&tiny_volume(), false).unwrap();
    let with_dims = |dims: &[(usize, i16)]| {
        let mut bytes = plain.clone();
        for &(index, value) in dims {
            let at = 40 + 2 * index; // dim[index] in the NIfTI-1 header
            bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
        }
        Bytes::from(bytes)
    };
    let bad_inputs = [
        (
            "not-nifti.nii",
            Bytes::from_static(b"this is not a NIfTI file, just some text"),
        ),
        ("truncated.nii.gz", real.slice(..real.len() / 2)),
        ("four-d.nii", with_dims(&[(0, 4), (4, 2)])),
        (
            "absurd.nii",
            with_dims(&[(1, 32000), (2, 32000), (3, 32000)]),
        ),
    ];
    for (name, bytes) in bad_inputs {
        let key = format!("volumes/{name}");
        harness
            .storage
            .put(&Key::parse(&key).unwrap(), bytes)
            .await
            .unwrap();
        let bad = client.segment(request(&key, "latest")).await.unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument, "{name}: {bad:?}");
        assert!(
            bad.message().contains("cannot be read"),
            "{name}: {}",
            bad.message()
        );
    }
    let missing = client
        .segment(request("volumes/none.nii.gz", "latest"))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let unknown = client
        .segment(request("volumes/real.nii.gz", "model-unknown"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // The same through SegmentStream, from the real binary's `abdoseg segment`.
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("labels.nii.gz");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_abdoseg"))
        .args([
            "segment",
            "--url",
            &harness.stack.url(),
            "--model",
            &job.model_id,
        ])
        .arg(real_ct_path())
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains("pancreas"));
    let streamed = read_labels(&std::fs::read(&output).unwrap(), &ReadLimits::default()).unwrap();
    let real = read_ct(
        &std::fs::read(real_ct_path()).unwrap(),
        &ReadLimits::default(),
    )
    .unwrap();
    assert_eq!(streamed.geometry.affine(), real.geometry.affine());
    assert_eq!(streamed.data.dim(), real.data.dim());

    // A deadline shorter than the work: the call ends with DEADLINE_EXCEEDED and the work
    // stops (the model's served count does not move); the next call is served.
    // tonic's client enforces the deadline too, so either side may answer first.
    let mut late = tonic::Request::new(request("volumes/real.nii.gz", &job.model_id));
    late.set_timeout(std::time::Duration::from_millis(30));
    let err = client.segment(late).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;

    let loaded = client
        .load_model(LoadModelRequest {
            model_id: job.model_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert!(loaded.memory_bytes > 0);
    let status = client
        .get_model_status(GetModelStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.models.len(), 1);
    assert_eq!(status.models[0].requests_served, 4);
    assert_eq!(status.queue_depth, 0);
    harness.stack.stop().await.unwrap();
}

/// Two models warm at once; 20 concurrent calls against a queue of 3 either succeed or
/// get RESOURCE_EXHAUSTED, and the service stays SERVING.
#[tokio::test(flavor = "multi_thread")]
async fn two_models_and_a_bounded_queue() {
    let options = Options {
        inference: abdoseg_inference::InferenceLimits {
            concurrency: 1,
            queue_capacity: 2,
            ..Default::default()
        },
        ..Options::default()
    };
    let harness = Harness::start_with(Storage::in_memory(), options, None).await;
    let dataset_id = small_dataset(&harness).await;
    let mut training = TrainingServiceClient::new(harness.channel.clone());
    let mut models = Vec::new();
    for base_filters in [4, 6] {
        let job = start(
            &mut training,
            TrainingConfig {
                base_filters,
                ..config(&dataset_id, 1)
            },
        )
        .await;
        let job = wait_for_state(&mut training, &job.job_id).await;
        assert_eq!(job.state, JobState::Succeeded as i32, "{}", job.error);
        models.push(job.model_id);
    }
    put_real_ct(&harness.storage).await;
    let mut client = InferenceServiceClient::new(harness.channel.clone());
    for model in &models {
        let summary = client
            .segment(request("volumes/real.nii.gz", model))
            .await
            .unwrap()
            .into_inner()
            .summary
            .unwrap();
        assert_eq!(&summary.model_id, model);
    }
    let status = client
        .get_model_status(GetModelStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.models.len(), 2, "both models stay warm");

    // Collected: every call is in flight before the first answer is awaited.
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let mut client = client.clone();
            let model = models[i % 2].clone();
            tokio::spawn(
                async move { client.segment(request("volumes/real.nii.gz", &model)).await },
            )
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(status) if status.code() == Code::ResourceExhausted => refused += 1,
            Err(status) => panic!("neither success nor RESOURCE_EXHAUSTED: {status:?}"),
        }
    }
    assert_eq!(ok + refused, 20);
    assert!(ok >= 3, "the queue's places were served: {ok}");
    assert!(
        refused >= 1,
        "beyond the queue, calls are refused: {refused}"
    );
    let mut health = HealthClient::new(harness.channel.clone());
    assert_eq!(
        status_of(&mut health, abdoseg_inference::SERVICE_NAME).await,
        ServingStatus::Serving
    );
    harness.stack.stop().await.unwrap();
}

/// With a default model the service is NOT_SERVING until the model is loaded (here with
/// the shipped model turned off: `latest` waits for a trained one).
#[tokio::test(flavor = "multi_thread")]
async fn a_default_model_gates_serving() {
    let options = Options {
        default_model: Some("latest".into()),
        inference: abdoseg_inference::InferenceLimits {
            bundled_model: false,
            ..Default::default()
        },
        ..Options::default()
    };
    let harness = Harness::start_with(Storage::in_memory(), options, None).await;
    let mut health = HealthClient::new(harness.channel.clone());
    assert_eq!(
        status_of(&mut health, abdoseg_inference::SERVICE_NAME).await,
        ServingStatus::NotServing,
        "no model exists yet"
    );
    let mut client = InferenceServiceClient::new(harness.channel.clone());
    let status = client
        .get_model_status(GetModelStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!status.ready);
    assert_eq!(status.default_model_id, "latest");

    let dataset_id = small_dataset(&harness).await;
    let mut training = TrainingServiceClient::new(harness.channel.clone());
    let job = start(&mut training, config(&dataset_id, 1)).await;
    wait_for_state(&mut training, &job.job_id).await;
    let mut serving = false;
    for _ in 0..100 {
        if status_of(&mut health, abdoseg_inference::SERVICE_NAME).await == ServingStatus::Serving {
            serving = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(serving, "SERVING once the default model could be loaded");
    harness.stack.stop().await.unwrap();
}

/// An empty store answers `latest` with the model shipped in the binary: it loads, and
/// segments the real CT on its exact grid with the organs where the reference has them
/// (a floor well below what docs/benchmarks.md records, to catch a broken bundle or a
/// preprocessing drift). The training service's registry stays empty.
#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_model_answers_while_the_store_has_none() {
    let harness = Harness::start().await;
    let mut client = InferenceServiceClient::new(harness.channel.clone());
    put_real_ct(&harness.storage).await;
    let response = client
        .segment(request("volumes/real.nii.gz", "latest"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.summary.as_ref().unwrap().model_id,
        abdoseg_registry::BUNDLED_MODEL_ID
    );
    segment_and_check(
        &harness,
        &mut client,
        "volumes/real.nii.gz",
        abdoseg_registry::BUNDLED_MODEL_ID,
    )
    .await;
    let written = harness
        .storage
        .get(&Key::parse(&response.label_map.unwrap().key).unwrap())
        .await
        .unwrap();
    let predicted = read_labels(&written, &ReadLimits::default()).unwrap();
    let truth_bytes = std::fs::read(real_case_dir().join("labels/Case_00001.nii.gz")).unwrap();
    let truth = read_labels(&truth_bytes, &ReadLimits::default()).unwrap();
    for (organ, floor) in [(1u8, 0.75), (2, 0.7), (3, 0.7)] {
        let (mut both, mut either) = (0u64, 0u64);
        for (&p, &t) in predicted.data.iter().zip(truth.data.iter()) {
            both += u64::from(p == organ && t == organ);
            either += u64::from(p == organ || t == organ);
        }
        let iou = both as f64 / either.max(1) as f64;
        assert!(iou > floor, "organ {organ}: IoU {iou:.3}");
    }
    let mut training = TrainingServiceClient::new(harness.channel.clone());
    let latest = training
        .get_model(abdoseg_protos::training::v1::GetModelRequest {
            model_id: "latest".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(latest.code(), Code::NotFound, "no trained model yet");
    harness.stack.stop().await.unwrap();
}
