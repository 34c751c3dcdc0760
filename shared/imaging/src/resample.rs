//! Axial slices at a physical scale: the model's grid is a fixed pixel size in mm over a
//! fixed field of view centred on the body, whatever the scanner's matrix and spacing.
//! A [`FieldOfView`] maps a source slice onto that grid (antialiased linear for images,
//! nearest for labels, padding outside the scan) and the model's logits back onto the
//! source slice (bilinear, argmax; background outside the field of view).
//!
//! Coordinates are pixel centres: model pixel `i` lies at source position
//! `origin + i × step` along each axis, `step` being source pixels per model pixel.

use ndarray::{Array2, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;

use crate::ImagingError;

/// HU above which a voxel counts as the patient's body (or the table under it) when the
/// field of view is centred.
pub const BODY_HU: f32 = -500.0;

/// One axis of the map.
#[derive(Debug, Clone, Copy, PartialEq)]
struct AxisMap {
    origin: f64,
    step: f64,
    source_len: usize,
    model_len: usize,
}

/// One destination sample: source taps and their weights; the weight left over falls
/// outside the source (padding).
#[derive(Debug, Clone)]
struct Taps {
    taps: Vec<(usize, f32)>,
    outside: f32,
}

impl AxisMap {
    /// A triangle filter as wide as a model pixel when shrinking (antialiased), plain
    /// linear interpolation when enlarging.
    fn model_taps(&self) -> Vec<Taps> {
        let support = self.step.max(1.0);
        (0..self.model_len)
            .map(|i| {
                let centre = self.origin + i as f64 * self.step;
                let low = (centre - support).floor() as i64;
                let high = (centre + support).ceil() as i64;
                let mut taps = Vec::new();
                let (mut total, mut outside) = (0.0f64, 0.0f64);
                for s in low..=high {
                    let weight = (1.0 - ((s as f64 - centre) / support).abs()).max(0.0);
                    if weight == 0.0 {
                        continue;
                    }
                    total += weight;
                    if s < 0 || s >= self.source_len as i64 {
                        outside += weight;
                    } else {
                        taps.push((s as usize, weight));
                    }
                }
                let total = total.max(f64::MIN_POSITIVE);
                Taps {
                    taps: taps
                        .into_iter()
                        .map(|(s, w)| (s, (w / total) as f32))
                        .collect(),
                    outside: (outside / total) as f32,
                }
            })
            .collect()
    }

    /// The source pixel nearest to each model pixel's centre, if inside the source.
    fn model_nearest(&self) -> Vec<Option<usize>> {
        (0..self.model_len)
            .map(|i| {
                let s = (self.origin + i as f64 * self.step).round();
                (s >= 0.0 && s < self.source_len as f64).then_some(s as usize)
            })
            .collect()
    }

    /// For each source pixel inside the field of view, the two model pixels around it and
    /// the weight of the second (bilinear); `None` outside.
    fn source_taps(&self) -> Vec<Option<(usize, usize, f32)>> {
        let last = self.model_len as f64 - 1.0;
        (0..self.source_len)
            .map(|s| {
                let m = (s as f64 - self.origin) / self.step;
                if m < -0.5 || m >= last + 0.5 {
                    return None;
                }
                let m = m.clamp(0.0, last);
                let low = m.floor() as usize;
                let high = (low + 1).min(self.model_len - 1);
                Some((low, high, (m - low as f64) as f32))
            })
            .collect()
    }
}

/// The model's field of view on one source slice grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FieldOfView {
    rows: AxisMap,
    columns: AxisMap,
}

impl FieldOfView {
    /// `model` pixels (rows, columns) of `pixel_mm` each, centred on the source pixel
    /// position `centre` (row, column) of a `source`-sized slice with `spacing` mm
    /// (rows, columns). Anisotropic pixels keep the anatomy's aspect.
    pub fn centred(
        source: (usize, usize),
        spacing: (f32, f32),
        model: (usize, usize),
        pixel_mm: f32,
        centre: (f64, f64),
    ) -> Result<Self, ImagingError> {
        let valid = |v: f32| v.is_finite() && v > 0.0;
        if source.0 == 0 || source.1 == 0 || model.0 == 0 || model.1 == 0 {
            return Err(ImagingError::InvalidParameter(format!(
                "cannot map a {source:?} slice to {model:?} pixels"
            )));
        }
        if !(valid(spacing.0) && valid(spacing.1) && valid(pixel_mm)) {
            return Err(ImagingError::InvalidParameter(format!(
                "pixel sizes must be positive: source {spacing:?} mm, model {pixel_mm} mm"
            )));
        }
        let axis = |source_len: usize, spacing: f32, model_len: usize, centre: f64| {
            let step = f64::from(pixel_mm) / f64::from(spacing);
            AxisMap {
                origin: centre - (model_len as f64 - 1.0) / 2.0 * step,
                step,
                source_len,
                model_len,
            }
        };
        Ok(Self {
            rows: axis(source.0, spacing.0, model.0, centre.0),
            columns: axis(source.1, spacing.1, model.1, centre.1),
        })
    }

