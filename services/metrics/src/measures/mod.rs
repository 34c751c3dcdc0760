//! Per-class metrics of one predicted label map against its ground truth.
//!
//! Conventions (nnU-Net's for overlap, MONAI's for surfaces), per class:
//! - *both empty* (the class is in neither map): IoU, Dice, precision, recall, HD95 and
//!   NSD are undefined (NaN, or absent in the API) and left out of every mean;
//! - *one empty*: IoU and Dice are 0, NSD is 0, HD95 is undefined (infinite), precision
//!   or recall is undefined on the side with no voxels.

mod overlap;
mod surface;

use abdoseg_imaging::{CLASS_NAMES, NUM_CLASSES, Volume};
use rayon::prelude::*;

pub use overlap::{Confusion, Counts};
pub use surface::{SurfaceDistances, SurfaceMetrics, percentile, surface};

/// The FLARE challenge's NSD tolerances in mm per class (none for background).
pub const NSD_TOLERANCE_MM: [Option<f64>; NUM_CLASSES] =
    [None, Some(5.0), Some(3.0), Some(3.0), Some(5.0)];

/// All metrics of one class in one case.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassEvaluation {
    /// Label value: 0 background, 1 liver, 2 kidney, 3 spleen, 4 pancreas.
    pub class: u8,
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    pub iou: Option<f64>,
    pub dice: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub volume_difference_ml: f64,
    pub hd95_mm: Option<f64>,
    pub nsd: Option<f64>,
}

impl ClassEvaluation {
    pub fn name(&self) -> &'static str {
        CLASS_NAMES[usize::from(self.class)]
    }

    pub fn counts(&self) -> Counts {
        Counts {
            tp: self.true_positives,
            fp: self.false_positives,
            fn_: self.false_negatives,
        }
    }
}

/// The metrics of one case: every class, background first, and the confusion matrix
/// that split-level (pooled) metrics add up.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaseEvaluation {
    pub classes: Vec<ClassEvaluation>,
    pub confusion: [[u64; NUM_CLASSES]; NUM_CLASSES],
}

/// Why two label maps cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum EvaluationError {
    #[error("the prediction ({predicted}) and the ground truth ({truth}) are on different grids")]
    GridMismatch { predicted: String, truth: String },
    #[error("the evaluation was stopped before it finished")]
    Cancelled,
}

fn defined(value: f64) -> Option<f64> {
    (!value.is_nan()).then_some(value)
}

/// Evaluates `predicted` against `truth`, with surface metrics when `surfaces` is set.
/// Both must lie on one grid (shape and affine); distances use the header's spacing.
pub fn evaluate(
    predicted: &Volume<u8>,
    truth: &Volume<u8>,
    surfaces: bool,
) -> Result<CaseEvaluation, EvaluationError> {
    evaluate_unless(predicted, truth, surfaces, &|| false)
}

/// Bytes the surface metrics of two maps take, beyond the maps: per surface voxel of
/// every class with a tolerance, its index, its point in mm, its place in the k-d tree,
/// its distance and the sorted copy for the percentile.
pub fn surface_bytes(predicted: &Volume<u8>, truth: &Volume<u8>) -> u64 {
    const PER_SURFACE_VOXEL: u64 = 12 + 24 + 32 + 8 + 8;
    let count: usize = (0..NUM_CLASSES)
        .filter(|&class| NSD_TOLERANCE_MM[class].is_some())
        .map(|class| {
            surface::surface_count(predicted.data.view(), class as u8)
                + surface::surface_count(truth.data.view(), class as u8)
        })
        .sum();
    count as u64 * PER_SURFACE_VOXEL
}

