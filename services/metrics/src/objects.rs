//! Label maps and CT volumes read from the store, with every size bounded.

use abdoseg_imaging::{
    Volume,
    nifti::{ReadLimits, read_ct, read_labels, read_labels_remapped},
};
use abdoseg_storage::{Key, Storage};

use crate::Error;

/// Upper bounds on what one request may make the service read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLimits {
    /// A stored (possibly gzipped) object, in bytes.
    pub max_object_bytes: u64,
    /// Decoded voxel data, in bytes.
    pub max_voxel_bytes: u64,
}

impl Default for ObjectLimits {
    fn default() -> Self {
        Self {
            max_object_bytes: 1 << 30,
            max_voxel_bytes: ReadLimits::default().max_bytes,
        }
    }
}

impl ObjectLimits {
    fn read_limits(&self) -> ReadLimits {
        ReadLimits {
            max_bytes: self.max_voxel_bytes,
            ..ReadLimits::default()
        }
    }
}

/// Reads a label map of classes 0–4; `what` names the field in errors (no patient data).
pub async fn label_map(
    storage: &Storage,
    key: &Key,
    limits: ObjectLimits,
    what: &str,
) -> Result<Volume<u8>, Error> {
    label_map_remapped(storage, key, limits, what, None).await
}

/// Reads a label map whose values `remap` translates into classes (a dataset's own
/// convention, e.g. nnU-Net's `dataset.json`); `None` expects classes 0–4.
pub async fn label_map_remapped(
    storage: &Storage,
    key: &Key,
    limits: ObjectLimits,
    what: &str,
    remap: Option<[Option<u8>; 256]>,
) -> Result<Volume<u8>, Error> {
    let bytes = storage.get_bounded(key, limits.max_object_bytes).await?;
    let read = limits.read_limits();
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || {
        match &remap {
            Some(remap) => read_labels_remapped(&bytes, &read, remap),
            None => read_labels(&bytes, &read),
        }
        .map_err(|e| Error::InvalidObject {
            what,
            detail: e.to_string(),
        })
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Reads a CT volume in HU.
pub async fn ct(
    storage: &Storage,
    key: &Key,
    limits: ObjectLimits,
    what: &str,
) -> Result<Volume<f32>, Error> {
    let bytes = storage.get_bounded(key, limits.max_object_bytes).await?;
    let read = limits.read_limits();
    let what = what.to_owned();
    tokio::task::spawn_blocking(move || {
        read_ct(&bytes, &read).map_err(|e| Error::InvalidObject {
            what,
            detail: e.to_string(),
        })
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}
