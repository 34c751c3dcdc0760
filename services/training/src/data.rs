//! A prepared dataset's training and validation slices, read from its shards.

use abdoseg_dataset::{
    manifest::{CaseRecord, Manifest, Split},
    shard::decode_all,
};
use abdoseg_model::{NUM_CLASSES, SliceContext, train::TrainingSlice};
use abdoseg_registry::JobSpec;
use abdoseg_storage::{Id, Key, Storage, keys::DatasetKeys};

use crate::Error;

/// The manifest of a prepared dataset; NOT_FOUND when there is none.
pub async fn manifest(storage: &Storage, dataset_id: &str) -> Result<Manifest, Error> {
    let id = Id::parse(dataset_id)
        .map_err(|e| Error::InvalidArgument(format!("config.dataset_id: {e}")))?;
    Ok(storage.get_json(&DatasetKeys::new(&id).manifest()).await?)
}

/// Every split.
pub const ALL_SPLITS: &[Split] = &[Split::Train, Split::Validation, Split::Test];

/// A job's datasets: the main one (its train and validation splits), the extra training
/// ones and the real validation one (every case of both).
#[derive(Debug)]
pub struct JobDatasets {
    pub main: Manifest,
    pub extra_training: Vec<Manifest>,
    pub real_validation: Option<Manifest>,
}

impl JobDatasets {
    /// Reads the manifests `spec` names; an extra or real dataset must have the main one's
    /// preprocessing (the same model input), or the request is INVALID_ARGUMENT.
    pub async fn read(storage: &Storage, spec: &JobSpec) -> Result<Self, Error> {
        let main = manifest(storage, &spec.dataset_id).await?;
        let read_matching = async |id: &str, role: &str| {
            let other = manifest(storage, id).await?;
            if other.preprocessing != main.preprocessing {
                return Err(Error::InvalidArgument(format!(
                    "{role} dataset {id} was prepared differently from dataset {}: the \
                     preprocessing (scheme, window, size, pixel size) must be the same",
                    main.dataset_id
                )));
            }
            Ok(other)
        };
        let mut extra_training = Vec::new();
        for id in &spec.extra_training_dataset_ids {
            extra_training.push(read_matching(id, "extra training").await?);
        }
        let real_validation = match &spec.real_validation_dataset_id {
            Some(id) => Some(read_matching(id, "real validation").await?),
            None => None,
        };
        Ok(Self {
            main,
            extra_training,
            real_validation,
        })
    }

    /// The cases the job trains on: the main dataset's training split and every case of
    /// the extra training datasets.
    pub fn training_cases(&self) -> impl Iterator<Item = &CaseRecord> {
        self.main.cases_in(Split::Train).chain(
            self.extra_training
                .iter()
                .flat_map(|m| ALL_SPLITS.iter().flat_map(move |&s| m.cases_in(s))),
        )
    }

    /// Every case the job reads: the main dataset's and every case of the others.
    pub fn all_cases(&self) -> impl Iterator<Item = &CaseRecord> {
        ALL_SPLITS
            .iter()
            .flat_map(|&s| self.main.cases_in(s))
            .chain(
                self.extra_training
                    .iter()
                    .chain(&self.real_validation)
                    .flat_map(|m| ALL_SPLITS.iter().flat_map(move |&s| m.cases_in(s))),
            )
    }

    /// Memory every slice the job loads takes once decoded (image as floats, one plane
    /// per context channel; labels).
    pub fn bytes(&self, context: &SliceContext) -> u64 {
        let count = |manifest: &Manifest, splits: &[Split]| -> u64 {
            splits
                .iter()
                .flat_map(|&split| manifest.cases_in(split))
                .map(|case| case.slices.len() as u64)
                .sum()
        };
        let preprocessing = &self.main.preprocessing;
        let pixels = (preprocessing.slice_height * preprocessing.slice_width) as u64;
        let slices = count(&self.main, &[Split::Train, Split::Validation])
            + self
                .extra_training
                .iter()
                .chain(&self.real_validation)
                .map(|m| count(m, ALL_SPLITS))
                .sum::<u64>();
        slices * pixels * (4 * context.slices.max(1) as u64 + 1)
    }
}

