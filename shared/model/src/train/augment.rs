//! Augmentation of training slices: small rotations and scaling (one random affine map,
//! the same for every input channel, bilinear for the image, nearest for the labels), a
//! gamma curve (nnU-Net's), intensity jitter and noise. No left/right flips: anatomy is
//! lateralized.

use ndarray::{Array2, Array3, ArrayView2, Axis};
use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// Augmentation settings; all zero disables it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    pub max_rotation_degrees: f32,
    pub max_scale: f32,
    pub intensity_jitter: f32,
    pub noise_std: f32,
    /// Largest gamma change: γ log-uniform in [1/(1 + g), 1 + g], applied to the slice
    /// rescaled to 0–1 by its own range (inverted, `1 − (1 − v)^γ`, in
    /// [`INVERTED_GAMMA_SHARE`] of slices). 0 (records made before it) leaves it out.
    #[serde(default)]
    pub gamma: f32,
}

/// Share of the gamma-augmented slices whose curve is applied to the inverted image, as
/// nnU-Net does (its p 0.1 of the inverted transform against 0.3 of the plain one).
pub const INVERTED_GAMMA_SHARE: f64 = 0.25;

impl Default for Augmentation {
    fn default() -> Self {
        Self {
            max_rotation_degrees: 10.0,
            max_scale: 0.1,
            intensity_jitter: 0.05,
            noise_std: 0.02,
            gamma: 0.5,
        }
    }
}

impl Augmentation {
    pub fn none() -> Self {
        Self {
            max_rotation_degrees: 0.0,
            max_scale: 0.0,
            intensity_jitter: 0.0,
            noise_std: 0.0,
            gamma: 0.0,
        }
    }

    /// An augmented copy of a slice (`(channels, height, width)`) and its labels.
    pub fn apply<R: Rng>(
        &self,
        image: &Array3<f32>,
        labels: &Array2<u8>,
        rng: &mut R,
    ) -> (Array3<f32>, Array2<u8>) {
        let (channels, h, w) = image.dim();
        let angle = if self.max_rotation_degrees > 0.0 {
            rng.random_range(-self.max_rotation_degrees..=self.max_rotation_degrees)
                .to_radians()
        } else {
            0.0
        };
        let scale = if self.max_scale > 0.0 {
            1.0 + rng.random_range(-self.max_scale..=self.max_scale)
        } else {
            1.0
        };
        let (sin, cos) = angle.sin_cos();
        let (cy, cx) = ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0);
        // Inverse map: output pixel → source position.
        let source = |y: usize, x: usize| {
            let (dy, dx) = ((y as f32 - cy) / scale, (x as f32 - cx) / scale);
            (cy + cos * dy - sin * dx, cx + sin * dy + cos * dx)
        };
        let identity = angle == 0.0 && scale == 1.0;
        let mut out_image = if identity {
            image.clone()
        } else {
            Array3::from_shape_fn((channels, h, w), |(c, y, x)| {
                let (sy, sx) = source(y, x);
                bilinear(image.index_axis(Axis(0), c), sy, sx)
            })
        };
        let out_labels = if identity {
            labels.clone()
        } else {
            Array2::from_shape_fn((h, w), |(y, x)| {
                let (sy, sx) = source(y, x);
                let (ry, rx) = (sy.round(), sx.round());
                if ry < 0.0 || rx < 0.0 || ry >= h as f32 || rx >= w as f32 {
                    0
                } else {
                    labels[[ry as usize, rx as usize]]
                }
            })
        };
        if self.gamma > 0.0 {
            let most = (1.0 + self.gamma).ln();
            let gamma = rng.random_range(-most..=most).exp();
            let inverted = rng.random_bool(INVERTED_GAMMA_SHARE);
            apply_gamma(&mut out_image, gamma, inverted);
        }
        if self.intensity_jitter > 0.0 {
            let factor = 1.0 + rng.random_range(-self.intensity_jitter..=self.intensity_jitter);
            out_image.mapv_inplace(|v| v * factor);
        }
        if self.noise_std > 0.0
            && let Ok(noise) = Normal::new(0.0f32, self.noise_std)
        {
            out_image.mapv_inplace(|v| v + noise.sample(rng));
        }
        (out_image, out_labels)
    }
}

/// `v ↦ v^γ` (or `1 − (1 − v)^γ`) on the image rescaled to 0–1 by its own range, then
/// back to that range: any scheme's values (gray levels, z-scores) keep their span.
fn apply_gamma(image: &mut Array3<f32>, gamma: f32, inverted: bool) {
    let (low, high) = image
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = high - low;
    if !span.is_finite() || span <= 0.0 {
        // Empty, flat or not finite: no range to bend.
        return;
    }
    image.mapv_inplace(|v| {
        let t = ((v - low) / span).clamp(0.0, 1.0);
        let curved = if inverted {
            1.0 - (1.0 - t).powf(gamma)
        } else {
            t.powf(gamma)
        };
        low + curved * span
    });
}

