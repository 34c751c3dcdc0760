//! The one real CT beside the checkout (`../shared/data/real-abdomen`): a scanner's int32
//! file reads with its labels on the same grid, and the counts of its SOURCE.md.

use std::path::PathBuf;

use abdoseg_imaging::{
    labels::class_counts,
    nifti::{ReadLimits, read_ct, read_labels_on},
    orientation::axis_codes,
    slices::Canonical,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/real-abdomen")
}

#[test]
fn the_real_case_reads_with_its_labels() {
    let dir = data_dir();
    let image = std::fs::read(dir.join("images/Case_00001_0000.nii.gz")).unwrap_or_else(|e| {
        panic!(
            "the real case belongs beside the checkout at {}: {e}",
            dir.display()
        )
    });
    let labels = std::fs::read(dir.join("labels/Case_00001.nii.gz")).unwrap();

    let ct = read_ct(&image, &ReadLimits::default()).unwrap();
    assert_eq!(ct.geometry.shape(), [122, 101, 112]);
    assert_eq!(ct.geometry.spacing(), [3.0, 3.0, 3.0]);
    assert_eq!(axis_codes(&ct.geometry.affine()), "RAS");
    let (min, max) = ct
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert_eq!((min, max), (-1207.0, 3382.0));

    let labels = read_labels_on(&ct.geometry, &labels, &ReadLimits::default()).unwrap();
    assert_eq!(
        class_counts(labels.data.iter()),
        [1_315_830, 41_602, 12_137, 9_677, 818]
    );

    // On the canonical grid the liver is on the image's left half (patient's right).
    let canonical = Canonical::of(&labels);
    let (mut left, mut right) = (0u64, 0u64);
    for z in 0..canonical.slice_count() {
        for ((_, x), &l) in canonical.axial(z).indexed_iter() {
            if l == 1 {
                if x < canonical.axial(z).ncols() / 2 {
                    left += 1;
                } else {
                    right += 1;
                }
            }
        }
    }
    assert!(
        left > 4 * right,
        "liver voxels: {left} image-left, {right} image-right"
    );
}
