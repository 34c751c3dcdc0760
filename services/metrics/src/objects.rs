//! Label maps and CT volumes read from the store, with every size bounded.

use std::time::Duration;

use abdoseg_imaging::{
    Volume,
    nifti::{ReadLimits, read_ct, read_info, read_labels, read_labels_remapped},
};
use abdoseg_server::{MemoryBudget, Reservation};
use abdoseg_storage::{Key, Storage};
use bytes::Bytes;

use crate::Error;

/// Upper bounds on what one request may make the service read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLimits {
    /// A stored (possibly gzipped) object, in bytes.
    pub max_object_bytes: u64,
    /// Decoded voxel data, in bytes.
    pub max_voxel_bytes: u64,
    /// Voxels of a decoded volume.
    pub max_voxels: u64,
}

impl Default for ObjectLimits {
    fn default() -> Self {
        Self {
            max_object_bytes: 1 << 30,
            max_voxel_bytes: ReadLimits::default().max_bytes,
            max_voxels: ReadLimits::default().max_voxels,
        }
    }
}

impl ObjectLimits {
    fn read_limits(&self) -> ReadLimits {
        ReadLimits {
            max_bytes: self.max_voxel_bytes,
            max_voxels: self.max_voxels,
            ..ReadLimits::default()
        }
    }
}

/// Longest wait for memory that other work holds.
const MEMORY_PATIENCE: Duration = Duration::from_secs(30);

/// Reads an object's bytes and reserves what decoding it takes (its header read first,
/// nothing decoded before the reservation): the file, the stored voxel data and
/// `decoded_per_voxel` bytes per voxel.
async fn read_reserved(
    storage: &Storage,
    key: &Key,
    limits: ObjectLimits,
    budget: &MemoryBudget,
    decoded_per_voxel: u64,
) -> Result<(Bytes, Reservation), Error> {
    let size = storage.head(key).await?.size;
    let mut reservation = budget
        .reserve(size.min(limits.max_object_bytes), MEMORY_PATIENCE)
        .await?;
    let bytes = storage.get_bounded(key, limits.max_object_bytes).await?;
    if let Ok(info) = read_info(&bytes, &limits.read_limits()) {
        let peak = bytes.len() as u64 + info.data_bytes + info.voxels() * decoded_per_voxel;
        reservation.grow_to_within(peak, MEMORY_PATIENCE).await?;
    }
    // An unreadable header is reported by the decoder itself, with its reason.
    Ok((bytes, reservation))
}

/// Reads a label map of classes 0–4; `what` names the field in errors (no patient data).
pub async fn label_map(
    storage: &Storage,
    key: &Key,
    (limits, budget): (ObjectLimits, &MemoryBudget),
    what: &str,
) -> Result<(Volume<u8>, Reservation), Error> {
    label_map_remapped(storage, key, (limits, budget), what, None).await
}

/// Reads a label map whose values `remap` translates into classes (a dataset's own
/// convention, e.g. nnU-Net's `dataset.json`); `None` expects classes 0–4.
pub async fn label_map_remapped(
    storage: &Storage,
    key: &Key,
    (limits, budget): (ObjectLimits, &MemoryBudget),
    what: &str,
    remap: Option<[Option<u8>; 256]>,
) -> Result<(Volume<u8>, Reservation), Error> {
    let (bytes, reservation) = read_reserved(storage, key, limits, budget, 1).await?;
    let read = limits.read_limits();
    let what = what.to_owned();
    let volume = tokio::task::spawn_blocking(move || {
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
    .map_err(|e| Error::Internal(e.to_string()))??;
    Ok((volume, reservation))
}

/// Reads a CT volume in HU.
pub async fn ct(
    storage: &Storage,
    key: &Key,
    (limits, budget): (ObjectLimits, &MemoryBudget),
    what: &str,
) -> Result<(Volume<f32>, Reservation), Error> {
    let (bytes, reservation) = read_reserved(storage, key, limits, budget, 4).await?;
    let read = limits.read_limits();
    let what = what.to_owned();
    let volume = tokio::task::spawn_blocking(move || {
        read_ct(&bytes, &read).map_err(|e| Error::InvalidObject {
            what,
            detail: e.to_string(),
        })
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    Ok((volume, reservation))
}
