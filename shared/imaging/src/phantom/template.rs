//! Variants of a real labelled CT: its anatomy deformed and its intensities redrawn, so
//! one real patient gives many training cases with real surroundings (the recipe of
//! SynthSeg and of class-wise intensity randomization, `docs/imaging.md`).
//!
//! Per variant: an in-plane affine map (rotation ±10°, scale 0.85–1.15 per axis, shift
//! ±12 mm) and a smooth elastic displacement (a 5 × 5 grid, up to 6 mm), the same on every
//! slice; then every voxel's class — the four organs from the labels, and for the rest air,
//! fat, soft tissue or bone by its HU — gets a new mean drawn for the case's phase
//! ([`Appearance`]) while its texture is kept, scaled 0.6–1.4 around the mean; then the
//! scanner's effects ([`super::scanner`]). No left/right flips: anatomy is lateralized.

use ndarray::{Array3, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{
    Center, PhantomCase,
    appearance::{Appearance, Structure},
    scanner,
};
use crate::{ImagingError, Volume, slices::Canonical};

/// Generation classes beyond the organs (labels 1–4), by HU.
const AIR: usize = 5;
const FAT: usize = 6;
const SOFT: usize = 7;
const BONE: usize = 8;
const CLASSES: usize = 9;

fn hu_class(hu: f32) -> usize {
    if hu < -250.0 {
        AIR
    } else if hu < -30.0 {
        FAT
    } else if hu < 180.0 {
        SOFT
    } else {
        BONE
    }
}

/// A real CT in HU with its label map on the same grid.
#[derive(Debug, Clone)]
pub struct Template {
    ct: Canonical<f32>,
    labels: Canonical<u8>,
    image: Volume<f32>,
    /// Mean HU of each generation class in the template.
    means: [f32; CLASSES],
}

impl Template {
    pub fn new(image: Volume<f32>, labels: &Volume<u8>) -> Result<Self, ImagingError> {
        if !image.geometry.same_grid(&labels.geometry) {
            return Err(ImagingError::GridMismatch {
                image: image.geometry.describe(),
                label: labels.geometry.describe(),
            });
        }
        let ct = Canonical::of(&image);
        let labels = Canonical::of(labels);
        let mut sums = [(0.0f64, 0u64); CLASSES];
        for (&hu, &label) in ct.data.iter().zip(labels.data.iter()) {
            let class = class_of(hu, label);
            sums[class].0 += f64::from(hu);
            sums[class].1 += 1;
        }
        let means = sums.map(|(sum, n)| if n == 0 { 0.0 } else { (sum / n as f64) as f32 });
        Ok(Self {
            ct,
            labels,
            image,
            means,
        })
    }
}

fn class_of(hu: f32, label: u8) -> usize {
    match label {
        1..=4 => usize::from(label),
        _ => hu_class(hu),
    }
}

/// The in-plane map of one variant: output position (mm from the slice centre) to the
/// template's.
struct Warp {
    cos: f32,
    sin: f32,
    scale: [f32; 2],
    shift: [f32; 2],
    /// Displacements (mm) on a 5 × 5 grid over the slice, per axis.
    grid: [[[f32; 5]; 5]; 2],
    extent: [f32; 2],
}

impl Warp {
    fn random(rng: &mut ChaCha8Rng, extent: [f32; 2]) -> Self {
        let angle = rng.random_range(-10.0f32..10.0).to_radians();
        let strength = rng.random_range(0.0..6.0);
        Self {
            cos: angle.cos(),
            sin: angle.sin(),
            scale: [0; 2].map(|_| rng.random_range(0.85..1.15)),
            shift: [0; 2].map(|_| rng.random_range(-12.0..12.0)),
            grid: [0; 2].map(|_| {
                [[0.0; 5]; 5].map(|row| row.map(|_: f32| rng.random_range(-strength..=strength)))
            }),
            extent,
        }
    }

    /// Template position (mm from its centre) of output position `p` (row, column mm).
    fn source(&self, [y, x]: [f32; 2]) -> [f32; 2] {
        let elastic = |axis: usize| {
            let gy = ((y / self.extent[0] + 0.5) * 4.0).clamp(0.0, 4.0);
            let gx = ((x / self.extent[1] + 0.5) * 4.0).clamp(0.0, 4.0);
            let (y0, x0) = ((gy.floor() as usize).min(3), (gx.floor() as usize).min(3));
            let (fy, fx) = (gy - y0 as f32, gx - x0 as f32);
            let g = &self.grid[axis];
            let top = g[y0][x0] * (1.0 - fx) + g[y0][x0 + 1] * fx;
            let bottom = g[y0 + 1][x0] * (1.0 - fx) + g[y0 + 1][x0 + 1] * fx;
            top * (1.0 - fy) + bottom * fy
        };
        let (py, px) = (
            y / self.scale[0] - self.shift[0],
            x / self.scale[1] - self.shift[1],
        );
        let ry = self.cos * py - self.sin * px;
        let rx = self.sin * py + self.cos * px;
        [ry + elastic(0), rx + elastic(1)]
    }
}

/// Variant `index` of `template` for a dataset made with `seed`, scanned at `center`.
pub fn template_variant(
    template: &Template,
    seed: u64,
    index: usize,
    center: Center,
) -> Result<PhantomCase, ImagingError> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ (index as u64).rotate_left(17),
    );
    let mut look = Appearance::random(&mut rng, center.noise_std / 15.0);
    let spacing = template.ct.spacing;
    if spacing[2] >= 2.5 {
        // Already thick slices: averaging more would blur the anatomy away.
        look.slices_averaged = 1;
    }
    let (slices, rows, columns) = template.ct.data.dim();
    let extent = [rows as f32 * spacing[1], columns as f32 * spacing[0]];
    let warp = Warp::random(&mut rng, extent);
    let texture: [f32; CLASSES] = [0; CLASSES].map(|_| rng.random_range(0.6..1.4));
    let target = target_means(&look, template, &mut rng);
    let noise_seed: u64 = rng.random();

    // Where each output pixel comes from, shared by every slice.
    let (cy, cx) = ((rows as f32 - 1.0) / 2.0, (columns as f32 - 1.0) / 2.0);
    let sources: Vec<[f32; 2]> = (0..rows * columns)
        .map(|i| {
            let (r, c) = (i / columns, i % columns);
            let [sy, sx] =
                warp.source([(r as f32 - cy) * spacing[1], (c as f32 - cx) * spacing[0]]);
            [sy / spacing[1] + cy, sx / spacing[0] + cx]
        })
        .collect();
    let mut hu = Array3::<f32>::zeros((slices, rows, columns));
    let mut labels = Array3::<u8>::zeros((slices, rows, columns));
    hu.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(labels.axis_iter_mut(Axis(0)))
        .enumerate()
        .for_each(|(z, (mut hu_slice, mut label_slice))| {
            let ct = template.ct.axial(z);
            let source_labels = template.labels.axial(z);
            for (i, &[sy, sx]) in sources.iter().enumerate() {
                let (r, c) = (i / columns, i % columns);
                let value = bilinear(&ct, sy, sx);
                let label = nearest(&source_labels, sy, sx);
                let class = class_of(value, label);
                let redrawn = if class == AIR {
                    value
                } else {
                    target[class] + (value - template.means[class]) * texture[class]
                };
                hu_slice[[r, c]] = redrawn;
                label_slice[[r, c]] = label;
            }
        });
    let hu = scanner::render(&hu, &look, &center, noise_seed)?;
    let reorientation = template.ct.reorientation;
    Ok(PhantomCase {
        image: Volume {
            geometry: template.image.geometry.clone(),
            data: reorientation.from_canonical(hu.view()),
        },
        labels: Volume {
            geometry: template.image.geometry.clone(),
            data: reorientation.from_canonical(labels.view()),
        },
        center,
        appearance: look,
    })
}

