//! Per-class overlap from predicted and true labels.

use serde::{Deserialize, Serialize};

use crate::NUM_CLASSES;

/// Confusion counts per class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlap {
    pub true_positives: [u64; NUM_CLASSES],
    pub false_positives: [u64; NUM_CLASSES],
    pub false_negatives: [u64; NUM_CLASSES],
}

impl Overlap {
    pub fn add(&mut self, predicted: &[u8], truth: &[u8]) {
        for (&p, &t) in predicted.iter().zip(truth) {
            let (p, t) = (usize::from(p), usize::from(t));
            if p == t {
                self.true_positives[p] += 1;
            } else {
                self.false_positives[p] += 1;
                self.false_negatives[t] += 1;
            }
        }
    }

    /// IoU per class; 1 when a class is absent from both (nothing to find, nothing found).
    pub fn iou(&self) -> [f64; NUM_CLASSES] {
        std::array::from_fn(|c| {
            let union = self.true_positives[c] + self.false_positives[c] + self.false_negatives[c];
            if union == 0 {
                1.0
            } else {
                self.true_positives[c] as f64 / union as f64
            }
        })
    }

    /// Dice per class, with the same convention.
    pub fn dice(&self) -> [f64; NUM_CLASSES] {
        std::array::from_fn(|c| {
            let total =
                2 * self.true_positives[c] + self.false_positives[c] + self.false_negatives[c];
            if total == 0 {
                1.0
            } else {
                2.0 * self.true_positives[c] as f64 / total as f64
            }
        })
    }

    /// Mean IoU of the four organs: the criterion for the best epoch.
    pub fn mean_foreground_iou(&self) -> f64 {
        self.iou()[1..].iter().sum::<f64>() / (NUM_CLASSES - 1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ratios() {
        let mut o = Overlap::default();
        o.add(&[1, 1, 0, 4], &[1, 0, 0, 4]);
        assert_eq!(o.iou()[1], 0.5);
        assert_eq!(o.iou()[4], 1.0);
        assert!((o.dice()[1] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(o.iou()[2], 1.0, "absent everywhere");
    }
}