/// As [`evaluate`], stopping with [`EvaluationError::Cancelled`] as soon as
/// `cancelled` says so (a caller gone, a deadline passed).
pub fn evaluate_unless(
    predicted: &Volume<u8>,
    truth: &Volume<u8>,
    surfaces: bool,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<CaseEvaluation, EvaluationError> {
    if !predicted.geometry.same_grid(&truth.geometry) {
        return Err(EvaluationError::GridMismatch {
            predicted: predicted.geometry.describe(),
            truth: truth.geometry.describe(),
        });
    }
    let confusion = match (predicted.data.as_slice(), truth.data.as_slice()) {
        (Some(p), Some(t)) => Confusion::of(p, t),
        _ => {
            let p: Vec<u8> = predicted.data.iter().copied().collect();
            let t: Vec<u8> = truth.data.iter().copied().collect();
            Confusion::of(&p, &t)
        }
    };
    // Array axes are (k, j, i); the header's spacing is along (i, j, k).
    let [si, sj, sk] = predicted.geometry.spacing().map(f64::from);
    let spacing = [sk, sj, si];
    let voxel_ml = predicted.geometry.voxel_volume_ml();
    let classes: Option<Vec<ClassEvaluation>> = (0..NUM_CLASSES)
        .into_par_iter()
        .map(|class| {
            let counts = confusion.counts(class);
            let surface = match NSD_TOLERANCE_MM[class] {
                Some(tolerance) if surfaces => SurfaceDistances::between_unless(
                    predicted.data.view(),
                    truth.data.view(),
                    class as u8,
                    spacing,
                    cancelled,
                )?
                .map_or_else(SurfaceDistances::both_empty, |d| d.metrics(tolerance)),
                _ => SurfaceDistances::both_empty(),
            };
            Some(ClassEvaluation {
                class: class as u8,
                true_positives: counts.tp,
                false_positives: counts.fp,
                false_negatives: counts.fn_,
                iou: defined(counts.iou()),
                dice: defined(counts.dice()),
                precision: defined(counts.precision()),
                recall: defined(counts.recall()),
                volume_difference_ml: counts.volume_difference_ml(voxel_ml),
                hd95_mm: surface.hd95_mm,
                nsd: surface.nsd,
            })
        })
        .collect();
    Ok(CaseEvaluation {
        classes: classes.ok_or(EvaluationError::Cancelled)?,
        confusion: confusion.counts,
    })
}

#[cfg(test)]
mod tests {
    use abdoseg_imaging::Geometry;
    use ndarray::Array3;

    use super::*;

    fn volume(data: Array3<u8>, spacing: [f64; 3]) -> Volume<u8> {
        let (k, j, i) = data.dim();
        let mut affine = [[0.0; 4]; 4];
        for (axis, s) in spacing.iter().enumerate() {
            affine[axis][axis] = *s;
        }
        affine[3][3] = 1.0;
        Volume {
            geometry: Geometry::new([i, j, k], affine).unwrap(),
            data,
        }
    }

    #[test]
    fn a_case_reports_every_class_with_its_conventions() {
        let mut truth = Array3::<u8>::zeros((6, 8, 10));
        let mut predicted = truth.clone();
        truth.slice_mut(ndarray::s![1..4, 2..6, 2..6]).fill(1);
        predicted.slice_mut(ndarray::s![1..4, 2..6, 3..7]).fill(1);
        predicted[(5, 7, 9)] = 3; // a spleen voxel the truth lacks
        let spacing = [0.5, 0.5, 2.0]; // i, j, k
        let case = evaluate(&volume(predicted, spacing), &volume(truth, spacing), true).unwrap();
        assert_eq!(case.classes.len(), NUM_CLASSES);
        let liver = &case.classes[1];
        assert_eq!(
            (
                liver.true_positives,
                liver.false_positives,
                liver.false_negatives
            ),
            (36, 12, 12)
        );
        assert!((liver.iou.unwrap() - 36.0 / 60.0).abs() < 1e-12);
        // One column shifted by 0.5 mm along i.
        assert!((liver.hd95_mm.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(liver.nsd, Some(1.0));
        let spleen = &case.classes[3];
        assert_eq!(spleen.iou, Some(0.0));
        assert_eq!(spleen.hd95_mm, None);
        assert_eq!(spleen.nsd, Some(0.0));
        assert!((spleen.volume_difference_ml - 0.5 * 0.5 * 2.0 / 1000.0).abs() < 1e-12);
        let pancreas = &case.classes[4];
        assert_eq!(
            (pancreas.iou, pancreas.dice, pancreas.hd95_mm, pancreas.nsd),
            (None, None, None, None)
        );
        assert_eq!(case.classes[0].hd95_mm, None);
    }

    #[test]
    fn different_grids_are_refused() {
        let a = volume(Array3::zeros((4, 4, 4)), [1.0, 1.0, 1.0]);
        let b = volume(Array3::zeros((4, 4, 4)), [1.0, 1.0, 2.0]);
        assert!(matches!(
            evaluate(&a, &b, false),
            Err(EvaluationError::GridMismatch { .. })
        ));
    }
}
