//! Conversions between the contract's messages and the job and model records.

use abdoseg_dataset::proto::preprocessing_to_proto;
use abdoseg_model::{
    Architecture, NUM_CLASSES, Normalization, SliceContext,
    device::{Device, DeviceRequest},
    train::{Augmentation, EpochReport, LossKind, TrainingConfig},
};
use abdoseg_protos::{
    common::v1::{self as common, ClassMetrics, ObjectRef, Organ},
    training::v1 as pb,
};
use abdoseg_storage::Id;

use crate::{
    Error,
    record::{ClassWeighting, JobRecord, JobSpec, JobState, ModelRecord},
};

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// Defaults of a job: the study's batch size, U-Net 1 at depth 5.
pub const DEFAULT_DEPTH: usize = 5;
pub const DEFAULT_BASE_FILTERS: usize = 16;
pub const DEFAULT_BATCH_SIZE: usize = 30;
pub const DEFAULT_EPOCHS: usize = 50;
pub const DEFAULT_LEARNING_RATE: f64 = 1e-3;
/// The most extra training datasets a job may name.
pub const MAX_EXTRA_DATASETS: usize = 8;

/// The request's configuration with defaults for what it leaves out, every field checked.
pub fn job_spec(config: pb::TrainingConfig) -> Result<JobSpec, Error> {
    if config.dataset_id.is_empty() {
        return Err(invalid("config.dataset_id is required"));
    }
    let architecture = match pb::Architecture::try_from(config.architecture) {
        Ok(pb::Architecture::Unspecified | pb::Architecture::Unet1) => Architecture::Unet1,
        Ok(pb::Architecture::Unet2) => Architecture::Unet2,
        Err(_) => {
            return Err(invalid(format!(
                "unknown architecture {}",
                config.architecture
            )));
        }
    };
    let normalization = match pb::Normalization::try_from(config.normalization) {
        Ok(pb::Normalization::Unspecified | pb::Normalization::Instance) => Normalization::Instance,
        Ok(pb::Normalization::None) => Normalization::None,
        Err(_) => {
            return Err(invalid(format!(
                "unknown normalization {}",
                config.normalization
            )));
        }
    };
    let or = |value: u32, default: usize| if value == 0 { default } else { value as usize };
    let depth = or(config.depth, DEFAULT_DEPTH);
    let base_filters = or(config.base_filters, DEFAULT_BASE_FILTERS);
    if !(1..=256).contains(&base_filters) {
        return Err(invalid(format!(
            "base_filters must be 1 to 256, not {base_filters}"
        )));
    }
    let batch_size = or(config.batch_size, DEFAULT_BATCH_SIZE);
    if batch_size > 1024 {
        return Err(invalid(format!(
            "batch_size must be 1 to 1024, not {batch_size}"
        )));
    }
    let epochs = or(config.epochs, DEFAULT_EPOCHS);
    if epochs > 100_000 {
        return Err(invalid(format!("epochs must be 1 to 100000, not {epochs}")));
    }
    let learning_rate = if config.learning_rate == 0.0 {
        DEFAULT_LEARNING_RATE
    } else {
        config.learning_rate
    };
    if !(learning_rate.is_finite() && learning_rate > 0.0 && learning_rate < 1.0) {
        return Err(invalid("learning_rate must be above 0 and below 1"));
    }
    if !(config.weight_decay.is_finite() && (0.0..1.0).contains(&config.weight_decay)) {
        return Err(invalid("weight_decay must be 0 or more and below 1"));
    }
    let loss = match pb::Loss::try_from(config.loss) {
        Ok(pb::Loss::Unspecified | pb::Loss::CeDice) => LossKind::CeDice,
        Ok(pb::Loss::CrossEntropy) => LossKind::CrossEntropy,
        Ok(pb::Loss::Dice) => LossKind::Dice,
        Err(_) => return Err(invalid(format!("unknown loss {}", config.loss))),
    };
    let (class_weighting, class_weights) =
        match pb::ClassWeighting::try_from(config.class_weighting) {
            Ok(pb::ClassWeighting::Unspecified | pb::ClassWeighting::None) => {
                (ClassWeighting::None, None)
            }
            Ok(pb::ClassWeighting::InverseSqrtFrequency) => {
                (ClassWeighting::InverseSqrtFrequency, None)
            }
            Ok(pb::ClassWeighting::Manual) => {
                let weights: [f32; NUM_CLASSES] =
                    config.class_weights.as_slice().try_into().map_err(|_| {
                        invalid(format!(
                            "MANUAL class weighting needs {NUM_CLASSES} class_weights, not {}",
                            config.class_weights.len()
                        ))
                    })?;
                if weights.iter().any(|w| !w.is_finite() || *w < 0.0)
                    || weights.iter().all(|w| *w == 0.0)
                {
                    return Err(invalid(
                        "class_weights must be finite, non-negative and not all 0",
                    ));
                }
                (ClassWeighting::Manual, Some(weights))
            }
            Err(_) => {
                return Err(invalid(format!(
                    "unknown class weighting {}",
                    config.class_weighting
                )));
            }
        };
    if !(0.0..=1.0).contains(&config.foreground_oversampling) {
        return Err(invalid("foreground_oversampling must be 0 to 1"));
    }
    let augmentation = match config.augmentation {
        None => Augmentation::default(),
        Some(a) if !a.enabled => Augmentation::none(),
        Some(a) => {
            let augmentation = Augmentation {
                max_rotation_degrees: a.max_rotation_degrees,
                max_scale: a.max_scale,
                intensity_jitter: a.intensity_jitter,
                noise_std: a.noise_std,
                gamma: a.gamma,
            };
            let ok = |v: f32, max: f32| v.is_finite() && (0.0..=max).contains(&v);
            if !(ok(a.max_rotation_degrees, 45.0)
                && ok(a.max_scale, 0.5)
                && ok(a.intensity_jitter, 0.5)
                && ok(a.noise_std, 0.5)
                && ok(a.gamma, 1.0))
            {
                return Err(invalid(
                    "augmentation: rotation 0 to 45 degrees, scale, jitter and noise 0 to 0.5, gamma 0 to 1",
                ));
            }
            augmentation
        }
    };
    let device = match common::Device::try_from(config.device) {
        Ok(common::Device::Unspecified | common::Device::Auto) => DeviceRequest::Auto,
        Ok(common::Device::Cpu) => DeviceRequest::Cpu,
        Ok(common::Device::Cuda) => DeviceRequest::Cuda,
        Err(_) => return Err(invalid(format!("unknown device {}", config.device))),
    };
    if config.slices_per_epoch as usize > TrainingConfig::MAX_SLICES_PER_EPOCH {
        return Err(invalid(format!(
            "slices_per_epoch must be 0 (the whole training split) to {}, not {}",
            TrainingConfig::MAX_SLICES_PER_EPOCH,
            config.slices_per_epoch
        )));
    }
    if config.early_stopping_patience as usize > epochs {
        return Err(invalid(format!(
            "early_stopping_patience must be 0 (off) to epochs ({epochs}), not {}",
            config.early_stopping_patience
        )));
    }
    let training = TrainingConfig {
        architecture,
        normalization,
        depth,
        base_filters,
        batch_size,
        epochs,
        learning_rate,
        weight_decay: config.weight_decay,
        loss,
        class_weights,
        foreground_share: config.foreground_oversampling,
        augmentation,
        seed: config.seed,
        early_stopping_patience: (config.early_stopping_patience > 0)
            .then_some(config.early_stopping_patience as usize),
        slices_per_epoch: (config.slices_per_epoch > 0).then_some(config.slices_per_epoch as usize),
        context: if config.context_slices <= 1 {
            SliceContext::TWO_D
        } else {
            SliceContext {
                slices: config.context_slices as usize,
                step_mm: config.context_step_mm,
            }
        },
    };
    training.context.validate().map_err(invalid)?;
    training.model().validate().map_err(invalid)?;
    let name = if config.name.is_empty() {
        let variant = match architecture {
            Architecture::Unet1 => "unet1",
            Architecture::Unet2 => "unet2",
        };
        format!("{variant}-d{depth}-b{base_filters}")
    } else if config.name.chars().count() > 200 || config.name.chars().any(char::is_control) {
        return Err(invalid(
            "name must be at most 200 characters without control characters",
        ));
    } else {
        config.name
    };
    if config.extra_training_dataset_ids.len() > MAX_EXTRA_DATASETS {
        return Err(invalid(format!(
            "at most {MAX_EXTRA_DATASETS} extra_training_dataset_ids, not {}",
            config.extra_training_dataset_ids.len()
        )));
    }
    let mut named = vec![config.dataset_id.as_str()];
    for id in config
        .extra_training_dataset_ids
        .iter()
        .chain(Some(&config.real_validation_dataset_id).filter(|id| !id.is_empty()))
    {
        Id::parse(id).map_err(|e| invalid(format!("dataset id {id:?}: {e}")))?;
        if named.contains(&id.as_str()) {
            return Err(invalid(format!(
                "dataset {id} is named twice: the main, extra training and real validation                  datasets must all differ"
            )));
        }
        named.push(id);
    }
    Ok(JobSpec {
        name,
        dataset_id: config.dataset_id,
        extra_training_dataset_ids: config.extra_training_dataset_ids,
        real_validation_dataset_id: (!config.real_validation_dataset_id.is_empty())
            .then_some(config.real_validation_dataset_id),
        training,
        class_weighting,
        device,
    })
}

