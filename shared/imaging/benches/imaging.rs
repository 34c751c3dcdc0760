//! Imaging benchmarks on a 512×512×200 int16 phantom: `.nii.gz` reading, the HE variant
//! and CLAHE per 512×512 slice, and resizing. `compare.py` beside this file runs them with
//! the peers (nibabel, OpenCV, scikit-image) on the same data in the same run.

use std::{hint::black_box, path::PathBuf};

use abdoseg_imaging::{
    intensity::{Clahe, DEFAULT_HE_THRESHOLD, HuWindow, clahe_slice, he_slice},
    nifti::{ReadLimits, read_ct, write_i16},
    phantom::{Center, Grid, generate_case},
    resize::{resize_bilinear, resize_nearest},
    slices::Canonical,
};
use criterion::{Criterion, criterion_group, criterion_main};

/// The benchmark volume, written once and shared with the peers' script.
pub fn bench_volume() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data");
    let path = dir.join("phantom-512x512x200.nii.gz");
    if !path.exists() {
        std::fs::create_dir_all(&dir).expect("create target/bench-data");
        let grid = Grid {
            matrix: 512,
            slices: 200,
            spacing: 0.8,
            thickness: 1.25,
        };
        let case = generate_case(2026, 1, Center::new(2026, 0), Some(grid)).expect("phantom");
        std::fs::write(&path, write_i16(&case.image, true).expect("encode")).expect("write");
    }
    path
}

fn benches(c: &mut Criterion) {
    let path = bench_volume();
    let limits = ReadLimits::default();
    c.bench_function("nii_gz_read_512x512x200_int16", |b| {
        b.iter(|| {
            let bytes = std::fs::read(&path).expect("read");
            black_box(read_ct(&bytes, &limits).expect("decode"))
        })
    });

    let volume = read_ct(&std::fs::read(&path).expect("read"), &limits).expect("decode");
    let canonical = Canonical::of(&volume);
    let window = HuWindow::default();
    let gray = window.apply(canonical.axial(canonical.slice_count() / 2));
    // The slice the peers use too.
    std::fs::write(
        path.with_file_name("slice-512x512.u8"),
        gray.as_slice().expect("contiguous"),
    )
    .expect("write slice");

    c.bench_function("he_slice_512x512", |b| {
        b.iter_batched(
            || gray.clone(),
            |mut g| {
                he_slice(&mut g, DEFAULT_HE_THRESHOLD);
                black_box(g)
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let clahe = Clahe::default();
    c.bench_function("clahe_slice_512x512", |b| {
        b.iter(|| black_box(clahe_slice(black_box(&gray), &clahe)))
    });
    let floats = gray.mapv(|v| f32::from(v) / 255.0);
    c.bench_function("resize_bilinear_512_to_256", |b| {
        b.iter(|| black_box(resize_bilinear(floats.view(), (256, 256)).expect("resize")))
    });
    c.bench_function("resize_nearest_512_to_256", |b| {
        b.iter(|| black_box(resize_nearest(gray.view(), (256, 256)).expect("resize")))
    });
}

criterion_group! {
    name = imaging;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(imaging);