    /// The model's grid size (rows, columns).
    pub fn model_size(&self) -> (usize, usize) {
        (self.rows.model_len, self.columns.model_len)
    }

    /// The source slice size (rows, columns).
    pub fn source_size(&self) -> (usize, usize) {
        (self.rows.source_len, self.columns.source_len)
    }

    fn check_source(&self, dim: (usize, usize)) -> Result<(), ImagingError> {
        if dim != self.source_size() {
            return Err(ImagingError::InvalidParameter(format!(
                "a {dim:?} slice on a field of view made for {:?}",
                self.source_size()
            )));
        }
        Ok(())
    }

    /// A source image on the model's grid; `pad` where the field of view leaves the scan.
    pub fn image_to_model(
        &self,
        image: ArrayView2<'_, f32>,
        pad: f32,
    ) -> Result<Array2<f32>, ImagingError> {
        self.check_source(image.dim())?;
        let rows = self.rows.model_taps();
        let columns = self.columns.model_taps();
        // Columns first (source rows × model columns), then rows.
        let mut across = Array2::<f32>::zeros((self.rows.source_len, self.columns.model_len));
        for (mut out, source) in across.outer_iter_mut().zip(image.outer_iter()) {
            for (dst, taps) in out.iter_mut().zip(&columns) {
                *dst =
                    taps.taps.iter().map(|&(s, w)| source[s] * w).sum::<f32>() + taps.outside * pad;
            }
        }
        Ok(Array2::from_shape_fn(self.model_size(), |(r, c)| {
            let taps = &rows[r];
            taps.taps
                .iter()
                .map(|&(s, w)| across[[s, c]] * w)
                .sum::<f32>()
                + taps.outside * pad
        }))
    }

    /// A source label map on the model's grid (nearest; background outside the scan).
    pub fn labels_to_model(&self, labels: ArrayView2<'_, u8>) -> Result<Array2<u8>, ImagingError> {
        self.check_source(labels.dim())?;
        let rows = self.rows.model_nearest();
        let columns = self.columns.model_nearest();
        Ok(Array2::from_shape_fn(self.model_size(), |(r, c)| {
            match (rows[r], columns[c]) {
                (Some(y), Some(x)) => labels[[y, x]],
                _ => 0,
            }
        }))
    }

