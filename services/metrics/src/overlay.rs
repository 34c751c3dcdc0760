//! Overlays: where a prediction agrees with the truth, drawn over the preprocessed CT.
//! Yellow = found (true positive), green = false positive, red = missed (false negative),
//! opaque so that every pixel says exactly one thing.

use abdoseg_imaging::NUM_CLASSES;
use ndarray::{ArrayView2, ArrayView3, Axis, s};

pub const FOUND: [u8; 3] = [255, 255, 0];
pub const FALSE_POSITIVE: [u8; 3] = [0, 255, 0];
pub const MISSED: [u8; 3] = [255, 0, 0];

/// Gap between the panels of the grid, in pixels.
const GAP: usize = 4;
const GAP_COLOUR: [u8; 3] = [255, 255, 255];

/// An RGB picture, rows of `width` pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Picture {
    fn blank(width: usize, height: usize, colour: [u8; 3]) -> Self {
        Self {
            width,
            height,
            rgb: colour.repeat(width * height),
        }
    }

    /// The colour at column `x`, row `y`.
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let at = (y * self.width + x) * 3;
        [self.rgb[at], self.rgb[at + 1], self.rgb[at + 2]]
    }

    fn paste(&mut self, panel: &Picture, left: usize, top: usize) {
        for y in 0..panel.height {
            let from = y * panel.width * 3;
            let to = ((top + y) * self.width + left) * 3;
            self.rgb[to..to + panel.width * 3]
                .copy_from_slice(&panel.rgb[from..from + panel.width * 3]);
        }
    }

    /// PNG bytes (8-bit RGB).
    pub fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.rgb)?;
        writer.finish()?;
        Ok(out)
    }
}

/// The gray CT slice alone.
pub fn gray(ct: ArrayView2<'_, u8>) -> Picture {
    let (height, width) = ct.dim();
    Picture {
        width,
        height,
        rgb: ct.iter().flat_map(|&v| [v, v, v]).collect(),
    }
}

/// One organ (`class` 1–4), or every organ at once with `class` 0: a pixel is found where
/// both maps carry the same organ, a false positive where the prediction has an organ the
/// truth lacks there, missed where the truth's organ was not predicted.
pub fn organ(
    ct: ArrayView2<'_, u8>,
    predicted: ArrayView2<'_, u8>,
    truth: ArrayView2<'_, u8>,
    class: u8,
) -> Picture {
    let mut picture = gray(ct);
    let matches = |label: u8| {
        if class == 0 {
            label != 0
        } else {
            label == class
        }
    };
    for (n, (&p, &t)) in predicted.iter().zip(truth.iter()).enumerate() {
        let colour = match (matches(p), matches(t)) {
            (true, true) if class != 0 || p == t => FOUND,
            (_, true) => MISSED,
            (true, false) => FALSE_POSITIVE,
            (false, false) => continue,
        };
        picture.rgb[n * 3..n * 3 + 3].copy_from_slice(&colour);
    }
    picture
}

/// The study's 2×3 grid: the preprocessed slice and all organs on top, then liver,
/// kidneys, spleen and pancreas.
pub fn grid(
    ct: ArrayView2<'_, u8>,
    predicted: ArrayView2<'_, u8>,
    truth: ArrayView2<'_, u8>,
) -> Picture {
    let (height, width) = ct.dim();
    let panels = [
        gray(ct),
        organ(ct, predicted, truth, 0),
        organ(ct, predicted, truth, 1),
        organ(ct, predicted, truth, 2),
        organ(ct, predicted, truth, 3),
        organ(ct, predicted, truth, 4),
    ];
    let mut out = Picture::blank(3 * width + 2 * GAP, 2 * height + GAP, GAP_COLOUR);
    for (n, panel) in panels.iter().enumerate() {
        out.paste(panel, (n % 3) * (width + GAP), (n / 3) * (height + GAP));
    }
    out
}

/// Why a slice was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    Best,
    Worst,
}

impl Selection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Best => "best",
            Self::Worst => "worst",
        }
    }
}

/// A slice picked for an organ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub class: u8,
    pub slice: usize,
    pub selection: Selection,
}

/// Share of the organ's largest cross-section a slice must show to be a candidate, so
/// that the organ's tips (a few pixels, IoU noise) are not called its worst slice.
const MIN_AREA_SHARE: f64 = 0.2;

