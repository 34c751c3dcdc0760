//! A CT volume to a label map on the input's exact grid: the model's own preprocessing
//! (`model_slices`, the path training data took), batched forward passes, each class's
//! logits resized bilinearly back to the canonical slice size and the argmax taken there
//! (smooth boundaries, as nnU-Net resamples probabilities rather than labels), the largest
//! components, the file's order.

use std::time::{Duration, Instant};

use abdoseg_dataset::model_input::{SliceMap, model_slices};
use abdoseg_imaging::{
    NUM_CLASSES, Volume, intensity::Intensity, nifti::VolumeInfo, slices::Canonical, slices::stack,
};
use abdoseg_model::{SliceContext, UNet};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use ndarray::Array2;

use crate::{Error, postprocess::keep_largest_components};

/// The label map and where the time went.
#[derive(Debug)]
pub struct Segmentation {
    pub labels: Volume<u8>,
    pub preprocess: Duration,
    pub inference: Duration,
    pub postprocess: Duration,
}

/// What a segmentation needs besides the volume.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub batch_size: usize,
    pub keep_largest_components: bool,
    /// The model's 2.5D input (its record's); 2D unless the model was trained so.
    pub context: SliceContext,
}

/// The label of each pixel of the source slice: the class whose logit, interpolated
/// bilinearly from the model's `from`-sized output (`NUM_CLASSES` planes) through `map`,
/// is highest. Row by row: no source-sized logit plane is held, so memory stays the label
/// slice's.
fn upsampled_argmax(
    logits: &[f32],
    from: (usize, usize),
    map: &SliceMap,
) -> Result<Array2<u8>, Error> {
    let planes = logits
        .chunks_exact(from.0 * from.1)
        .map(|plane| ndarray::ArrayView2::from_shape(from, plane))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(e.to_string()))?;
    map.argmax_to_source(&planes)
        .map_err(|e| Error::Internal(e.to_string()))
}

/// The most memory a segmentation of `info`'s volume takes at once, in bytes: the file
/// as read (`file_bytes`), the decoded data as stored and as float32, its canonical
/// copy, one axial slice's working copies per thread, the model's slices (gray levels,
/// floats and their neighbours as channels), one batch's input, activations (up to 256
/// floats a pixel) and logits, the label map (slices, stacked, in file order, encoded)
/// and the largest-component pass. An upper bound:
/// 512×512×200 int16 measured up to 862 MiB above the idle process, estimated 1,256 MiB
/// (`tests/hostile/calibrate.py`).
pub fn peak_bytes(
    info: &VolumeInfo,
    file_bytes: u64,
    model_slice: (usize, usize),
    batch_size: usize,
) -> u64 {
    let voxels = info.voxels();
    let (slices, rows, columns) = info.axial_shape();
    let threads = rayon::current_num_threads().max(1) as u64;
    let slice_work = rows * columns * 16 * threads.min(slices);
    let model_pixels = (model_slice.0 * model_slice.1) as u64;
    let model_slices = slices * model_pixels * 4 * (1 + MAX_CONTEXT);
    let batch = batch_size as u64 * model_pixels * 4 * (MAX_CONTEXT + NUM_CLASSES as u64 + 256);
    // float32 and canonical copies (4 + 4); label slices, stacked, in file order,
    // encoded (4 × 1); largest components: visited flags, foreground indices, the queue
    // (1 + 4 + 4) at worst.
    const PER_VOXEL: u64 = 4 + 4 + 4 + 9;
    file_bytes + info.data_bytes + voxels * PER_VOXEL + slice_work + model_slices + batch
}

/// Most input channels a model may have ([`SliceContext::MAX_SLICES`]): the estimate
/// below holds for every model.
const MAX_CONTEXT: u64 = SliceContext::MAX_SLICES as u64;

