//! Conversions between the contract's messages and the dataset types.

pub use abdoseg_dataset::proto::preprocessing_to_proto;
use abdoseg_dataset::{
    config::PreprocessConfig,
    manifest::{CaseRecord, Manifest, Split, SplitFractions},
    proto::preprocessing_from_proto,
};
use abdoseg_protos::{
    common::v1::{self as common, ObjectRef, Organ, VolumeGeometry},
    preprocessing::v1 as pb,
};

use crate::Error;

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// The request's preprocessing, with defaults for what it leaves out.
pub fn preprocessing(
    config: Option<common::PreprocessingConfig>,
) -> Result<PreprocessConfig, Error> {
    preprocessing_from_proto(config).map_err(invalid)
}

pub fn split_fractions(split: Option<pb::SplitFractions>) -> Result<SplitFractions, Error> {
    let fractions = split.map_or_else(SplitFractions::default, |s| SplitFractions {
        train: s.train,
        validation: s.validation,
        test: s.test,
    });
    fractions.validate().map_err(invalid)?;
    Ok(fractions)
}

pub fn split_to_proto(split: Split) -> common::Split {
    match split {
        Split::Train => common::Split::Train,
        Split::Validation => common::Split::Validation,
        Split::Test => common::Split::Test,
    }
}

fn object(key: &str, etag: Option<&str>, size: u64) -> ObjectRef {
    ObjectRef {
        key: key.to_owned(),
        etag: etag.unwrap_or_default().to_owned(),
        size_bytes: size,
    }
}

fn case_to_proto(case: &CaseRecord) -> pb::CaseEntry {
    pb::CaseEntry {
        case_id: case.case_id.clone(),
        split: split_to_proto(case.split) as i32,
        shard: Some(object(
            &case.shard_key,
            Some(&case.shard_sha256),
            case.shard_bytes,
        )),
        source_image: Some(object(
            &case.source_image.key,
            case.source_image.etag.as_deref(),
            case.source_image.size,
        )),
        source_label: Some(object(
            &case.source_label.key,
            case.source_label.etag.as_deref(),
            case.source_label.size,
        )),
        geometry: Some(VolumeGeometry {
            shape: case.shape.iter().map(|&v| v as u32).collect(),
            spacing_mm: case.spacing.to_vec(),
            affine: Vec::new(),
            orientation: case.orientation.clone(),
        }),
        slices: case
            .slices
            .iter()
            .enumerate()
            .map(|(index, counts)| pb::SliceEntry {
                index: index as u32,
                class_voxels: counts.to_vec(),
            })
            .collect(),
    }
}

fn organ(class: u8) -> Organ {
    match class {
        0 => Organ::Background,
        1 => Organ::Liver,
        2 => Organ::Kidney,
        3 => Organ::Spleen,
        4 => Organ::Pancreas,
        _ => Organ::Unspecified,
    }
}

pub fn manifest_to_proto(manifest: &Manifest) -> pb::Manifest {
    pb::Manifest {
        dataset_id: manifest.dataset_id.clone(),
        source_prefix: manifest.source_prefix.clone(),
        preprocessing: Some(preprocessing_to_proto(&manifest.preprocessing)),
        seed: manifest.seed,
        split: Some(pb::SplitFractions {
            train: manifest.split.train,
            validation: manifest.split.validation,
            test: manifest.split.test,
        }),
        cases: manifest.cases.iter().map(case_to_proto).collect(),
        failed_cases: manifest
            .failed
            .iter()
            .map(|f| pb::CaseFailed {
                case_id: f.case_id.clone(),
                reason: f.reason.clone(),
            })
            .collect(),
        fingerprint: Some(pb::Fingerprint {
            median_spacing_mm: manifest.fingerprint.median_spacing.to_vec(),
            median_shape: manifest
                .fingerprint
                .median_shape
                .iter()
                .map(|&v| v as u32)
                .collect(),
            intensities: manifest
                .fingerprint
                .intensities
                .iter()
                .map(|s| pb::IntensityStatistics {
                    organ: organ(s.class) as i32,
                    mean: s.mean,
                    std: s.std,
                    percentile_00_5: s.percentile_00_5,
                    percentile_99_5: s.percentile_99_5,
                    voxel_count: s.voxels,
                })
                .collect(),
        }),
        abdoseg_version: manifest.abdoseg_version.clone(),
        created_at: Some(prost_types::Timestamp {
            seconds: manifest.created_at as i64,
            nanos: 0,
        }),
    }
}