/// The mean HU each generation class gets in this variant.
fn target_means(look: &Appearance, template: &Template, rng: &mut ChaCha8Rng) -> [f32; CLASSES] {
    let kidney = (look.hu(Structure::KidneyCortex) + look.hu(Structure::KidneyMedulla)) / 2.0;
    let mut target = [0.0; CLASSES];
    target[1] = look.hu(Structure::Liver);
    target[2] = kidney;
    target[3] = look.hu(Structure::Spleen);
    target[4] = look.hu(Structure::Pancreas);
    target[AIR] = template.means[AIR];
    target[FAT] = look.hu(Structure::Fat);
    // Unlabelled soft tissue: muscle, bowel, vessels, other organs, moved together.
    target[SOFT] = look.hu(Structure::Muscle) + rng.random_range(-10.0..10.0);
    target[BONE] = template.means[BONE] * rng.random_range(0.8..1.2);
    target[0] = target[SOFT];
    target
}

fn bilinear(image: &ndarray::ArrayView2<'_, f32>, y: f32, x: f32) -> f32 {
    let (h, w) = image.dim();
    if !(y >= 0.0 && x >= 0.0 && y <= (h - 1) as f32 && x <= (w - 1) as f32) {
        return -1024.0;
    }
    let (y0, x0) = (y.floor() as usize, x.floor() as usize);
    let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
    let (fy, fx) = (y - y0 as f32, x - x0 as f32);
    let top = image[[y0, x0]] * (1.0 - fx) + image[[y0, x1]] * fx;
    let bottom = image[[y1, x0]] * (1.0 - fx) + image[[y1, x1]] * fx;
    top * (1.0 - fy) + bottom * fy
}

