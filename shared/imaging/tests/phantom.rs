//! Phantoms are reproducible, anatomically placed, and hard for thresholds.

use abdoseg_imaging::{
    nifti::{ReadLimits, read_ct, read_labels_on, write_i16, write_labels},
    phantom::{Center, difficulty::best_interval, generate_case},
};

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let a = generate_case(5, 1, Center::new(5, 0), None).unwrap();
    let b = generate_case(5, 1, Center::new(5, 0), None).unwrap();
    assert_eq!(
        write_i16(&a.image, false).unwrap(),
        write_i16(&b.image, false).unwrap()
    );
    assert_eq!(
        write_labels(&a.labels, false).unwrap(),
        write_labels(&b.labels, false).unwrap()
    );
    let c = generate_case(6, 1, Center::new(6, 0), None).unwrap();
    assert_ne!(a.image.data, c.image.data);
}

/// Mean world position (RAS mm) of an organ's voxels.
fn centroid(case: &abdoseg_imaging::phantom::PhantomCase, organ: u8) -> [f64; 3] {
    let a = case.labels.geometry.affine();
    let mut sum = [0.0; 3];
    let mut n = 0.0;
    for ((k, j, i), &l) in case.labels.data.indexed_iter() {
        if l == organ {
            for (w, s) in sum.iter_mut().enumerate() {
                *s += a[w][0] * i as f64 + a[w][1] * j as f64 + a[w][2] * k as f64 + a[w][3];
            }
            n += 1.0;
        }
    }
    assert!(n > 0.0, "organ {organ} is missing");
    sum.map(|s| s / n)
}

#[test]
fn organs_sit_where_anatomy_puts_them_in_every_voxel_order() {
    let mut orientations = std::collections::BTreeSet::new();
    for index in 1..=6 {
        let case = generate_case(11, index, Center::new(11, index % 3), None).unwrap();
        orientations.insert(abdoseg_imaging::orientation::axis_codes(
            &case.image.geometry.affine(),
        ));
        let liver = centroid(&case, 1);
        let spleen = centroid(&case, 3);
        let kidney = centroid(&case, 2);
        let pancreas = centroid(&case, 4);
        // RAS world: x grows toward the patient's right, y toward anterior. The liver lies
        // right (x > 0), the spleen left (x < 0) and posterior (y < 0).
        assert!(liver[0] > 20.0, "case {index}: liver at {liver:?}");
        assert!(spleen[0] < -40.0, "case {index}: spleen at {spleen:?}");
        assert!(spleen[1] < 0.0, "case {index}: spleen not posterior");
        assert!(kidney[1] < -20.0, "case {index}: kidneys not posterior");
        assert!(
            pancreas[1] > kidney[1],
            "case {index}: pancreas not in front of the kidneys"
        );
        // Kidneys are on both sides.
        let sides = case
            .labels
            .data
            .indexed_iter()
            .filter(|(_, l)| **l == 2)
            .map(|((k, j, i), _)| {
                let a = case.labels.geometry.affine();
                a[0][0] * i as f64 + a[0][1] * j as f64 + a[0][2] * k as f64 + a[0][3]
            })
            .fold((false, false), |(l, r), x| (l || x < -30.0, r || x > 30.0));
        assert_eq!(sides, (true, true), "case {index}: one kidney missing");
    }
    assert!(
        orientations.len() >= 2,
        "voxel orders vary: {orientations:?}"
    );
}

#[test]
fn thresholds_fail_on_the_pancreas() {
    let mut pancreas_ious = Vec::new();
    for index in 1..=3 {
        let case = generate_case(3, index, Center::new(3, index - 1), None).unwrap();
        let best = best_interval(case.image.data.iter(), case.labels.data.iter(), 4);
        pancreas_ious.push(best.iou);
        assert!(best.iou < 0.5, "case {index}: {best:?}");
    }
    // The baseline is real: it finds something, just not the pancreas alone.
    assert!(pancreas_ious.iter().all(|&iou| iou > 0.0));
}

#[test]
fn phantoms_survive_their_own_files() {
    let case = generate_case(9, 2, Center::new(9, 1), None).unwrap();
    let image = read_ct(
        &write_i16(&case.image, true).unwrap(),
        &ReadLimits::default(),
    )
    .unwrap();
    let labels = read_labels_on(
        &image.geometry,
        &write_labels(&case.labels, true).unwrap(),
        &ReadLimits::default(),
    )
    .unwrap();
    assert_eq!(labels.data, case.labels.data);
    assert_eq!(image.data, case.image.data.mapv(f32::from));
}
