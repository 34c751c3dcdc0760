//! A prepared dataset's training and validation slices, read from its shards.

use abdoseg_dataset::{
    manifest::{Manifest, Split},
    shard::decode_all,
};
use abdoseg_model::{NUM_CLASSES, train::TrainingSlice};
use abdoseg_storage::{Id, Key, Storage, keys::DatasetKeys};

use crate::Error;

/// The manifest of a prepared dataset; NOT_FOUND when there is none.
pub async fn manifest(storage: &Storage, dataset_id: &str) -> Result<Manifest, Error> {
    let id = Id::parse(dataset_id)
        .map_err(|e| Error::InvalidArgument(format!("config.dataset_id: {e}")))?;
    Ok(storage.get_json(&DatasetKeys::new(&id).manifest()).await?)
}

/// Every slice of the cases in `split`, decoded off the async runtime.
pub async fn slices(
    storage: &Storage,
    manifest: &Manifest,
    split: Split,
) -> Result<Vec<TrainingSlice>, Error> {
    let mut out = Vec::new();
    for case in manifest.cases_in(split) {
        let key = Key::parse(&case.shard_key)?;
        let bytes = storage.get(&key).await?;
        let decoded = tokio::task::spawn_blocking(move || decode_all(&bytes))
            .await
            .map_err(|e| Error::Internal(format!("decoding a shard panicked: {e}")))?
            .map_err(|e| {
                Error::Internal(format!("shard of case {} is corrupt: {e}", case.case_id))
            })?;
        out.extend(
            decoded
                .into_iter()
                .map(|(image, labels)| TrainingSlice { image, labels }),
        );
    }
    Ok(out)
}

/// 1/√frequency per class over the training split, scaled to average 1; a class absent
/// from the split gets the largest weight present.
pub fn inverse_sqrt_frequency(manifest: &Manifest) -> [f32; NUM_CLASSES] {
    let mut voxels = [0u64; NUM_CLASSES];
    for case in manifest.cases_in(Split::Train) {
        for slice in &case.slices {
            for (total, count) in voxels.iter_mut().zip(slice) {
                *total += count;
            }
        }
    }
    let all = voxels.iter().sum::<u64>().max(1) as f64;
    let raw: Vec<Option<f64>> = voxels
        .iter()
        .map(|&v| (v > 0).then(|| 1.0 / (v as f64 / all).sqrt()))
        .collect();
    let largest = raw.iter().flatten().copied().fold(1.0, f64::max);
    let filled: Vec<f64> = raw.iter().map(|w| w.unwrap_or(largest)).collect();
    let mean = filled.iter().sum::<f64>() / NUM_CLASSES as f64;
    std::array::from_fn(|c| (filled[c] / mean) as f32)
}