fn device_to_proto(device: DeviceRequest) -> common::Device {
    match device {
        DeviceRequest::Auto => common::Device::Auto,
        DeviceRequest::Cpu => common::Device::Cpu,
        DeviceRequest::Cuda => common::Device::Cuda,
    }
}

fn resolved_to_proto(device: Device) -> common::Device {
    match device {
        Device::Cpu => common::Device::Cpu,
        Device::Cuda => common::Device::Cuda,
    }
}

/// The configuration as the contract states it; `preprocessing` once known (models).
pub fn config_to_proto(
    spec: &JobSpec,
    preprocessing: Option<common::PreprocessingConfig>,
) -> pb::TrainingConfig {
    let t = &spec.training;
    let augmentation = t.augmentation;
    pb::TrainingConfig {
        dataset_id: spec.dataset_id.clone(),
        architecture: match t.architecture {
            Architecture::Unet1 => pb::Architecture::Unet1,
            Architecture::Unet2 => pb::Architecture::Unet2,
        } as i32,
        depth: t.depth as u32,
        base_filters: t.base_filters as u32,
        preprocessing,
        batch_size: t.batch_size as u32,
        epochs: t.epochs as u32,
        learning_rate: t.learning_rate,
        weight_decay: t.weight_decay,
        loss: match t.loss {
            LossKind::CeDice => pb::Loss::CeDice,
            LossKind::CrossEntropy => pb::Loss::CrossEntropy,
            LossKind::Dice => pb::Loss::Dice,
        } as i32,
        class_weighting: match spec.class_weighting {
            ClassWeighting::None => pb::ClassWeighting::None,
            ClassWeighting::InverseSqrtFrequency => pb::ClassWeighting::InverseSqrtFrequency,
            ClassWeighting::Manual => pb::ClassWeighting::Manual,
        } as i32,
        class_weights: t.class_weights.map(|w| w.to_vec()).unwrap_or_default(),
        foreground_oversampling: t.foreground_share,
        augmentation: Some(pb::Augmentation {
            enabled: augmentation != Augmentation::none(),
            max_rotation_degrees: augmentation.max_rotation_degrees,
            max_scale: augmentation.max_scale,
            intensity_jitter: augmentation.intensity_jitter,
            noise_std: augmentation.noise_std,
            gamma: augmentation.gamma,
        }),
        seed: t.seed,
        device: device_to_proto(spec.device) as i32,
        early_stopping_patience: t.early_stopping_patience.unwrap_or(0) as u32,
        name: spec.name.clone(),
        slices_per_epoch: t.slices_per_epoch.unwrap_or(0) as u32,
        normalization: match t.normalization {
            Normalization::None => pb::Normalization::None,
            Normalization::Instance => pb::Normalization::Instance,
        } as i32,
        extra_training_dataset_ids: spec.extra_training_dataset_ids.clone(),
        real_validation_dataset_id: spec.real_validation_dataset_id.clone().unwrap_or_default(),
        context_slices: t.context.slices as u32,
        context_step_mm: t.context.step_mm,
    }
}