    /// The label of each source pixel: the highest of the model's class `planes`, each
    /// interpolated bilinearly at the pixel (the first plane wins ties); 0 (background)
    /// outside the field of view. Row by row: no source-sized plane is held.
    pub fn argmax_to_source(
        &self,
        planes: &[ArrayView2<'_, f32>],
    ) -> Result<Array2<u8>, ImagingError> {
        if planes.is_empty()
            || planes.len() > usize::from(u8::MAX)
            || planes.iter().any(|p| p.dim() != self.model_size())
        {
            return Err(ImagingError::InvalidParameter(format!(
                "1 to 255 class planes of {:?} pixels expected",
                self.model_size()
            )));
        }
        let rows = self.rows.source_taps();
        let columns = self.columns.source_taps();
        let mut out = Array2::<u8>::zeros(self.source_size());
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(rows.par_iter())
            .for_each(|(mut out_row, row)| {
                let Some((r0, r1, wy)) = *row else { return };
                for (dst, column) in out_row.iter_mut().zip(&columns) {
                    let Some((c0, c1, wx)) = *column else {
                        continue;
                    };
                    let mut best = (0u8, f32::NEG_INFINITY);
                    for (index, plane) in planes.iter().enumerate() {
                        let top = plane[[r0, c0]] + (plane[[r0, c1]] - plane[[r0, c0]]) * wx;
                        let bottom = plane[[r1, c0]] + (plane[[r1, c1]] - plane[[r1, c0]]) * wx;
                        let value = top + (bottom - top) * wy;
                        if value > best.1 {
                            best = (index as u8, value);
                        }
                    }
                    *dst = best.0;
                }
            });
        Ok(out)
    }
}

/// The centre (row, column) of the body on a canonical `(z, y, x)` CT in HU: the middle
/// of the rows and columns where voxels above [`BODY_HU`] are at least 1 % as many as
/// on the fullest row or column (stray voxels and thin cables do not move it). The
/// slice's centre when nothing is above the threshold.
pub fn body_centre(ct: ArrayView3<'_, f32>) -> (f64, f64) {
    let (_, rows, columns) = ct.dim();
    let mut per_row = vec![0u64; rows];
    let mut per_column = vec![0u64; columns];
    for slice in ct.outer_iter() {
        for (y, row) in slice.outer_iter().enumerate() {
            for (x, &hu) in row.iter().enumerate() {
                if hu > BODY_HU {
                    per_row[y] += 1;
                    per_column[x] += 1;
                }
            }
        }
    }
    let middle = |counts: &[u64]| {
        let most = counts.iter().copied().max().unwrap_or(0);
        let enough = (most / 100).max(1);
        let first = counts.iter().position(|&c| c >= enough);
        let last = counts.iter().rposition(|&c| c >= enough);
        match (first, last) {
            (Some(a), Some(b)) if most > 0 => (a + b) as f64 / 2.0,
            _ => (counts.len() as f64 - 1.0) / 2.0,
        }
    };
    (middle(&per_row), middle(&per_column))
}

#[cfg(test)]
mod tests {
    use ndarray::Array3;

    use super::*;

    fn one_hot(labels: &Array2<u8>, classes: usize) -> Vec<Array2<f32>> {
        (0..classes)
            .map(|k| labels.mapv(|l| if usize::from(l) == k { 1.0 } else { 0.0 }))
            .collect()
    }

    /// Whether every pixel where `a` and `b` differ is within `reach` pixels (Chebyshev)
    /// of a boundary of `a`.
    fn differs_only_near_boundaries(a: &Array2<u8>, b: &Array2<u8>, reach: usize) -> bool {
        let (h, w) = a.dim();
        a.indexed_iter().all(|((y, x), &v)| {
            if b[[y, x]] == v {
                return true;
            }
            let (y0, y1) = (y.saturating_sub(reach), (y + reach).min(h - 1));
            let (x0, x1) = (x.saturating_sub(reach), (x + reach).min(w - 1));
            (y0..=y1).any(|yy| (x0..=x1).any(|xx| a[[yy, xx]] != v))
        })
    }

    fn blobs(size: (usize, usize)) -> Array2<u8> {
        Array2::from_shape_fn(size, |(y, x)| {
            let (fy, fx) = (y as f32 / size.0 as f32, x as f32 / size.1 as f32);
            if (fy - 0.4).powi(2) + (fx - 0.3).powi(2) < 0.04 {
                1
            } else if (fy - 0.6).powi(2) / 0.5 + (fx - 0.7).powi(2) < 0.02 {
                2
            } else if (fy - 0.25).abs() < 0.05 && (fx - 0.75).abs() < 0.1 {
                4
            } else {
                0
            }
        })
    }

    #[test]
    fn labels_round_trip_within_one_voxel_on_anisotropic_grids() {
        // A 3 mm × 2.2 mm non-square source, model pixels 1.5 mm (enlarging): the round trip
        // through the model grid and back differs only next to boundaries.
        let source = (61, 83);
        let labels = blobs(source);
        let fov = FieldOfView::centred(source, (3.0, 2.2), (128, 128), 1.5, (30.0, 41.0)).unwrap();
        let model = fov.labels_to_model(labels.view()).unwrap();
        let planes = one_hot(&model.mapv(|v| v), 5);
        let views: Vec<_> = planes.iter().map(|p| p.view()).collect();
        let back = fov.argmax_to_source(&views).unwrap();
        assert_eq!(back.dim(), source);
        assert!(differs_only_near_boundaries(&labels, &back, 1));
        assert!(back.iter().filter(|&&v| v == 1).count() > 0);
    }

