//! How hard a dataset is for intensity alone: the best single HU interval per organ, the
//! strongest thresholding baseline there is.

use crate::NUM_CLASSES;

/// HU range and bin width of the search.
const LOW: i32 = -300;
const HIGH: i32 = 400;
const BIN: i32 = 2;

/// The best `[low, high)` HU interval for `organ` and its IoU against the labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: i32,
    pub high: i32,
    pub iou: f64,
}

/// Searches every interval on a 2 HU grid from −300 to 400 HU.
pub fn best_interval<'a>(
    hu: impl IntoIterator<Item = &'a i16>,
    labels: impl IntoIterator<Item = &'a u8>,
    organ: u8,
) -> Interval {
    let bins = ((HIGH - LOW) / BIN) as usize;
    let mut all = vec![0u64; bins];
    let mut inside = vec![0u64; bins];
    let mut organ_total = 0u64;
    for (&v, &l) in hu.into_iter().zip(labels) {
        let is_organ = l == organ;
        organ_total += u64::from(is_organ);
        let v = i32::from(v);
        if (LOW..HIGH).contains(&v) {
            let b = ((v - LOW) / BIN) as usize;
            all[b] += 1;
            inside[b] += u64::from(is_organ);
        }
    }
    let mut best = Interval {
        low: LOW,
        high: LOW,
        iou: 0.0,
    };
    for start in 0..bins {
        let (mut selected, mut hits) = (0u64, 0u64);
        for end in start..bins {
            selected += all[end];
            hits += inside[end];
            let union = selected + organ_total - hits;
            let iou = if union == 0 {
                0.0
            } else {
                hits as f64 / union as f64
            };
            if iou > best.iou {
                best = Interval {
                    low: LOW + start as i32 * BIN,
                    high: LOW + (end as i32 + 1) * BIN,
                    iou,
                };
            }
        }
    }
    best
}

/// Mean and standard deviation of HU per class (background first), with voxel counts.
pub fn hu_statistics<'a>(
    hu: impl IntoIterator<Item = &'a i16>,
    labels: impl IntoIterator<Item = &'a u8>,
) -> [(u64, f64, f64); NUM_CLASSES] {
    let mut sums = [(0u64, 0f64, 0f64); NUM_CLASSES];
    for (&v, &l) in hu.into_iter().zip(labels) {
        if let Some(s) = sums.get_mut(usize::from(l)) {
            let v = f64::from(v);
            s.0 += 1;
            s.1 += v;
            s.2 += v * v;
        }
    }
    sums.map(|(n, sum, sq)| {
        if n == 0 {
            return (0, 0.0, 0.0);
        }
        let mean = sum / n as f64;
        (n, mean, (sq / n as f64 - mean * mean).max(0.0).sqrt())
    })
}