fn bilinear(image: ArrayView2<'_, f32>, y: f32, x: f32) -> f32 {
    let (h, w) = image.dim();
    if y < 0.0 || x < 0.0 || y > (h - 1) as f32 || x > (w - 1) as f32 {
        return 0.0;
    }
    let (y0, x0) = (y.floor() as usize, x.floor() as usize);
    let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
    let (fy, fx) = (y - y0 as f32, x - x0 as f32);
    let top = image[[y0, x0]] * (1.0 - fx) + image[[y0, x1]] * fx;
    let bottom = image[[y1, x0]] * (1.0 - fx) + image[[y1, x1]] * fx;
    top * (1.0 - fy) + bottom * fy
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn none_is_the_identity_and_labels_stay_labels() {
        let image = Array3::from_shape_fn((3, 16, 16), |(c, y, x)| (c * 256 + y * 16 + x) as f32);
        let labels = Array2::from_shape_fn((16, 16), |(y, x)| ((y / 4 + x / 4) % 5) as u8);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (same, same_labels) = Augmentation::none().apply(&image, &labels, &mut rng);
        assert_eq!(same, image);
        assert_eq!(same_labels, labels);
        let (image_moved, moved) = Augmentation::default().apply(&image, &labels, &mut rng);
        assert!(moved.iter().all(|&l| l < 5));
        assert_eq!(image_moved.dim(), (3, 16, 16));
    }

    #[test]
    fn every_channel_moves_with_the_same_map() {
        // Channels that differ only by a constant stay so after rotation and scaling
        // (away from the border, where the map reaches outside the slice).
        let base = Array2::from_shape_fn((24, 24), |(y, x)| (y * 3 + x * 2) as f32);
        let image = ndarray::stack(Axis(0), &[base.view(), (&base + 100.0).view()]).unwrap();
        let labels = Array2::zeros((24, 24));
        let geometric = Augmentation {
            intensity_jitter: 0.0,
            noise_std: 0.0,
            gamma: 0.0,
            ..Augmentation::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let (moved, _) = geometric.apply(&image, &labels, &mut rng);
        assert_ne!(moved.index_axis(Axis(0), 0), base);
        for y in 8..16 {
            for x in 8..16 {
                let gap = moved[[1, y, x]] - moved[[0, y, x]];
                assert!((gap - 100.0).abs() < 1e-3, "({y}, {x}): {gap}");
            }
        }
    }

    #[test]
    fn gamma_bends_mid_tones_and_keeps_the_range_and_order() {
        let ramp = Array3::from_shape_fn((2, 4, 8), |(c, y, x)| 10.0 + (c * 32 + y * 8 + x) as f32);
        for (gamma, inverted) in [(1.5, false), (0.67, false), (1.5, true), (0.67, true)] {
            let mut bent = ramp.clone();
            apply_gamma(&mut bent, gamma, inverted);
            // The ends stay where they were; the order of values is kept.
            assert!((bent[[0, 0, 0]] - 10.0).abs() < 1e-4);
            assert!((bent[[1, 3, 7]] - 73.0).abs() < 1e-4);
            let flat: Vec<f32> = bent.iter().copied().collect();
            assert!(flat.windows(2).all(|w| w[0] <= w[1]), "{gamma} {inverted}");
            // The middle moves: down for γ > 1, up for γ < 1, the other way inverted.
            let middle = bent[[1, 0, 0]] - ramp[[1, 0, 0]];
            let down = (gamma > 1.0) != inverted;
            assert!(
                if down { middle < -1.0 } else { middle > 1.0 },
                "{gamma} {inverted}: {middle}"
            );
        }
        // A flat image has no range to bend.
        let mut flat = Array3::from_elem((1, 2, 2), 5.0f32);
        apply_gamma(&mut flat, 1.5, false);
        assert!(flat.iter().all(|&v| v == 5.0));
    }

    #[test]
    fn drawn_gammas_stay_within_the_setting() {
        // With only gamma on, the slice's minimum and maximum stay put and every value
        // stays between them, whatever γ was drawn; some slices do change.
        let only_gamma = Augmentation {
            gamma: 0.5,
            ..Augmentation::none()
        };
        let image = Array3::from_shape_fn((1, 8, 8), |(_, y, x)| (y * 8 + x) as f32 / 63.0);
        let labels = Array2::zeros((8, 8));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut changed = 0;
        for _ in 0..50 {
            let (out, _) = only_gamma.apply(&image, &labels, &mut rng);
            assert!(out.iter().all(|&v| (0.0..=1.0).contains(&v)));
            assert!(out[[0, 0, 0]].abs() < 1e-6 && (out[[0, 7, 7]] - 1.0).abs() < 1e-6);
            // γ within [1/1.5, 1.5]: the middle (32/63) moves by at most 0.15 either way
            // (1 − (31/63)^1.5 − 32/63 = 0.1468 at the extreme, inverted).
            let middle = out[[0, 4, 0]] - image[[0, 4, 0]];
            assert!(middle.abs() < 0.15, "{middle}");
            changed += usize::from(middle.abs() > 0.01);
        }
        assert!(changed > 30, "{changed} of 50 slices changed");
    }
}