fn class_metrics(overlap: &abdoseg_model::train::Overlap) -> Vec<ClassMetrics> {
    let (iou, dice) = (overlap.iou(), overlap.dice());
    (0..NUM_CLASSES)
        .map(|c| {
            let (tp, fp, fn_) = (
                overlap.true_positives[c],
                overlap.false_positives[c],
                overlap.false_negatives[c],
            );
            let ratio = |n: u64, d: u64| if d == 0 { 1.0 } else { n as f64 / d as f64 };
            ClassMetrics {
                organ: Organ::try_from(c as i32 + 1).unwrap_or(Organ::Unspecified) as i32,
                iou: iou[c],
                dice: dice[c],
                true_positives: tp,
                false_positives: fp,
                false_negatives: fn_,
                precision: ratio(tp, tp + fp),
                recall: ratio(tp, tp + fn_),
                ..ClassMetrics::default()
            }
        })
        .collect()
}

pub fn epoch_to_proto(report: &EpochReport) -> pb::EpochMetrics {
    pb::EpochMetrics {
        epoch: report.epoch as u32,
        train_loss: report.train_loss,
        validation_loss: report.validation_loss,
        train: class_metrics(&report.train),
        validation: class_metrics(&report.validation),
        mean_foreground_validation_iou: report.validation.mean_foreground_iou(),
        real_validation: report
            .real_validation
            .as_ref()
            .map(class_metrics)
            .unwrap_or_default(),
        duration: prost_types::Duration::try_from(std::time::Duration::from_secs_f64(
            report.seconds.max(0.0),
        ))
        .ok(),
    }
}

