//! A CT volume to a label map on the input's exact grid: the model's own preprocessing
//! (`model_slices`, the path training data took), batched forward passes, argmax, nearest
//! resizing back to the canonical slice size, the largest components, the file's order.

use std::time::{Duration, Instant};

use abdoseg_dataset::prepare::model_slices;
use abdoseg_imaging::{
    Volume, intensity::Intensity, resize::resize_nearest, slices::Canonical, slices::stack,
};
use abdoseg_model::UNet;
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
}

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
    let slices = model_slices(&canonical, preprocessing, intensity)
        .map_err(|e| Error::InvalidArgument(format!("cannot preprocess the volume: {e}")))?;
    let preprocess = started.elapsed();

    let started = Instant::now();
    let (height, width) = (preprocessing.slice_height, preprocessing.slice_width);
    let (_, rows, columns) = canonical.data.dim();
    let mut label_slices: Vec<Array2<u8>> = Vec::with_capacity(slices.len());
    for batch in slices.chunks(options.batch_size.max(1)) {
        if cancelled() {
            return Err(Error::Cancelled);
        }
        let mut input = Vec::with_capacity(batch.len() * height * width);
        for slice in batch {
            input.extend(slice.to_model_input().iter().copied());
        }
        let tensor = Tensor::<B, 4>::from_data(
            TensorData::new(input, [batch.len(), 1, height, width]),
            device,
        );
        let predicted = net
            .logits(tensor)
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .map_err(|e| Error::Internal(format!("cannot read the prediction: {e:?}")))?;
        for one in predicted.chunks_exact(height * width) {
            let small = Array2::from_shape_vec(
                (height, width),
                one.iter().map(|&v| v.clamp(0, 255) as u8).collect(),
            )
            .map_err(|e| Error::Internal(e.to_string()))?;
            label_slices.push(
                resize_nearest(small.view(), (rows, columns))
                    .map_err(|e| Error::Internal(e.to_string()))?,
            );
        }
    }
    let inference = started.elapsed();

    let started = Instant::now();
    let mut canonical_labels = stack(label_slices).map_err(|e| Error::Internal(e.to_string()))?;
    if options.keep_largest_components {
        keep_largest_components(&mut canonical_labels);
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