/// Per organ, the axial slices (axis 0 of `(z, y, x)` maps) with the highest and lowest
/// slice IoU among those where the truth shows a fair part of the organ.
pub fn pick_slices(predicted: ArrayView3<'_, u8>, truth: ArrayView3<'_, u8>) -> Vec<Pick> {
    let depth = truth.len_of(Axis(0));
    let mut picks = Vec::new();
    for class in 1..NUM_CLASSES as u8 {
        let per_slice: Vec<(u64, u64, u64)> = (0..depth)
            .map(|z| {
                let (p, t) = (predicted.slice(s![z, .., ..]), truth.slice(s![z, .., ..]));
                let mut tp_area_union = (0, 0, 0);
                for (&p, &t) in p.iter().zip(t.iter()) {
                    let (p, t) = (p == class, t == class);
                    tp_area_union.0 += u64::from(p && t);
                    tp_area_union.1 += u64::from(t);
                    tp_area_union.2 += u64::from(p || t);
                }
                tp_area_union
            })
            .collect();
        let largest = per_slice.iter().map(|s| s.1).max().unwrap_or(0);
        if largest == 0 {
            continue;
        }
        let threshold = ((largest as f64) * MIN_AREA_SHARE).ceil() as u64;
        let candidates: Vec<(usize, f64)> = per_slice
            .iter()
            .enumerate()
            .filter(|(_, s)| s.1 >= threshold.max(1))
            .map(|(z, s)| (z, s.0 as f64 / s.2 as f64))
            .collect();
        let best = candidates
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let worst = candidates
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        for (pick, selection) in [(best, Selection::Best), (worst, Selection::Worst)] {
            if let Some(&(slice, _)) = pick {
                picks.push(Pick {
                    class,
                    slice,
                    selection,
                });
            }
        }
    }
    picks
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, Array3};

    use super::*;

    #[test]
    fn each_pixel_gets_the_colour_of_its_outcome() {
        let ct = Array2::from_elem((2, 3), 100u8);
        let truth = Array2::from_shape_vec((2, 3), vec![1, 1, 0, 2, 0, 0]).unwrap();
        let predicted = Array2::from_shape_vec((2, 3), vec![1, 0, 1, 1, 0, 0]).unwrap();
        let liver = organ(ct.view(), predicted.view(), truth.view(), 1);
        assert_eq!(liver.pixel(0, 0), FOUND);
        assert_eq!(liver.pixel(1, 0), MISSED);
        assert_eq!(liver.pixel(2, 0), FALSE_POSITIVE);
        assert_eq!(liver.pixel(0, 1), FALSE_POSITIVE); // kidney called liver
        assert_eq!(liver.pixel(1, 1), [100; 3]);
        let all = organ(ct.view(), predicted.view(), truth.view(), 0);
        assert_eq!(all.pixel(0, 0), FOUND);
        assert_eq!(all.pixel(0, 1), MISSED); // kidney not found as kidney
        let kidney = organ(ct.view(), predicted.view(), truth.view(), 2);
        assert_eq!(kidney.pixel(0, 1), MISSED);
    }

    #[test]
    fn the_grid_places_six_panels() {
        let ct = Array2::from_elem((4, 5), 7u8);
        let truth = Array2::from_elem((4, 5), 3u8);
        let predicted = truth.clone();
        let g = grid(ct.view(), predicted.view(), truth.view());
        assert_eq!((g.width, g.height), (15 + 2 * GAP, 8 + GAP));
        assert_eq!(g.pixel(0, 0), [7; 3]); // the CT
        assert_eq!(g.pixel(5 + GAP, 0), FOUND); // all organs
        assert_eq!(g.pixel(2 * (5 + GAP), 0), [7; 3]); // liver: none
        assert_eq!(g.pixel(5 + GAP, 4 + GAP), FOUND); // spleen
        assert_eq!(g.pixel(5, 0), GAP_COLOUR);
        let png = g.png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn best_and_worst_slices_are_found() {
        let mut truth = Array3::<u8>::zeros((4, 6, 6));
        let mut predicted = truth.clone();
        for z in 0..4 {
            truth.slice_mut(s![z, 1..5, 1..5]).fill(1);
        }
        predicted.slice_mut(s![1, 1..5, 1..5]).fill(1); // perfect
        predicted.slice_mut(s![2, 1..3, 1..5]).fill(1); // half
        predicted.slice_mut(s![0, 1..5, 1..4]).fill(1); // three quarters
        let picks = pick_slices(predicted.view(), truth.view());
        assert_eq!(
            picks,
            vec![
                Pick {
                    class: 1,
                    slice: 1,
                    selection: Selection::Best
                },
                Pick {
                    class: 1,
                    slice: 3,
                    selection: Selection::Worst
                },
            ]
        );
    }
}
