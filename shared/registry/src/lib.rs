//! The model registry: `models/{id}/model.json` beside `models/{id}/weights.mpk`.
//! Training writes a record when a job finishes; inference reads it to rebuild the network
//! and reproduce the preprocessing exactly.

use abdoseg_dataset::{config::PreprocessConfig, manifest::Fingerprint};
use abdoseg_imaging::intensity::Intensity;
use abdoseg_model::{
    device::DeviceRequest,
    train::{EpochReport, TrainingConfig},
};
use abdoseg_storage::{Id, Storage, StorageError, keys::ModelKeys};
use serde::{Deserialize, Serialize};

mod bundled;

pub use bundled::{BUNDLED_MODEL_ID, bundled_record, bundled_weights};

/// How the loss weighs classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeighting {
    None,
    /// 1/√frequency of each class in the training split, scaled to average 1.
    InverseSqrtFrequency,
    /// The weights in the training config.
    Manual,
}

/// Everything a caller chose for a job, defaults filled in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    pub dataset_id: String,
    /// Datasets whose every case joins the training slices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_training_dataset_ids: Vec<String>,
    /// Real cases scored after every epoch, beside the validation split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_validation_dataset_id: Option<String>,
    pub training: TrainingConfig,
    pub class_weighting: ClassWeighting,
    pub device: DeviceRequest,
}

/// A registered model: what inference needs to reproduce training exactly, and where
/// it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    pub model_id: String,
    pub name: String,
    pub job_id: String,
    pub spec: JobSpec,
    /// The dataset's preprocessing, input size included.
    pub preprocessing: PreprocessConfig,
    /// For `zscore`: the training split's clip bounds, mean and std (the dataset's
    /// fingerprint), so inference normalizes exactly as training did.
    #[serde(default)]
    pub zscore_statistics: Option<[f32; 4]>,
    pub history: Vec<EpochReport>,
    pub best_epoch: usize,
    pub dataset_id: String,
    pub abdoseg_version: String,
    pub weights_key: String,
    pub weights_bytes: u64,
    pub parameter_count: u64,
    pub created_at: u64,
}

impl ModelRecord {
    /// The imaging pipeline of training: window, scheme and, for `zscore`, its statistics.
    pub fn intensity(&self) -> Result<Intensity, String> {
        let fingerprint = Fingerprint {
            zscore: self.zscore_statistics,
            ..Fingerprint::default()
        };
        self.preprocessing.intensity(Some(&fingerprint))
    }
}

/// A model by id (the shipped model's id included), or the newest one for `latest` (or an
/// empty id). Model ids sort by creation time.
pub async fn resolve(storage: &Storage, model_id: &str) -> Result<ModelRecord, StorageError> {
    if model_id == BUNDLED_MODEL_ID {
        return bundled_record().map_err(|reason| StorageError::Refused {
            key: model_id.to_owned(),
            reason,
        });
    }
    if !model_id.is_empty() && model_id != "latest" {
        return storage
            .get_json(&ModelKeys::new(&Id::parse(model_id)?).record())
            .await;
    }
    let mut ids = storage.list_children(&ModelKeys::all()).await?;
    ids.sort_unstable_by(|a, b| b.cmp(a));
    for id in ids {
        let Ok(id) = Id::parse(&id) else { continue };
        match storage.get_json(&ModelKeys::new(&id).record()).await {
            Ok(record) => return Ok(record),
            // Weights written, record not yet: a registration in progress.
            Err(StorageError::NotFound { .. }) => continue,
            Err(error) => return Err(error),
        }
    }
    Err(StorageError::NotFound {
        key: "models/ (no model is registered yet)".into(),
    })
}
