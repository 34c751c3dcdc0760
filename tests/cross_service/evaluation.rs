//! Evaluation through gRPC: a tiny model trained on phantoms is evaluated on the test
//! split by the metrics service (which calls the inference service for every case); the
//! stored report, its overlays and the Prometheus metrics hold what the stream said; and
//! an overlay of a known pair has the right colours in the right pixels.

use abdoseg_imaging::{
    Geometry, Volume,
    nifti::{read_labels, read_labels_remapped, write_i16, write_labels},
};
use abdoseg_metrics::{measures::evaluate, overlay};
use abdoseg_protos::{
    common::v1::{ObjectRef, Organ, Split},
    metrics::v1::{
        EvaluateModelRequest, EvaluatePredictionRequest, GetReportRequest, ListReportsRequest,
        RenderOverlaysRequest, evaluate_model_response::Event,
        metrics_service_client::MetricsServiceClient,
    },
    training::v1::{JobState, training_service_client::TrainingServiceClient},
};
use abdoseg_storage::{Key, Storage};
use bytes::Bytes;
use ndarray::Array3;
use tonic::Code;

use crate::{
    harness::Harness,
    prepare::{prepare, put_nnunet_phantoms, request},
    training::{config, start, wait_for_state},
};

fn object(key: &str) -> Option<ObjectRef> {
    Some(ObjectRef {
        key: key.into(),
        ..ObjectRef::default()
    })
}

async fn get(storage: &Storage, key: &str) -> Bytes {
    storage.get(&Key::parse(key).unwrap()).await.unwrap()
}

/// Decodes an 8-bit RGB PNG: (width, height, pixels).
fn decode_png(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    pixels.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, pixels)
}

fn rgb_at(png: &(usize, usize, Vec<u8>), x: usize, y: usize) -> [u8; 3] {
    let at = (y * png.0 + x) * 3;
    [png.2[at], png.2[at + 1], png.2[at + 2]]
}

/// nnU-Net's numbering back to the AbdomenCT-1K classes, written out independently of
/// the service's `dataset.json` reading.
fn from_nnunet() -> [Option<u8>; 256] {
    let mut table = [None; 256];
    for (value, class) in [(0, 0), (1, 3), (2, 1), (3, 2), (4, 2), (5, 4)] {
        table[value] = Some(class);
    }
    table
}

