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
fn tile_lut(
    gray: &Array2<u8>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    clip: u32,
    scale: f32,
) -> [u8; 256] {
    let (h, w) = gray.dim();
    let mut hist = [0u32; 256];
    for y in rows {
        let row = gray.row(if y < h { y } else { reflect101(y, h) });
        if let (true, Some(pixels)) = (cols.end <= w, row.as_slice()) {
            for &p in &pixels[cols.clone()] {
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
        lut[i] = super::round_to_u8(sum as f32 * scale);
    }
    lut
}

/// Applies CLAHE to a windowed 8-bit slice.
pub fn clahe_slice(gray: &Array2<u8>, params: &Clahe) -> Array2<u8> {
    let (h, w) = gray.dim();
    let tiles = params.tiles;
    // Padded size: the next multiple of the grid (OpenCV pads by a whole tile count).
    let padded_h = if h % tiles == 0 {
        h
    } else {
        h + tiles - h % tiles
    };
    let padded_w = if w % tiles == 0 {
        w
    } else {
        w + tiles - w % tiles
    };
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

    // Columns fall into runs that share their two neighbouring tiles; within a run only
    // the weight of the right tile changes.
    let inv_tw = 1.0f32 / tile_w as f32;
    let mut runs: Vec<(usize, usize, usize, usize)> = Vec::new(); // (start, end, left, right)
    let mut weights = Vec::with_capacity(w);
    for x in 0..w {
        let txf = x as f32 * inv_tw - 0.5;
        let tx1 = txf.floor();
        weights.push(txf - tx1);
        let tx1 = tx1 as i64;
        let left = tx1.max(0) as usize;
        let right = ((tx1 + 1) as usize).min(tiles - 1);
        match runs.last_mut() {
            Some(run) if run.2 == left && run.3 == right => run.1 = x + 1,
            _ => runs.push((x, x + 1, left, right)),
        }
    }

    let inv_th = 1.0f32 / tile_h as f32;
    let standard = gray.as_standard_layout();
    let pixels = standard
        .as_slice()
        .expect("a standard-layout array is contiguous");
    let mut out = Array2::<u8>::zeros((h, w));
    let rows_per_task = 16;
    out.axis_chunks_iter_mut(ndarray::Axis(0), rows_per_task)
        .into_par_iter()
        .enumerate()
        .for_each(|(chunk, mut out_rows)| {
            for (offset, mut out_row) in out_rows.outer_iter_mut().enumerate() {
                let y = chunk * rows_per_task + offset;
                let tyf = y as f32 * inv_th - 0.5;
                let ty1 = tyf.floor();
                let ya = tyf - ty1;
                let ya1 = 1.0 - ya;
                let ty1 = ty1 as i64;
                let top = &luts[ty1.max(0) as usize * tiles..][..tiles];
                let bottom = &luts[((ty1 + 1) as usize).min(tiles - 1) * tiles..][..tiles];
                let src = &pixels[y * w..(y + 1) * w];
                let dst = out_row
                    .as_slice_mut()
                    .expect("rows of a new array are contiguous");
                for &(start, end, left, right) in &runs {
                    let (tl, tr, bl, br) = (&top[left], &top[right], &bottom[left], &bottom[right]);
                    for x in start..end {
                        let v = usize::from(src[x]);
                        let xa = weights[x];
                        let xa1 = 1.0 - xa;
                        let upper = f32::from(tl[v]) * xa1 + f32::from(tr[v]) * xa;
                        let lower = f32::from(bl[v]) * xa1 + f32::from(br[v]) * xa;
                        dst[x] = super::round_to_u8(upper * ya1 + lower * ya);
                    }
                }
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
        let out = clahe_slice(
            &ramp,
            &Clahe {
                tiles: 4,
                clip_limit: 4.0,
            },
        );
        let spread = |a: &Array2<u8>| a.iter().max().unwrap() - a.iter().min().unwrap();
        assert!(
            spread(&out) > spread(&ramp),
            "{} vs {}",
            spread(&out),
            spread(&ramp)
        );
    }

    #[test]
    fn sizes_the_grid_does_not_divide_are_handled() {
        let odd = Array2::from_shape_fn((37, 53), |(y, x)| ((x * 7 + y * 3) % 256) as u8);
        let out = clahe_slice(
            &odd,
            &Clahe {
                tiles: 8,
                clip_limit: 2.0,
            },
        );
        assert_eq!(out.dim(), (37, 53));
    }

    #[test]
    fn parameters_are_checked() {
        assert!(
            Clahe {
                tiles: 0,
                clip_limit: 2.0
            }
            .validate()
            .is_err()
        );
        assert!(
            Clahe {
                tiles: 8,
                clip_limit: f32::NAN
            }
            .validate()
            .is_err()
        );
        assert!(Clahe::default().validate().is_ok());
    }
}
