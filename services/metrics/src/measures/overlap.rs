//! Voxel overlap: one pass over both label maps fills a confusion matrix, from which every
//! class's counts and ratios follow.

use abdoseg_imaging::NUM_CLASSES;
use rayon::prelude::*;

/// `counts[truth][predicted]`: voxels of each class pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Confusion {
    pub counts: [[u64; NUM_CLASSES]; NUM_CLASSES],
}

/// Labels per parallel work unit: large enough to amortize the per-chunk matrix.
const CHUNK: usize = 1 << 18;

impl Confusion {
    /// Counts every voxel pair. Both slices hold class values 0–4 and are equally long.
    pub fn of(predicted: &[u8], truth: &[u8]) -> Self {
        assert_eq!(predicted.len(), truth.len(), "label maps of equal length");
        predicted
            .par_chunks(CHUNK)
            .zip(truth.par_chunks(CHUNK))
            .map(|(p, t)| {
                let mut counts = [[0u64; NUM_CLASSES]; NUM_CLASSES];
                for (&p, &t) in p.iter().zip(t) {
                    counts[usize::from(t)][usize::from(p)] += 1;
                }
                Self { counts }
            })
            .reduce(Self::default, Self::merged)
    }

    /// The sum of two matrices: a split's pooled counts.
    pub fn merged(mut self, other: Self) -> Self {
        for (row, other) in self.counts.iter_mut().zip(other.counts) {
            for (a, b) in row.iter_mut().zip(other) {
                *a += b;
            }
        }
        self
    }

    /// True positives, false positives and false negatives of `class`.
    pub fn counts(&self, class: usize) -> Counts {
        let tp = self.counts[class][class];
        let predicted: u64 = self.counts.iter().map(|row| row[class]).sum();
        let truth: u64 = self.counts[class].iter().sum();
        Counts {
            tp,
            fp: predicted - tp,
            fn_: truth - tp,
        }
    }
}

/// One class's voxel counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
}

/// A ratio, NaN when its denominator is zero (nnU-Net's convention: the value is
/// undefined and left out of means, never silently 0 or 1).
fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        f64::NAN
    } else {
        numerator as f64 / denominator as f64
    }
}

impl Counts {
    /// |P ∩ T| / |P ∪ T|; NaN when both are empty, 0 when exactly one is.
    pub fn iou(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp + self.fn_)
    }

    /// 2|P ∩ T| / (|P| + |T|); NaN when both are empty, 0 when exactly one is.
    pub fn dice(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// TP / |P|; NaN when nothing was predicted.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// TP / |T|; NaN when the class is absent from the truth.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// Predicted minus true volume in mL.
    pub fn volume_difference_ml(&self, voxel_ml: f64) -> f64 {
        (self.fp as f64 - self.fn_ as f64) * voxel_ml
    }

    /// Whether the class is absent from both maps.
    pub fn both_empty(&self) -> bool {
        self.tp + self.fp + self.fn_ == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_confusion_matrix() {
        //            truth:   0  1  1  2  2  0  4
        let truth = [0u8, 1, 1, 2, 2, 0, 4];
        let predicted = [0u8, 1, 2, 2, 0, 1, 4];
        let confusion = Confusion::of(&predicted, &truth);
        assert_eq!(
            confusion.counts(1),
            Counts {
                tp: 1,
                fp: 1,
                fn_: 1
            }
        );
        assert_eq!(
            confusion.counts(2),
            Counts {
                tp: 1,
                fp: 1,
                fn_: 1
            }
        );
        assert_eq!(
            confusion.counts(0),
            Counts {
                tp: 1,
                fp: 1,
                fn_: 1
            }
        );
        assert_eq!(
            confusion.counts(4),
            Counts {
                tp: 1,
                fp: 0,
                fn_: 0
            }
        );
        let liver = confusion.counts(1);
        assert!((liver.iou() - 1.0 / 3.0).abs() < 1e-12);
        assert!((liver.dice() - 0.5).abs() < 1e-12);
        assert_eq!(liver.precision(), 0.5);
        assert_eq!(liver.recall(), 0.5);
    }

    #[test]
    fn empty_classes_follow_nnunet() {
        let truth = [0u8, 0, 1, 1];
        let predicted = [0u8, 3, 0, 0];
        let confusion = Confusion::of(&predicted, &truth);
        let spleen_only_predicted = confusion.counts(3);
        assert_eq!(spleen_only_predicted.iou(), 0.0);
        assert_eq!(spleen_only_predicted.dice(), 0.0);
        assert_eq!(spleen_only_predicted.precision(), 0.0);
        assert!(spleen_only_predicted.recall().is_nan());
        let liver_missed = confusion.counts(1);
        assert_eq!(liver_missed.iou(), 0.0);
        assert!(liver_missed.precision().is_nan());
        assert_eq!(liver_missed.recall(), 0.0);
        let pancreas = confusion.counts(4);
        assert!(pancreas.both_empty());
        assert!(pancreas.iou().is_nan() && pancreas.dice().is_nan());
    }

    #[test]
    fn chunks_add_up_on_long_maps() {
        let n = 3 * CHUNK + 17;
        let truth: Vec<u8> = (0..n).map(|i| (i % 5) as u8).collect();
        let predicted: Vec<u8> = (0..n).map(|i| ((i / 3) % 5) as u8).collect();
        let confusion = Confusion::of(&predicted, &truth);
        let total: u64 = confusion.counts.iter().flatten().sum();
        assert_eq!(total, n as u64);
        let expected = (0..n).filter(|&i| i % 5 == 1 && (i / 3) % 5 == 1).count() as u64;
        assert_eq!(confusion.counts(1).tp, expected);
    }

    #[test]
    fn volume_difference_is_signed_millilitres() {
        let c = Counts {
            tp: 10,
            fp: 4,
            fn_: 1,
        };
        assert!((c.volume_difference_ml(0.5) - 1.5).abs() < 1e-12);
    }
}