    #[test]
    fn shrinking_round_trip_differs_within_one_model_pixel() {
        // 0.7 mm source pixels, 2.8 mm model pixels: 4 source pixels per model pixel.
        let source = (300, 260);
        let labels = blobs(source);
        let fov = FieldOfView::centred(source, (0.7, 0.7), (96, 96), 2.8, (149.5, 129.5)).unwrap();
        let model = fov.labels_to_model(labels.view()).unwrap();
        let planes = one_hot(&model, 5);
        let views: Vec<_> = planes.iter().map(|p| p.view()).collect();
        let back = fov.argmax_to_source(&views).unwrap();
        assert!(differs_only_near_boundaries(&labels, &back, 4));
        for class in [1u8, 2, 4] {
            let before = labels.iter().filter(|&&v| v == class).count() as f64;
            let after = back.iter().filter(|&&v| v == class).count() as f64;
            assert!(
                (after / before - 1.0).abs() < 0.1,
                "class {class}: {before} → {after}"
            );
        }
    }

    #[test]
    fn outside_the_field_of_view_is_background_and_padding() {
        // A 400 mm source (4 mm pixels) seen through 48 × 4 mm = 192 mm: the edges are out.
        let source = (100, 100);
        let labels = Array2::from_elem(source, 1u8);
        let fov = FieldOfView::centred(source, (4.0, 4.0), (48, 48), 4.0, (49.5, 49.5)).unwrap();
        let planes = one_hot(&fov.labels_to_model(labels.view()).unwrap(), 2);
        let views: Vec<_> = planes.iter().map(|p| p.view()).collect();
        let back = fov.argmax_to_source(&views).unwrap();
        assert_eq!(back[[0, 0]], 0);
        assert_eq!(back[[50, 50]], 1);
        assert_eq!(back.iter().filter(|&&v| v == 1).count(), 48 * 48);
        // A small scan in a large field of view: the image is padded around it.
        let image = Array2::from_elem((20, 10), 100.0f32);
        let fov = FieldOfView::centred((20, 10), (2.0, 2.0), (40, 40), 2.0, (9.5, 4.5)).unwrap();
        let model = fov.image_to_model(image.view(), -1024.0).unwrap();
        assert_eq!(model[[0, 0]], -1024.0);
        assert!((model[[20, 20]] - 100.0).abs() < 1e-3);
        assert_eq!(
            model.iter().filter(|&&v| (v - 100.0).abs() < 1e-3).count(),
            20 * 10
        );
    }

    #[test]
    fn shrinking_averages_instead_of_sampling() {
        // A one-pixel checkerboard shrunk 4× averages to its mean, where point sampling
        // would keep one of its two values.
        let board = Array2::from_shape_fn((64, 64), |(y, x)| ((y + x) % 2) as f32 * 100.0);
        let fov = FieldOfView::centred((64, 64), (1.0, 1.0), (16, 16), 4.0, (31.5, 31.5)).unwrap();
        let small = fov.image_to_model(board.view(), 0.0).unwrap();
        for &v in small.slice(ndarray::s![2..14, 2..14]).iter() {
            assert!((v - 50.0).abs() < 5.0, "{v}");
        }
    }

    #[test]
    fn the_body_centre_ignores_air_and_the_grid_centre() {
        let mut ct = Array3::from_elem((3, 50, 80), -1000.0f32);
        ct.slice_mut(ndarray::s![.., 10..30, 40..70]).fill(40.0);
        assert_eq!(body_centre(ct.view()), (19.5, 54.5));
        let air = Array3::from_elem((2, 10, 20), -1000.0f32);
        assert_eq!(body_centre(air.view()), (4.5, 9.5));
    }

    #[test]
    fn bad_maps_are_refused() {
        assert!(FieldOfView::centred((0, 5), (1.0, 1.0), (8, 8), 1.0, (0.0, 0.0)).is_err());
        assert!(FieldOfView::centred((5, 5), (0.0, 1.0), (8, 8), 1.0, (0.0, 0.0)).is_err());
        let fov = FieldOfView::centred((5, 5), (1.0, 1.0), (8, 8), 1.0, (2.0, 2.0)).unwrap();
        assert!(fov.labels_to_model(Array2::zeros((4, 5)).view()).is_err());
        assert!(fov.argmax_to_source(&[]).is_err());
    }
}