/// Segments `ct`. `cancelled` is asked between batches (deadline passed, caller gone).
pub fn segment<B: Backend>(
    net: &UNet<B>,
    device: &B::Device,
    intensity: &Intensity,
    preprocessing: &abdoseg_dataset::config::PreprocessConfig,
    ct: &Volume<f32>,
    options: Options,
    cancelled: &dyn Fn() -> bool,
) -> Result<Segmentation, Error> {
    let started = Instant::now();
    let canonical = Canonical::of(ct);
    let (slices, map) = model_slices(&canonical, preprocessing, intensity)
        .map_err(|e| Error::InvalidArgument(format!("cannot preprocess the volume: {e}")))?;
    let planes: Vec<Array2<f32>> = slices.iter().map(|s| s.to_model_input()).collect();
    drop(slices);
    let inputs = options
        .context
        .stack(planes, canonical.spacing[2])
        .map_err(|e| Error::InvalidArgument(format!("cannot stack neighbouring slices: {e}")))?;
    let channels = options.context.slices.max(1);
    let preprocess = started.elapsed();

    let started = Instant::now();
    let (height, width) = (preprocessing.slice_height, preprocessing.slice_width);
    let mut label_slices: Vec<Array2<u8>> = Vec::with_capacity(inputs.len());
    for batch in inputs.chunks(options.batch_size.max(1)) {
        if cancelled() {
            return Err(Error::Cancelled);
        }
        let mut input = Vec::with_capacity(batch.len() * channels * height * width);
        for slice in batch {
            input.extend(slice.iter().copied());
        }
        let tensor = Tensor::<B, 4>::from_data(
            TensorData::new(input, [batch.len(), channels, height, width]),
            device,
        );
        let logits = net
            .logits(tensor)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| Error::Internal(format!("cannot read the prediction: {e:?}")))?;
        for one in logits.chunks_exact(NUM_CLASSES * height * width) {
            label_slices.push(upsampled_argmax(one, (height, width), &map)?);
        }
    }
    let inference = started.elapsed();

    let started = Instant::now();
    let mut canonical_labels = stack(label_slices).map_err(|e| Error::Internal(e.to_string()))?;
    if options.keep_largest_components {
        keep_largest_components(&mut canonical_labels, canonical.spacing);
    }
    let labels = ct
        .with_data(canonical.to_file_order(&canonical_labels))
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Segmentation {
        labels,
        preprocess,
        inference,
        postprocess: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logits_are_resized_before_the_argmax() {
        // 2×2 logits: class 1 strong on the left column, class 0 on the right.
        let mut logits = vec![0.0f32; NUM_CLASSES * 4];
        logits[..4].copy_from_slice(&[0.0, 1.0, 0.0, 1.0]); // background
        logits[4..8].copy_from_slice(&[1.0, 0.0, 1.0, 0.0]); // liver
        let stretch = |to| SliceMap::Stretch {
            source: to,
            model: (2, 2),
        };
        let labels = upsampled_argmax(&logits, (2, 2), &stretch((4, 8))).unwrap();
        assert_eq!(labels.dim(), (4, 8));
        // The boundary falls in the middle, as with nearest resizing of the labels...
        assert_eq!(labels.row(0).to_vec(), vec![1, 1, 1, 1, 0, 0, 0, 0]);
        // ...and identical inputs give the identical label everywhere.
        let flat = upsampled_argmax(&[0.0; NUM_CLASSES * 4], (2, 2), &stretch((3, 3))).unwrap();
        assert!(flat.iter().all(|&v| v == 0));
    }

    #[test]
    fn a_diagonal_boundary_is_smooth_not_blocky() {
        // Liver logit rises along the diagonal of a 2×2 output; upsampled 8×, the boundary
        // is a diagonal line, where nearest resizing would give 4×4 blocks.
        let mut logits = vec![0.0f32; NUM_CLASSES * 4];
        logits[..4].copy_from_slice(&[0.5, 0.5, 0.5, 0.5]);
        logits[4..8].copy_from_slice(&[1.0, 0.5, 0.5, 0.0]);
        let map = SliceMap::Stretch {
            source: (16, 16),
            model: (2, 2),
        };
        let labels = upsampled_argmax(&logits, (2, 2), &map).unwrap();
        let liver_per_row: Vec<usize> = labels
            .rows()
            .into_iter()
            .map(|r| r.iter().filter(|&&v| v == 1).count())
            .collect();
        assert!(
            liver_per_row.windows(2).all(|w| w[0] >= w[1]),
            "{liver_per_row:?}"
        );
        assert!(
            liver_per_row.windows(2).filter(|w| w[0] > w[1]).count() > 4,
            "{liver_per_row:?}"
        );
    }
}