/// Every slice of the cases in `splits`, decoded off the async runtime, with its
/// neighbours as channels when `context` asks for them (in millimetres: each case's own
/// slice spacing places them).
pub async fn slices(
    storage: &Storage,
    manifest: &Manifest,
    splits: &[Split],
    context: SliceContext,
) -> Result<Vec<TrainingSlice>, Error> {
    let mut out = Vec::new();
    for case in splits.iter().flat_map(|&split| manifest.cases_in(split)) {
        let key = Key::parse(&case.shard_key)?;
        let bytes = storage.get(&key).await?;
        let spacing = case.axial_spacing_mm();
        let case_id = case.case_id.clone();
        let slices = tokio::task::spawn_blocking(move || -> Result<Vec<TrainingSlice>, String> {
            let (planes, labels): (Vec<_>, Vec<_>) = decode_all(&bytes)?.into_iter().unzip();
            // Only 2.5D needs the spacing (StartTraining refuses such jobs without one).
            let spacing = match spacing {
                Some(mm) => mm,
                None if context.slices > 1 => return Err("its record has no axial spacing".into()),
                None => 0.0,
            };
            let images = context.stack(planes, spacing)?;
            Ok(images
                .into_iter()
                .zip(labels)
                .map(|(image, labels)| TrainingSlice { image, labels })
                .collect())
        })
        .await
        .map_err(|e| Error::Internal(format!("decoding a shard panicked: {e}")))?
        .map_err(|e| Error::Internal(format!("shard of case {case_id} is corrupt: {e}")))?;
        out.extend(slices);
    }
    Ok(out)
}

/// 1/√frequency per class over the training cases, scaled to average 1; a class absent
/// from them gets the largest weight present.
pub fn inverse_sqrt_frequency<'a>(
    training_cases: impl IntoIterator<Item = &'a CaseRecord>,
) -> [f32; NUM_CLASSES] {
    let mut voxels = [0u64; NUM_CLASSES];
    for case in training_cases {
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

#[cfg(test)]
mod tests {
    use abdoseg_dataset::{
        config::PreprocessConfig,
        manifest::{CaseRecord, Fingerprint, SourceObject, SplitFractions},
    };

    use super::*;

    fn case(split: Split, slices: Vec<[u64; NUM_CLASSES]>) -> CaseRecord {
        let source = SourceObject {
            key: String::new(),
            etag: None,
            size: 0,
        };
        CaseRecord {
            case_id: "c".into(),
            split,
            shard_key: String::new(),
            shard_sha256: String::new(),
            shard_bytes: 0,
            slices,
            shape: [1, 1, 1],
            spacing: [1.0; 3],
            orientation: String::new(),
            source_image: source.clone(),
            source_label: source,
            hu_histograms: Vec::new(),
        }
    }

    #[test]
    fn rarer_classes_weigh_more_and_only_the_training_split_counts() {
        let manifest = Manifest {
            dataset_id: "ds".into(),
            format_version: 1,
            abdoseg_version: String::new(),
            source_prefix: String::new(),
            layout: String::new(),
            preprocessing: PreprocessConfig::default(),
            seed: 0,
            split: SplitFractions::default(),
            cases: vec![
                case(Split::Train, vec![[9000, 400, 100, 0, 25]]),
                case(Split::Validation, vec![[0, 0, 0, 1_000_000, 0]]),
            ],
            failed: Vec::new(),
            fingerprint: Fingerprint::default(),
            created_at: 0,
        };
        let w = inverse_sqrt_frequency(manifest.cases_in(Split::Train));
        assert!(w[0] < w[1] && w[1] < w[2] && w[2] < w[4], "{w:?}");
        // Spleen is absent from training: it gets the largest weight present.
        assert!((w[3] - w[4]).abs() < 1e-6, "{w:?}");
        assert!((w.iter().sum::<f32>() / NUM_CLASSES as f32 - 1.0).abs() < 1e-5);
        // Background vs pancreas: √(9000/25) = √360.
        assert!((w[4] / w[0] - 360f32.sqrt()).abs() < 1e-3, "{w:?}");
    }
}