pub fn timestamp(seconds: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

pub fn state_to_proto(state: JobState) -> pb::JobState {
    match state {
        JobState::Queued => pb::JobState::Queued,
        JobState::Running => pb::JobState::Running,
        JobState::Succeeded => pb::JobState::Succeeded,
        JobState::Failed => pb::JobState::Failed,
        JobState::Cancelled => pb::JobState::Cancelled,
    }
}

/// A job; with `history` false (lists) the metrics history is left out.
pub fn job_to_proto(record: &JobRecord, history: bool) -> pb::Job {
    pb::Job {
        job_id: record.job_id.clone(),
        state: state_to_proto(record.state) as i32,
        config: Some(config_to_proto(&record.spec, None)),
        created_at: Some(timestamp(record.created_at)),
        updated_at: Some(timestamp(record.updated_at)),
        epochs_done: record.epochs_done() as u32,
        best_epoch: record.best_epoch().unwrap_or(0) as u32,
        history: if history {
            record.history.iter().map(epoch_to_proto).collect()
        } else {
            Vec::new()
        },
        model_id: record.model_id.clone().unwrap_or_default(),
        error: record.error.clone().unwrap_or_default(),
        resolved_device: record
            .resolved_device
            .map_or(common::Device::Unspecified, resolved_to_proto) as i32,
    }
}

/// A model; with `history` false (lists) the metrics history is left out.
pub fn model_to_proto(record: &ModelRecord, history: bool) -> pb::Model {
    pb::Model {
        model_id: record.model_id.clone(),
        name: record.name.clone(),
        job_id: record.job_id.clone(),
        config: Some(config_to_proto(
            &record.spec,
            Some(preprocessing_to_proto(&record.preprocessing)),
        )),
        history: if history {
            record.history.iter().map(epoch_to_proto).collect()
        } else {
            Vec::new()
        },
        best_epoch: record.best_epoch as u32,
        dataset_id: record.dataset_id.clone(),
        abdoseg_version: record.abdoseg_version.clone(),
        weights: Some(ObjectRef {
            key: record.weights_key.clone(),
            etag: String::new(),
            size_bytes: record.weights_bytes,
        }),
        parameter_count: record.parameter_count,
        created_at: Some(timestamp(record.created_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> pb::TrainingConfig {
        pb::TrainingConfig {
            dataset_id: "ds-1".into(),
            ..pb::TrainingConfig::default()
        }
    }

    #[test]
    fn defaults_fill_what_a_request_leaves_out_and_survive_a_round_trip() {
        let spec = job_spec(request()).unwrap();
        let t = &spec.training;
        assert_eq!((t.depth, t.base_filters, t.batch_size), (5, 16, 30));
        assert_eq!(t.normalization, Normalization::Instance);
        assert_eq!(t.augmentation, Augmentation::default());
        assert_eq!(spec.device, DeviceRequest::Auto);
        assert_eq!(spec.name, "unet1-d5-b16");
        let back = job_spec(config_to_proto(&spec, None)).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&spec).unwrap()
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let cases: Vec<(pb::TrainingConfig, &str)> = vec![
            (pb::TrainingConfig::default(), "dataset_id"),
            (
                pb::TrainingConfig {
                    depth: 9,
                    ..request()
                },
                "depth",
            ),
            (
                pb::TrainingConfig {
                    architecture: 7,
                    ..request()
                },
                "architecture",
            ),
            (
                pb::TrainingConfig {
                    learning_rate: -1.0,
                    ..request()
                },
                "learning_rate",
            ),
            (
                pb::TrainingConfig {
                    batch_size: 5000,
                    ..request()
                },
                "batch_size",
            ),
            (
                pb::TrainingConfig {
                    class_weighting: pb::ClassWeighting::Manual as i32,
                    class_weights: vec![0.0; NUM_CLASSES],
                    ..request()
                },
                "class_weights",
            ),
            (
                pb::TrainingConfig {
                    augmentation: Some(pb::Augmentation {
                        enabled: true,
                        max_rotation_degrees: 90.0,
                        ..pb::Augmentation::default()
                    }),
                    ..request()
                },
                "augmentation",
            ),
            (
                pb::TrainingConfig {
                    augmentation: Some(pb::Augmentation {
                        enabled: true,
                        gamma: 1.5,
                        ..pb::Augmentation::default()
                    }),
                    ..request()
                },
                "gamma 0 to 1",
            ),
        ];
        for (config, field) in cases {
            let error = job_spec(config).unwrap_err().to_string();
            assert!(error.contains(field), "{field}: {error}");
        }
    }
}