/// The dataset is in nnU-Net's layout and numbering, so the ground truth must be read
/// through its `dataset.json` (a pancreas of value 5 would otherwise fail every case).
#[tokio::test(flavor = "multi_thread")]
async fn a_trained_model_is_evaluated_on_its_test_split_into_a_report() {
    let harness = Harness::start().await;
    put_nnunet_phantoms(&harness.storage, "eval", 10, 11).await;
    let mut preprocessing =
        abdoseg_protos::preprocessing::v1::preprocessing_service_client::PreprocessingServiceClient::new(
            harness.channel.clone(),
        );
    let events = prepare(&mut preprocessing, request("raw/eval", 32))
        .await
        .unwrap();
    let dataset_id = events.last().unwrap().dataset_id.clone();
    let mut training = TrainingServiceClient::new(harness.channel.clone());
    let job = start(&mut training, config(&dataset_id, 2)).await;
    let job = wait_for_state(&mut training, &job.job_id).await;
    assert_eq!(job.state, JobState::Succeeded as i32, "{}", job.error);

    let mut metrics = MetricsServiceClient::new(harness.channel.clone());
    let mut stream = metrics
        .evaluate_model(EvaluateModelRequest {
            model_id: "latest".into(),
            dataset_id: dataset_id.clone(),
            split: Split::Test as i32,
            surface_metrics: true,
            concurrency: 2,
            overlays: true,
        })
        .await
        .unwrap()
        .into_inner();
    let (mut evaluated, mut report, mut done) = (Vec::new(), None, Vec::new());
    while let Some(event) = stream.message().await.unwrap() {
        done.push(event.cases_done);
        match event.event.unwrap() {
            Event::CaseEvaluated(case) => evaluated.push(case),
            Event::CaseFailed(f) => panic!("case {} failed: {}", f.case_id, f.reason),
            Event::Report(r) => report = Some(r),
        }
    }
    let report = report.expect("the stream ends with the report");
    let total = evaluated.len();
    assert!(total >= 2, "a test split of {total} cases");
    assert_eq!(
        done,
        (1..=total as u32).chain([total as u32]).collect::<Vec<_>>()
    );
    assert_eq!(report.model_id, job.model_id);
    assert_eq!(report.cases.len(), total);
    assert_eq!(report.aggregate.len(), 5);
    assert_eq!(report.aggregate[1].organ, Organ::Liver as i32);
    // Every test case has a liver, so its IoU is defined (0 if the tiny model missed it);
    // HD95 is averaged over the cases where both sides have it.
    assert!(report.aggregate[1].mean_iou.is_finite());
    for (class, aggregate) in report.aggregate.iter().enumerate() {
        let hd95: Vec<f64> = report
            .cases
            .iter()
            .filter_map(|c| c.classes[class].hd95_mm)
            .collect();
        match aggregate.mean_hd95_mm {
            Some(mean) => {
                assert!((mean - hd95.iter().sum::<f64>() / hd95.len() as f64).abs() < 1e-9)
            }
            None => assert!(hd95.is_empty()),
        }
    }

    // Each case's metrics are those of its stored prediction against its label map.
    let manifest: abdoseg_dataset::manifest::Manifest = harness
        .storage
        .get_json(&Key::parse(&format!("datasets/{dataset_id}/manifest.json")).unwrap())
        .await
        .unwrap();
    for case in &report.cases {
        let record = manifest
            .cases
            .iter()
            .find(|c| c.case_id == case.case_id)
            .unwrap();
        let prefix = format!(
            "reports/{}/predictions/{}.nii.gz",
            report.report_id, case.case_id
        );
        let predicted =
            read_labels(&get(&harness.storage, &prefix).await, &Default::default()).unwrap();
        let truth = read_labels_remapped(
            &get(&harness.storage, &record.source_label.key).await,
            &Default::default(),
            &from_nnunet(),
        )
        .unwrap();
        let local = evaluate(&predicted, &truth, true).unwrap();
        for (ours, theirs) in local.classes.iter().zip(&case.classes) {
            assert_eq!(ours.true_positives, theirs.true_positives);
            assert_eq!(ours.hd95_mm, theirs.hd95_mm);
            assert_eq!(ours.nsd, theirs.nsd);
        }
    }

    // The renderings are stored: Markdown with the study's table, self-contained HTML,
    // curves and overlay PNGs (each organ's picture and its slice's 2×3 grid).
    let markdown = String::from_utf8(
        get(&harness.storage, &report.markdown.unwrap().key)
            .await
            .to_vec(),
    )
    .unwrap();
    assert!(markdown.contains("| Model | Background | Liver | Kidneys | Spleen | Pancreas |"));
    assert!(markdown.contains(&format!("| {} |", job.model_id)));
    let html = String::from_utf8(
        get(&harness.storage, &report.html.unwrap().key)
            .await
            .to_vec(),
    )
    .unwrap();
    assert!(html.contains("data:image/png;base64,") && html.contains("<svg"));
    assert!(!report.overlays.is_empty());
    assert!(
        report
            .overlays
            .iter()
            .any(|o| o.organ == Organ::Background as i32)
    );
    for overlay in &report.overlays {
        let png = decode_png(&get(&harness.storage, &overlay.png.as_ref().unwrap().key).await);
        assert!(png.0 > 0 && png.1 > 0);
        if overlay.organ != Organ::Background as i32 {
            assert!(["best", "worst"].contains(&overlay.selection.as_str()));
        }
    }

    let fetched = metrics
        .get_report(GetReportRequest {
            report_id: report.report_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .report
        .unwrap();
    // Stored and streamed values are the same to the bit (Debug shows NaN as NaN).
    assert_eq!(
        format!("{:?}", fetched.cases),
        format!("{:?}", report.cases)
    );
    let listed = metrics
        .list_reports(ListReportsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.reports.len(), 1);
    assert!(
        listed.reports[0].cases.is_empty(),
        "listings leave cases out"
    );

    let text = harness.metrics.encode();
    assert!(
        text.contains("abdoseg_model_evaluations_total{outcome=\"ok\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "abdoseg_evaluated_cases_total{{outcome=\"ok\"}} {total}"
        )),
        "{text}"
    );
    assert!(
        text.contains("abdoseg_case_iou_count{organ=\"liver\"}"),
        "{text}"
    );

    // A split without cases and an unknown model are refused before anything runs.
    let err = metrics
        .evaluate_model(EvaluateModelRequest {
            model_id: "model-none".into(),
            dataset_id: dataset_id.clone(),
            split: Split::Test as i32,
            ..EvaluateModelRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = metrics
        .evaluate_model(EvaluateModelRequest {
            dataset_id,
            ..EvaluateModelRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    harness.stack.stop().await.unwrap();
}

/// A 6×5×3 volume whose file order is already the canonical one (LPS: columns to the
/// patient's left, rows to posterior, slices superior).
fn lps_volume<T>(data: Array3<T>) -> Volume<T> {
    let (k, j, i) = data.dim();
    let affine = [
        [-1.0, 0.0, 0.0, 0.0],
        [0.0, -1.0, 0.0, 0.0],
        [0.0, 0.0, 2.5, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let geometry = Geometry::new([i, j, k], affine).unwrap();
    assert!(
        abdoseg_imaging::orientation::Reorientation::from_affine(&geometry.affine()).is_identity()
    );
    Volume { geometry, data }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overlay_of_a_known_pair_has_the_right_colours_in_the_right_pixels() {
    let harness = Harness::start().await;
    // Slice 1: liver found at (x 1, y 1), missed at (x 2, y 1), invented at (x 3, y 1);
    // a kidney called liver at (x 4, y 3).
    let mut truth = Array3::<u8>::zeros((3, 5, 6));
    let mut predicted = truth.clone();
    truth[(1, 1, 1)] = 1;
    predicted[(1, 1, 1)] = 1;
    truth[(1, 1, 2)] = 1;
    predicted[(1, 1, 3)] = 1;
    truth[(1, 3, 4)] = 2;
    predicted[(1, 3, 4)] = 1;
    // 40 HU everywhere: gray 128 under the default window (L40/W400), no scheme.
    let ct = Array3::<i16>::from_elem((3, 5, 6), 40);
    for (key, bytes) in [
        (
            "raw/known/ct.nii.gz",
            write_i16(&lps_volume(ct), true).unwrap(),
        ),
        (
            "raw/known/truth.nii.gz",
            write_labels(&lps_volume(truth), true).unwrap(),
        ),
        (
            "raw/known/pred.nii.gz",
            write_labels(&lps_volume(predicted), true).unwrap(),
        ),
    ] {
        harness
            .storage
            .put(&Key::parse(key).unwrap(), Bytes::from(bytes))
            .await
            .unwrap();
    }
    let mut metrics = MetricsServiceClient::new(harness.channel.clone());
    let response = metrics
        .render_overlays(RenderOverlaysRequest {
            image: object("raw/known/ct.nii.gz"),
            prediction: object("raw/known/pred.nii.gz"),
            ground_truth: object("raw/known/truth.nii.gz"),
            slices: vec![1],
            preprocessing: Some(abdoseg_protos::common::v1::PreprocessingConfig {
                scheme: abdoseg_protos::common::v1::IntensityScheme::None as i32,
                ..Default::default()
            }),
            output_prefix: "reports/known-overlays".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // Four organs and the grid.
    assert_eq!(response.overlays.len(), 5);
    let liver = response
        .overlays
        .iter()
        .find(|o| o.organ == Organ::Liver as i32)
        .unwrap();
    assert_eq!(
        liver.png.as_ref().unwrap().key,
        "reports/known-overlays/slice-001-liver.png"
    );
    let png = decode_png(&get(&harness.storage, &liver.png.as_ref().unwrap().key).await);
    assert_eq!((png.0, png.1), (6, 5));
    assert_eq!(rgb_at(&png, 1, 1), overlay::FOUND);
    assert_eq!(rgb_at(&png, 2, 1), overlay::MISSED);
    assert_eq!(rgb_at(&png, 3, 1), overlay::FALSE_POSITIVE);
    assert_eq!(rgb_at(&png, 4, 3), overlay::FALSE_POSITIVE);
    assert_eq!(rgb_at(&png, 0, 0), [128; 3]);
    let kidney = response
        .overlays
        .iter()
        .find(|o| o.organ == Organ::Kidney as i32)
        .unwrap();
    let png = decode_png(&get(&harness.storage, &kidney.png.as_ref().unwrap().key).await);
    assert_eq!(rgb_at(&png, 4, 3), overlay::MISSED);
    assert_eq!(rgb_at(&png, 1, 1), [128; 3]);
    let grid = response
        .overlays
        .iter()
        .find(|o| o.organ == Organ::Background as i32)
        .unwrap();
    let png = decode_png(&get(&harness.storage, &grid.png.as_ref().unwrap().key).await);
    assert_eq!((png.0, png.1), (3 * 6 + 8, 2 * 5 + 4));
    // The liver panel is the third of the top row.
    assert_eq!(rgb_at(&png, 2 * (6 + 4) + 1, 1), overlay::FOUND);
    assert_eq!(rgb_at(&png, 2 * (6 + 4) + 2, 1), overlay::MISSED);

    // The same pair evaluated: one liver voxel found, two invented, one missed.
    let case = metrics
        .evaluate_prediction(EvaluatePredictionRequest {
            prediction: object("raw/known/pred.nii.gz"),
            ground_truth: object("raw/known/truth.nii.gz"),
            surface_metrics: true,
        })
        .await
        .unwrap()
        .into_inner()
        .metrics
        .unwrap();
    let liver = &case.classes[1];
    assert_eq!(
        (
            liver.true_positives,
            liver.false_positives,
            liver.false_negatives
        ),
        (1, 2, 1)
    );
    assert!((liver.iou - 0.25).abs() < 1e-12);
    assert!(
        case.classes[4].iou.is_nan(),
        "pancreas in neither: undefined"
    );

    // A slice outside the volume and a label map on another grid are refused.
    let err = metrics
        .render_overlays(RenderOverlaysRequest {
            image: object("raw/known/ct.nii.gz"),
            prediction: object("raw/known/pred.nii.gz"),
            ground_truth: object("raw/known/truth.nii.gz"),
            slices: vec![3],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let other = lps_volume(Array3::<u8>::zeros((3, 5, 7)));
    harness
        .storage
        .put(
            &Key::parse("raw/known/other.nii.gz").unwrap(),
            Bytes::from(write_labels(&other, true).unwrap()),
        )
        .await
        .unwrap();
    let err = metrics
        .evaluate_prediction(EvaluatePredictionRequest {
            prediction: object("raw/known/other.nii.gz"),
            ground_truth: object("raw/known/truth.nii.gz"),
            surface_metrics: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("different grids"), "{err:?}");
    harness.stack.stop().await.unwrap();
}
