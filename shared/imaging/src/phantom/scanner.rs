//! What the scanner does to an ideal HU volume: slice thickness (adjacent slices
//! averaged), in-plane blur, spatially correlated noise and the site's calibration, as a
//! case's [`Appearance`] and [`Center`] say. Shared by parametric phantoms and variants of
//! real templates.

use ndarray::{Array2, Array3, Axis, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

use super::{Center, appearance::Appearance};
use crate::ImagingError;

/// The scanned image of `hu` (canonical `(z, y, x)`), as int16 HU.
pub(super) fn render(
    hu: &Array3<f32>,
    look: &Appearance,
    center: &Center,
    noise_seed: u64,
) -> Result<Array3<i16>, ImagingError> {
    let noise = Normal::new(0.0f32, look.noise_std).map_err(|e| {
        ImagingError::InvalidParameter(format!("noise level {}: {e}", look.noise_std))
    })?;
    // Slice thickness: adjacent slices averaged (the labels stay the centre slice's).
    let hu = average_slices(hu, look.slices_averaged);
    let mut hu_i16 = Array3::<i16>::zeros(hu.dim());
    hu_i16
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(hu.axis_iter(Axis(0)))
        .enumerate()
        .for_each(|(z, (mut out, slice))| {
            let mut slice_rng = ChaCha8Rng::seed_from_u64(noise_seed ^ z as u64);
            let image = gaussian_blur(slice.to_owned(), look.image_blur_px);
            // Correlated noise: white noise blurred, rescaled to the case's level.
            let white = Array2::from_shape_fn(image.dim(), |_| noise.sample(&mut slice_rng));
            let gain = 1.0 / blur_noise_gain(look.noise_blur_px);
            let noise = gaussian_blur(white, look.noise_blur_px);
            Zip::from(&mut out)
                .and(&image)
                .and(&noise)
                .for_each(|o, &v, &n| {
                    let value = (v + n * gain) * center.scale + center.offset;
                    *o = value.round().clamp(-1024.0, 3071.0) as i16;
                });
        });
    Ok(hu_i16)
}

/// Each slice the mean of `count` adjacent slices around it (clamped at the ends).
fn average_slices(hu: &Array3<f32>, count: usize) -> Array3<f32> {
    if count <= 1 {
        return hu.clone();
    }
    let slices = hu.len_of(Axis(0));
    let before = (count - 1) / 2;
    let mut out = Array3::<f32>::zeros(hu.dim());
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(z, mut slice)| {
            let from = z.saturating_sub(before);
            let to = (from + count).min(slices);
            for k in from..to {
                slice += &hu.index_axis(Axis(0), k);
            }
            slice /= (to - from) as f32;
        });
    out
}

/// The normalized 1-D Gaussian kernel of `sigma` pixels (radius 3σ).
fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as i32;
    let weights: Vec<f32> = (-radius..=radius)
        .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = weights.iter().sum();
    weights.into_iter().map(|w| w / sum).collect()
}

/// A separable Gaussian blur of `sigma` pixels (edges clamped); below 0.1 px, the image.
fn gaussian_blur(image: Array2<f32>, sigma: f32) -> Array2<f32> {
    if sigma < 0.1 {
        return image;
    }
    let kernel = gaussian_kernel(sigma);
    let radius = (kernel.len() / 2) as isize;
    let (h, w) = image.dim();
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    let rows = Array2::from_shape_fn((h, w), |(y, x)| {
        kernel
            .iter()
            .enumerate()
            .map(|(k, g)| g * image[[y, clamp(x as isize + k as isize - radius, w)]])
            .sum::<f32>()
    });
    Array2::from_shape_fn((h, w), |(y, x)| {
        kernel
            .iter()
            .enumerate()
            .map(|(k, g)| g * rows[[clamp(y as isize + k as isize - radius, h), x]])
            .sum::<f32>()
    })
}

/// How much a blur of `sigma` pixels lowers the standard deviation of white noise.
fn blur_noise_gain(sigma: f32) -> f32 {
    if sigma < 0.1 {
        return 1.0;
    }
    gaussian_kernel(sigma).iter().map(|g| g * g).sum()
}
