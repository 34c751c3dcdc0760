//! CLAHE with OpenCV's semantics (`cv2.createCLAHE`): a grid of tiles, each with its own
//! clipped histogram and mapping, blended by bilinear interpolation between tile centres.
//! A slice whose size the grid does not divide is padded by reflection (BORDER_REFLECT_101)
//! for the histograms, as OpenCV does.

use ndarray::Array2;
use rayon::prelude::*;

use crate::ImagingError;

/// CLAHE parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clahe {
    /// Tiles per side (OpenCV's `tileGridSize`, square).
    pub tiles: usize,
    /// Clip limit in OpenCV's units: multiples of the mean bin count. 0 disables clipping.
    pub clip_limit: f32,
}

impl Default for Clahe {
    fn default() -> Self {
        Self {
            tiles: 8,
            clip_limit: 2.0,
        }
    }
}

impl Clahe {
    pub fn validate(&self) -> Result<(), ImagingError> {
        if !(1..=64).contains(&self.tiles) {
            return Err(ImagingError::InvalidParameter(format!(
                "CLAHE tiles must be 1 to 64 per side, not {}",
                self.tiles
            )));
        }
        if !(self.clip_limit.is_finite() && self.clip_limit >= 0.0) {
            return Err(ImagingError::InvalidParameter(format!(
                "CLAHE clip limit must be 0 or positive, not {}",
                self.clip_limit
            )));
        }
        Ok(())
    }
}

/// Reflect-101 index into `0..n` for a padded coordinate `i >= n`.
fn reflect101(i: usize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i % period;
    if m < n { m } else { period - m }
}

/// The 256-entry mapping of one tile.
fn tile_lut(gray: &Array2<u8>, rows: std::ops::Range<usize>, cols: std::ops::Range<usize>, clip: u32, scale: f32) -> [u8; 256] {
    let (h, w) = gray.dim();
    let mut hist = [0u32; 256];
    for y in rows {
        let row = gray.row(if y < h { y } else { reflect101(y, h) });
        if cols.end <= w {
            for &p in row.slice(ndarray::s![cols.clone()]) {
                hist[usize::from(p)] += 1;
            }
        } else {
            for x in cols.clone() {
                hist[usize::from(row[if x < w { x } else { reflect101(x, w) }])] += 1;
            }
        }
    }
    if clip > 0 {
        let mut clipped = 0u32;
        for h in hist.iter_mut() {
            if *h > clip {
                clipped += *h - clip;
                *h = clip;
            }
        }
        let batch = clipped / 256;
        let mut residual = clipped - batch * 256;
        for h in hist.iter_mut() {
            *h += batch;
        }
        if residual > 0 {
            let step = (256 / residual as usize).max(1);
            let mut i = 0;
            while i < 256 && residual > 0 {
                hist[i] += 1;
                i += step;
                residual -= 1;
            }
        }
    }
    let mut lut = [0u8; 256];
    let mut sum = 0u32;
    for (i, h) in hist.iter().enumerate() {
        sum += h;
        lut[i] = (sum as f32 * scale).round_ties_even().clamp(0.0, 255.0) as u8;
    }
    lut
}

