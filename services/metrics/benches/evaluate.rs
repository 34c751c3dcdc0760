//! Evaluate on a 512×512×200 label-map pair (0.8 × 0.8 × 1.25 mm): overlap metrics alone,
//! and overlap plus HD95 and NSD for the four organs. The pair is a phantom's labels and
//! a damaged copy (each organ shifted or speckled), written to `target/bench-data` so that
//! `compare.py` beside this file can time MedPy on the same pair.

use std::{hint::black_box, path::PathBuf};

use abdoseg_imaging::{
    Volume,
    nifti::write_labels,
    phantom::{Center, Grid, generate_case},
};
use abdoseg_metrics::measures::evaluate;
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::Array3;

/// The damaged copy: liver shifted 3 voxels along i, kidneys 2 along j, spleen one slice
/// along k, every fifth pancreas voxel dropped.
fn damaged(truth: &Array3<u8>) -> Array3<u8> {
    let (depth, height, width) = truth.dim();
    let mut out = Array3::<u8>::zeros(truth.dim());
    for ((k, j, i), &label) in truth.indexed_iter() {
        let (k, j, i) = match label {
            1 => (k, j, i + 3),
            2 => (k, j + 2, i),
            3 => (k + 1, j, i),
            4 if (i + j + k) % 5 == 0 => continue,
            _ => (k, j, i),
        };
        if label != 0 && k < depth && j < height && i < width {
            out[(k, j, i)] = label;
        }
    }
    out
}

fn pair() -> (Volume<u8>, Volume<u8>) {
    let grid = Grid {
        matrix: 512,
        slices: 200,
        spacing: 0.8,
        thickness: 1.25,
    };
    let case = generate_case(2026, 1, Center::new(2026, 0), Some(grid)).expect("phantom");
    let truth = case.labels;
    let predicted = truth.with_data(damaged(&truth.data)).expect("same grid");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data");
    std::fs::create_dir_all(&dir).expect("create target/bench-data");
    for (name, volume) in [
        ("eval-truth.nii.gz", &truth),
        ("eval-predicted.nii.gz", &predicted),
    ] {
        std::fs::write(dir.join(name), write_labels(volume, true).expect("encode")).expect("write");
    }
    (predicted, truth)
}

fn benches(c: &mut Criterion) {
    let (predicted, truth) = pair();
    let mut group = c.benchmark_group("evaluate_512x512x200");
    group.sample_size(10);
    group.bench_function("overlap", |b| {
        b.iter(|| black_box(evaluate(&predicted, &truth, false).expect("same grid")))
    });
    group.bench_function("overlap_and_surfaces", |b| {
        b.iter(|| black_box(evaluate(&predicted, &truth, true).expect("same grid")))
    });
    group.finish();
}

criterion_group!(evaluate_benches, benches);
criterion_main!(evaluate_benches);
