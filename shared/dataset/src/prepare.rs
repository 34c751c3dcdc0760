//! One case from NIfTI bytes to a slice shard, through [`model_slices`], the one path from
//! a CT volume to model input that `PreprocessVolume` and inference take too.

pub use crate::model_input::{ModelSlice, SliceMap, model_slices};
use abdoseg_imaging::{
    ImagingError, NUM_CLASSES, Volume,
    intensity::Intensity,
    labels::class_counts,
    nifti::{ReadLimits, VolumeInfo, read_ct, read_labels_remapped},
    orientation::axis_codes,
    slices::Canonical,
};
use ndarray::Array2;
use rayon::prelude::*;

use crate::{
    config::PreprocessConfig,
    manifest::{HuHistograms, SparseHistogram},
    shard::{PixelKind, ShardWriter},
};

/// The identity translation of AbdomenCT-1K label values.
pub fn identity_remap() -> [Option<u8>; 256] {
    let mut remap = [None; 256];
    for (class, slot) in remap.iter_mut().enumerate().take(NUM_CLASSES) {
        *slot = Some(class as u8);
    }
    remap
}

/// A prepared case.
#[derive(Debug, Clone)]
pub struct PreparedCase {
    pub shard: Vec<u8>,
    /// Class voxel counts per slice at model resolution.
    pub slices: Vec<[u64; NUM_CLASSES]>,
    pub shape: [usize; 3],
    pub spacing: [f32; 3],
    pub orientation: String,
    pub hu_histograms: Vec<SparseHistogram>,
}

fn read_case(
    image: &[u8],
    label: &[u8],
    remap: &[Option<u8>; 256],
    limits: &ReadLimits,
) -> Result<(Volume<f32>, Volume<u8>), ImagingError> {
    let ct = read_ct(image, limits)?;
    let labels = read_labels_remapped(label, limits, remap)?;
    if !ct.geometry.same_grid(&labels.geometry) {
        return Err(ImagingError::GridMismatch {
            image: ct.geometry.describe(),
            label: labels.geometry.describe(),
        });
    }
    Ok((ct, labels))
}

fn histograms(ct: &Volume<f32>, labels: &Volume<u8>) -> Vec<SparseHistogram> {
    let mut h = HuHistograms::new();
    for (&hu, &class) in ct.data.iter().zip(labels.data.iter()) {
        h.add(hu, class);
    }
    h.to_sparse()
}

/// Reads a case only for its HU histograms (the fingerprint `zscore` needs first).
pub fn case_histograms(
    image: &[u8],
    label: &[u8],
    remap: &[Option<u8>; 256],
    limits: &ReadLimits,
) -> Result<Vec<SparseHistogram>, ImagingError> {
    let (ct, labels) = read_case(image, label, remap, limits)?;
    Ok(histograms(&ct, &labels))
}

/// Validates, preprocesses and shards one case.
pub fn prepare_case(
    image: &[u8],
    label: &[u8],
    remap: &[Option<u8>; 256],
    config: &PreprocessConfig,
    intensity: &Intensity,
    limits: &ReadLimits,
) -> Result<PreparedCase, ImagingError> {
    let (ct, labels) = read_case(image, label, remap, limits)?;
    let hu_histograms = histograms(&ct, &labels);
    let canonical_ct = Canonical::of(&ct);
    let canonical_labels = Canonical::of(&labels);
    let size = (config.slice_height, config.slice_width);
    let (images, map) = model_slices(&canonical_ct, config, intensity)?;
    let label_slices: Vec<Array2<u8>> = (0..canonical_labels.slice_count())
        .into_par_iter()
        .map(|z| map.labels_to_model(canonical_labels.axial(z)))
        .collect::<Result<_, _>>()?;
    let counts = label_slices
        .iter()
        .map(|l| class_counts(l.iter()))
        .collect();
    Ok(PreparedCase {
        shard: write_shard(&images, &label_slices, size)?,
        slices: counts,
        shape: ct.geometry.shape(),
        spacing: ct.geometry.spacing(),
        orientation: axis_codes(&ct.geometry.affine()),
        hu_histograms,
    })
}

/// Preprocessed slices of one CT volume as a shard with empty labels
/// (`PreprocessVolume`), through [`model_slices`].
pub fn volume_shard(
    ct: &Volume<f32>,
    config: &PreprocessConfig,
    intensity: &Intensity,
) -> Result<Vec<u8>, ImagingError> {
    let canonical = Canonical::of(ct);
    let (images, _) = model_slices(&canonical, config, intensity)?;
    let size = (config.slice_height, config.slice_width);
    let empty = vec![Array2::<u8>::zeros(size); images.len()];
    write_shard(&images, &empty, size)
}

/// The most memory [`volume_shard`] takes for a volume whose header says `info`, with
/// the file itself (`file_bytes`) and the decoded data: float32 and canonical copies,
/// one slice's working copies per thread, the model slices, their empty labels and the
/// shard they are written into.
pub fn volume_shard_peak_bytes(
    info: &VolumeInfo,
    file_bytes: u64,
    config: &PreprocessConfig,
) -> u64 {
    let (slices, rows, columns) = info.axial_shape();
    let threads = rayon::current_num_threads().max(1) as u64;
    let slice_work = rows * columns * 16 * threads.min(slices);
    let model_pixels = (config.slice_height * config.slice_width) as u64;
    // float32 (zscore) or gray pixels, a float copy while resizing, the label, twice
    // (the slices and the shard).
    let per_model_slice = model_pixels * (4 + 4 + 1) * 2;
    file_bytes + info.data_bytes + info.voxels() * 8 + slice_work + slices * per_model_slice
}

/// One shard from model slices and their labels (same count, same size).
fn write_shard(
    images: &[ModelSlice],
    labels: &[Array2<u8>],
    size: (usize, usize),
) -> Result<Vec<u8>, ImagingError> {
    let kind = match images.first() {
        Some(ModelSlice::Float(_)) => PixelKind::Float,
        Some(ModelSlice::Gray(_)) | None => PixelKind::Gray,
    };
    let mut writer = ShardWriter::new(images.len(), size.0, size.1, kind);
    for (image, labels) in images.iter().zip(labels) {
        match image {
            ModelSlice::Gray(g) => writer.push_gray(g, labels),
            ModelSlice::Float(f) => writer.push_float(f, labels),
        }
    }
    writer.finish().map_err(ImagingError::Write)
}