/// Applies CLAHE to a windowed 8-bit slice.
pub fn clahe_slice(gray: &Array2<u8>, params: &Clahe) -> Array2<u8> {
    let (h, w) = gray.dim();
    let tiles = params.tiles;
    // Padded size: the next multiple of the grid (OpenCV pads by a whole tile count).
    let padded_h = if h % tiles == 0 { h } else { h + tiles - h % tiles };
    let padded_w = if w % tiles == 0 { w } else { w + tiles - w % tiles };
    let (tile_h, tile_w) = (padded_h / tiles, padded_w / tiles);
    let tile_area = (tile_h * tile_w) as f32;
    let clip = if params.clip_limit > 0.0 {
        ((params.clip_limit * tile_area / 256.0) as u32).max(1)
    } else {
        0
    };
    let scale = 255.0 / tile_area;

    let luts: Vec<[u8; 256]> = (0..tiles * tiles)
        .into_par_iter()
        .map(|t| {
            let (ty, tx) = (t / tiles, t % tiles);
            tile_lut(
                gray,
                ty * tile_h..(ty + 1) * tile_h,
                tx * tile_w..(tx + 1) * tile_w,
                clip,
                scale,
            )
        })
        .collect();

    // Per column: the two neighbouring tiles and the weight of the right one.
    let inv_tw = 1.0f32 / tile_w as f32;
    let columns: Vec<(usize, usize, f32)> = (0..w)
        .map(|x| {
            let txf = x as f32 * inv_tw - 0.5;
            let tx1 = txf.floor();
            let xa = txf - tx1;
            let tx1 = tx1 as i64;
            let left = tx1.max(0) as usize;
            let right = ((tx1 + 1) as usize).min(tiles - 1);
            (left, right, xa)
        })
        .collect();

    let inv_th = 1.0f32 / tile_h as f32;
    let mut out = Array2::<u8>::zeros((h, w));
    out.axis_iter_mut(ndarray::Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(y, mut out_row)| {
            let tyf = y as f32 * inv_th - 0.5;
            let ty1 = tyf.floor();
            let ya = tyf - ty1;
            let ya1 = 1.0 - ya;
            let ty1 = ty1 as i64;
            let top = ty1.max(0) as usize;
            let bottom = ((ty1 + 1) as usize).min(tiles - 1);
            let src = gray.row(y);
            for (x, (dst, &v)) in out_row.iter_mut().zip(src.iter()).enumerate() {
                let (left, right, xa) = columns[x];
                let xa1 = 1.0 - xa;
                let v = usize::from(v);
                let top_value = f32::from(luts[top * tiles + left][v]) * xa1
                    + f32::from(luts[top * tiles + right][v]) * xa;
                let bottom_value = f32::from(luts[bottom * tiles + left][v]) * xa1
                    + f32::from(luts[bottom * tiles + right][v]) * xa;
                let value = top_value * ya1 + bottom_value * ya;
                *dst = value.round_ties_even().clamp(0.0, 255.0) as u8;
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect101_mirrors_without_repeating_the_edge() {
        assert_eq!(reflect101(5, 5), 3);
        assert_eq!(reflect101(6, 5), 2);
        assert_eq!(reflect101(0, 1), 0);
    }

    #[test]
    fn a_flat_slice_stays_flat_and_contrast_grows() {
        let flat = Array2::from_elem((64, 64), 100u8);
        let out = clahe_slice(&flat, &Clahe::default());
        let first = out[[0, 0]];
        assert!(out.iter().all(|&v| v == first));

        // A low-contrast gradient gains contrast.
        let ramp = Array2::from_shape_fn((64, 64), |(y, x)| (100 + (x + y) / 8) as u8);
        let out = clahe_slice(&ramp, &Clahe { tiles: 4, clip_limit: 4.0 });
        let spread = |a: &Array2<u8>| a.iter().max().unwrap() - a.iter().min().unwrap();
        assert!(spread(&out) > spread(&ramp), "{} vs {}", spread(&out), spread(&ramp));
    }

    #[test]
    fn sizes_the_grid_does_not_divide_are_handled() {
        let odd = Array2::from_shape_fn((37, 53), |(y, x)| ((x * 7 + y * 3) % 256) as u8);
        let out = clahe_slice(&odd, &Clahe { tiles: 8, clip_limit: 2.0 });
        assert_eq!(out.dim(), (37, 53));
    }

    #[test]
    fn parameters_are_checked() {
        assert!(Clahe { tiles: 0, clip_limit: 2.0 }.validate().is_err());
        assert!(Clahe { tiles: 8, clip_limit: f32::NAN }.validate().is_err());
        assert!(Clahe::default().validate().is_ok());
    }
}
