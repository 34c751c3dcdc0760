//! Label maps in the AbdomenCT-1K convention: counts per class.

use crate::NUM_CLASSES;

/// Voxels of each class (background first) among `labels`.
pub fn class_counts<'a>(labels: impl IntoIterator<Item = &'a u8>) -> [u64; NUM_CLASSES] {
    let mut counts = [0u64; NUM_CLASSES];
    for &label in labels {
        if let Some(count) = counts.get_mut(usize::from(label)) {
            *count += 1;
        }
    }
    counts
}
