//! Split-level metrics: per-class means and medians over cases (undefined values left
//! out, as nnU-Net does) and the study's IoU over all voxels of the split at once.

use abdoseg_imaging::NUM_CLASSES;
use serde::{Deserialize, Serialize};

use crate::measures::{CaseEvaluation, ClassEvaluation, Confusion, percentile};

/// One class over a split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassAggregate {
    pub class: u8,
    pub mean_iou: Option<f64>,
    pub median_iou: Option<f64>,
    pub mean_dice: Option<f64>,
    pub median_dice: Option<f64>,
    /// IoU of the summed counts of every case: the study's table.
    pub pooled_iou: Option<f64>,
    pub pooled_dice: Option<f64>,
    pub mean_hd95_mm: Option<f64>,
    pub median_hd95_mm: Option<f64>,
    pub mean_nsd: Option<f64>,
    /// Cases where the class is in the prediction or the truth (IoU defined).
    pub cases_with_class: u32,
    /// Cases where HD95 is undefined because exactly one side is empty.
    pub cases_one_sided: u32,
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn collect(
    cases: &[CaseEvaluation],
    class: usize,
    f: fn(&ClassEvaluation) -> Option<f64>,
) -> Vec<f64> {
    cases.iter().filter_map(|c| f(&c.classes[class])).collect()
}

fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// Aggregates of every class, background first.
pub fn aggregate(cases: &[CaseEvaluation]) -> Vec<ClassAggregate> {
    let pooled = cases.iter().fold(Confusion::default(), |sum, case| {
        sum.merged(Confusion {
            counts: case.confusion,
        })
    });
    (0..NUM_CLASSES)
        .map(|class| {
            let iou = collect(cases, class, |c| c.iou);
            let dice = collect(cases, class, |c| c.dice);
            let hd95 = collect(cases, class, |c| c.hd95_mm);
            let nsd = collect(cases, class, |c| c.nsd);
            let counts = pooled.counts(class);
            let one_sided = cases
                .iter()
                .filter(|c| {
                    let k = c.classes[class].counts();
                    k.tp == 0 && (k.fp == 0) != (k.fn_ == 0)
                })
                .count();
            ClassAggregate {
                class: class as u8,
                mean_iou: mean(&iou),
                median_iou: percentile(&iou, 50.0),
                mean_dice: mean(&dice),
                median_dice: percentile(&dice, 50.0),
                pooled_iou: finite(counts.iou()),
                pooled_dice: finite(counts.dice()),
                mean_hd95_mm: mean(&hd95),
                median_hd95_mm: percentile(&hd95, 50.0),
                mean_nsd: mean(&nsd),
                cases_with_class: iou.len() as u32,
                cases_one_sided: one_sided as u32,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(liver: (u64, u64, u64), hd95: Option<f64>) -> CaseEvaluation {
        let (tp, fp, fn_) = liver;
        let mut confusion = [[0u64; NUM_CLASSES]; NUM_CLASSES];
        confusion[1][1] = tp;
        confusion[0][1] = fp;
        confusion[1][0] = fn_;
        confusion[0][0] = 1000;
        let classes = (0..NUM_CLASSES as u8)
            .map(|class| {
                let counts = Confusion { counts: confusion }.counts(usize::from(class));
                let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
                ClassEvaluation {
                    class,
                    true_positives: counts.tp,
                    false_positives: counts.fp,
                    false_negatives: counts.fn_,
                    iou: ratio(
                        counts.tp as f64,
                        (counts.tp + counts.fp + counts.fn_) as f64,
                    ),
                    dice: ratio(
                        2.0 * counts.tp as f64,
                        (2 * counts.tp + counts.fp + counts.fn_) as f64,
                    ),
                    precision: None,
                    recall: None,
                    volume_difference_ml: 0.0,
                    hd95_mm: if class == 1 { hd95 } else { None },
                    nsd: None,
                }
            })
            .collect();
        CaseEvaluation { classes, confusion }
    }

    #[test]
    fn pooled_iou_weights_cases_by_size_and_means_do_not() {
        // A large good case and a small bad one.
        let cases = [case((90, 5, 5), Some(2.0)), case((1, 4, 5), Some(10.0))];
        let liver = aggregate(&cases)[1];
        assert!((liver.pooled_iou.unwrap() - 91.0 / 110.0).abs() < 1e-12);
        assert!((liver.mean_iou.unwrap() - (0.9 + 0.1) / 2.0).abs() < 1e-12);
        assert!((liver.median_iou.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(liver.mean_hd95_mm, Some(6.0));
        assert_eq!(liver.cases_with_class, 2);
    }

    #[test]
    fn undefined_cases_are_left_out_and_counted() {
        let cases = [
            case((0, 0, 0), None),
            case((0, 0, 7), None),
            case((8, 0, 0), Some(0.0)),
        ];
        let liver = aggregate(&cases)[1];
        assert_eq!(liver.cases_with_class, 2);
        assert_eq!(liver.mean_iou, Some(0.5));
        assert_eq!(liver.cases_one_sided, 1);
        let pancreas = aggregate(&cases)[4];
        assert_eq!(pancreas.mean_iou, None);
        assert_eq!(pancreas.pooled_iou, None);
    }
}