fn nearest(labels: &ndarray::ArrayView2<'_, u8>, y: f32, x: f32) -> u8 {
    let (h, w) = labels.dim();
    let (ry, rx) = (y.round(), x.round());
    if ry < 0.0 || rx < 0.0 || ry >= h as f32 || rx >= w as f32 {
        0
    } else {
        labels[[ry as usize, rx as usize]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Geometry;

    fn template() -> Template {
        let mut affine = [[0.0; 4]; 4];
        for (a, row) in affine.iter_mut().enumerate() {
            row[a] = if a == 3 { 1.0 } else { 2.0 };
        }
        let geometry = Geometry::new([60, 50, 4], affine).unwrap();
        // Body of soft tissue with a fat rim, a liver block (1) and a kidney (2).
        let labels = Array3::from_shape_fn((4, 50, 60), |(_, y, x)| {
            if (15..30).contains(&y) && (10..28).contains(&x) {
                1
            } else if (30..38).contains(&y) && (40..48).contains(&x) {
                2
            } else {
                0
            }
        });
        let ct = Array3::from_shape_fn((4, 50, 60), |(_, y, x)| {
            let r = ((y as f32 - 25.0) / 22.0).powi(2) + ((x as f32 - 30.0) / 27.0).powi(2);
            if labels[[0, y, x]] == 1 {
                55.0
            } else if labels[[0, y, x]] == 2 {
                35.0
            } else if r > 1.0 {
                -1000.0
            } else if r > 0.8 {
                -100.0
            } else {
                40.0
            }
        });
        let image = Volume {
            geometry: geometry.clone(),
            data: ct,
        };
        Template::new(
            image,
            &Volume {
                geometry,
                data: labels,
            },
        )
        .unwrap()
    }

    #[test]
    fn variants_are_seeded_keep_the_grid_and_redraw_organs() {
        let template = template();
        let center = Center::new(1, 0);
        let a = template_variant(&template, 3, 1, center).unwrap();
        let b = template_variant(&template, 3, 1, center).unwrap();
        assert_eq!(a.image.data, b.image.data);
        assert_eq!(a.labels.data, b.labels.data);
        let c = template_variant(&template, 3, 2, center).unwrap();
        assert_ne!(a.image.data, c.image.data);
        assert!(a.image.geometry.same_grid(&template.image.geometry));
        // The organs survive the deformation with a similar size (scale 0.85–1.15 per axis).
        for variant in [&a, &c] {
            let liver = variant.labels.data.iter().filter(|&&l| l == 1).count() as f64;
            let before = 4.0 * 15.0 * 18.0;
            assert!((0.6..1.45).contains(&(liver / before)), "{liver}");
            assert!(variant.labels.data.iter().any(|&l| l == 2));
            // The liver's mean HU is the drawn one (within noise), not the template's 55.
            let mean = variant
                .image
                .data
                .iter()
                .zip(variant.labels.data.iter())
                .filter(|(_, l)| **l == 1)
                .map(|(&v, _)| f64::from(v))
                .sum::<f64>()
                / liver;
            let drawn = f64::from(variant.appearance.hu(Structure::Liver));
            let calibrated = drawn * f64::from(center.scale) + f64::from(center.offset);
            assert!((mean - calibrated).abs() < 25.0, "{mean} vs {calibrated}");
        }
    }
}
