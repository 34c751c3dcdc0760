//! In-plane resizing: bilinear for images (OpenCV `INTER_LINEAR` semantics, pixel centres
//! aligned), nearest for label maps, and the sizes for resampling to a target spacing.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::ImagingError;

/// Source coordinate of a destination pixel centre, and its two neighbours' weights.
#[derive(Clone, Copy)]
struct Tap {
    low: usize,
    high: usize,
    weight_high: f32,
}

fn taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = src as f32 / dst as f32;
    (0..dst)
        .map(|d| {
            let position = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
            let low = (position.floor() as usize).min(src - 1);
            let high = (low + 1).min(src - 1);
            Tap {
                low,
                high,
                weight_high: if high == low {
                    0.0
                } else {
                    position - low as f32
                },
            }
        })
        .collect()
}

fn check(from: (usize, usize), to: (usize, usize)) -> Result<(), ImagingError> {
    if from.0 == 0 || from.1 == 0 || to.0 == 0 || to.1 == 0 {
        return Err(ImagingError::InvalidParameter(format!(
            "cannot resize {from:?} to {to:?}: sizes must be positive"
        )));
    }
    Ok(())
}

/// Bilinear resize of a float image to `(height, width)`.
pub fn resize_bilinear(
    image: ArrayView2<'_, f32>,
    to: (usize, usize),
) -> Result<Array2<f32>, ImagingError> {
    check(image.dim(), to)?;
    if image.dim() == to {
        return Ok(image.to_owned());
    }
    let (h, w) = image.dim();
    let rows = taps(h, to.0);
    let cols = taps(w, to.1);
    let mut out = Array2::<f32>::zeros(to);
    out.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .zip(rows.par_iter())
        .for_each(|(mut out_row, row_tap)| {
            let top = image.row(row_tap.low);
            let bottom = image.row(row_tap.high);
            let wy = row_tap.weight_high;
            for (dst, c) in out_row.iter_mut().zip(&cols) {
                let t = top[c.low] + (top[c.high] - top[c.low]) * c.weight_high;
                let b = bottom[c.low] + (bottom[c.high] - bottom[c.low]) * c.weight_high;
                *dst = t + (b - t) * wy;
            }
        });
    Ok(out)
}

/// The index of the highest of `planes` at each pixel of a `to`-sized grid, each plane
/// resized bilinearly as [`resize_bilinear`] would (the first plane wins ties). No
/// resized plane is ever held: memory is the label map alone, whatever the grid.
pub fn resize_bilinear_argmax(
    planes: &[ArrayView2<'_, f32>],
    to: (usize, usize),
) -> Result<Array2<u8>, ImagingError> {
    let Some(first) = planes.first() else {
        return Err(ImagingError::InvalidParameter(
            "no planes to compare".into(),
        ));
    };
    let from = first.dim();
    check(from, to)?;
    if planes.len() > usize::from(u8::MAX) || planes.iter().any(|p| p.dim() != from) {
        return Err(ImagingError::InvalidParameter(
            "planes must share one size, and be at most 255".into(),
        ));
    }
    let rows = taps(from.0, to.0);
    let cols = taps(from.1, to.1);
    let mut out = Array2::<u8>::zeros(to);
    out.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .zip(rows.par_iter())
        .for_each(|(mut out_row, row_tap)| {
            let wy = row_tap.weight_high;
            for (dst, c) in out_row.iter_mut().zip(&cols) {
                let mut best = (0u8, f32::NEG_INFINITY);
                for (index, plane) in planes.iter().enumerate() {
                    let top = plane.row(row_tap.low);
                    let bottom = plane.row(row_tap.high);
                    let t = top[c.low] + (top[c.high] - top[c.low]) * c.weight_high;
                    let b = bottom[c.low] + (bottom[c.high] - bottom[c.low]) * c.weight_high;
                    let value = t + (b - t) * wy;
                    if value > best.1 {
                        best = (index as u8, value);
                    }
                }
                *dst = best.0;
            }
        });
    Ok(out)
}

/// Nearest-neighbour resize of a label map (or any values that must not blend).
pub fn resize_nearest<T: Copy + Default + Send + Sync>(
    image: ArrayView2<'_, T>,
    to: (usize, usize),
) -> Result<Array2<T>, ImagingError> {
    check(image.dim(), to)?;
    if image.dim() == to {
        return Ok(image.to_owned());
    }
    let (h, w) = image.dim();
    let nearest = |src: usize, dst: usize| -> Vec<usize> {
        let scale = src as f64 / dst as f64;
        (0..dst)
            .map(|d| (((d as f64 + 0.5) * scale).floor() as usize).min(src - 1))
            .collect()
    };
    let rows = nearest(h, to.0);
    let cols = nearest(w, to.1);
    let mut out = Vec::with_capacity(to.0 * to.1);
    for &y in &rows {
        let row = image.row(y);
        match row.as_slice() {
            Some(src) => out.extend(cols.iter().map(|&x| src[x])),
            None => out.extend(cols.iter().map(|&x| row[x])),
        }
    }
    Array2::from_shape_vec(to, out).map_err(|e| ImagingError::InvalidParameter(e.to_string()))
}

/// The size a slice of `size` pixels at `spacing` mm (rows, columns) has at `target` mm.
pub fn size_for_spacing(size: (usize, usize), spacing: (f32, f32), target: f32) -> (usize, usize) {
    let scaled = |n: usize, s: f32| ((n as f32 * s / target).round() as usize).max(1);
    (scaled(size.0, spacing.0), scaled(size.1, spacing.1))
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    #[test]
    fn bilinear_keeps_constants_and_ramps() {
        let flat = Array2::from_elem((10, 12), 3.5f32);
        let out = resize_bilinear(flat.view(), (7, 20)).unwrap();
        assert!(out.iter().all(|&v| (v - 3.5).abs() < 1e-6));
        // Halving a ramp samples between pixel pairs, as OpenCV does.
        let ramp = Array2::from_shape_fn((1, 8), |(_, x)| x as f32);
        let half = resize_bilinear(ramp.view(), (1, 4)).unwrap();
        assert_eq!(half.as_slice().unwrap(), &[0.5, 2.5, 4.5, 6.5]);
    }

    #[test]
    fn nearest_never_invents_labels_and_inverts_integer_scales() {
        let labels = Array2::from_shape_fn((64, 64), |(y, x)| ((x / 9 + y / 13) % 5) as u8);
        let small = resize_nearest(labels.view(), (32, 32)).unwrap();
        assert!(small.iter().all(|&v| v < 5));
        let up = resize_nearest(labels.view(), (128, 128)).unwrap();
        // Up by an integer factor and back down is the identity.
        assert_eq!(resize_nearest(up.view(), (64, 64)).unwrap(), labels);
    }

    #[test]
    fn spacing_sizes_and_bad_sizes() {
        assert_eq!(size_for_spacing((512, 512), (0.7, 0.7), 1.4), (256, 256));
        assert!(resize_bilinear(Array2::<f32>::zeros((4, 4)).view(), (0, 4)).is_err());
    }
}
