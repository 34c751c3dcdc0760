//! One phantom case: sampling the anatomy on a random grid with the case's look (contrast
//! phase, HU, slice averaging, blur, correlated noise, offset field) and the center's
//! calibration, written in a random voxel order with a correct affine.

use ndarray::{Array3, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{
    anatomy::Anatomy,
    appearance::{Appearance, Phase},
    scanner,
};
use crate::{Geometry, ImagingError, Volume, orientation::Reorientation};

/// Full style: the top of the scan in the anatomy's frame (mm; the right kidney's centre
/// sits at −20 to +5, `anatomy::KIDNEY_Z_MM`, the liver's dome near +100), and how far
/// down it reaches. Abdominal CTs run from the diaphragm into the pelvis: more than half
/// of these reach the femoral heads and the whole bladder (at −245 to −150), where a model
/// that never saw them puts "liver".
pub const FULL_TOP_MM: std::ops::Range<f32> = 100.0..170.0;
pub const FULL_EXTENT_MM: std::ops::Range<f32> = 280.0..420.0;

/// How phantoms are made: as before appearance randomization (one fixed look per
/// contrast phase, one phase per site, the organs' neighbours only), with randomized
/// looks, or with randomized looks and the surroundings (the default). The first two are
/// kept for comparisons (docs/benchmarks.md, "Real CT").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Earlier,
    RandomLook,
    Full,
}

/// A scanner site: its typical noise, its calibration, and how its phantoms are made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Center {
    pub noise_std: f32,
    pub offset: f32,
    pub scale: f32,
    /// The site's contrast protocol in [`Style::Earlier`] (portal venous or none); other
    /// styles draw the phase per case.
    pub venous_site: bool,
    pub style: Style,
}

impl Center {
    /// The same site making phantoms in `style`.
    pub fn with_style(self, style: Style) -> Self {
        Self { style, ..self }
    }

    /// Center `index` of a dataset made with `seed`.
    pub fn new(seed: u64, index: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC0FFEE ^ (index as u64) << 32);
        Self {
            noise_std: rng.random_range(8.0..22.0),
            offset: rng.random_range(-15.0..15.0),
            scale: rng.random_range(0.95..1.05),
            // Most abdominal CT is portal venous; one site in three scans without contrast.
            venous_site: index % 3 != 1,
            style: Style::Full,
        }
    }
}

/// A generated case: CT in HU (int16, as scanners store it) and its label map.
#[derive(Debug, Clone)]
pub struct PhantomCase {
    pub image: Volume<i16>,
    pub labels: Volume<u8>,
    pub center: Center,
    pub appearance: Appearance,
}

/// Smooth deformation: a few long sinusoids per axis, precomputed per row and column.
struct Warp {
    amplitude: [f32; 3],
    frequency: [f32; 3],
    phase: [f32; 3],
}

impl Warp {
    fn random(rng: &mut ChaCha8Rng) -> Self {
        Self {
            amplitude: [0; 3].map(|_| rng.random_range(3.0..9.0)),
            frequency: [0; 3].map(|_| rng.random_range(0.012..0.03)),
            phase: [0; 3].map(|_| rng.random_range(0.0..std::f32::consts::TAU)),
        }
    }

    /// Displacement of x depends on z, of y on x, of z on y.
    fn along(&self, axis: usize, driver: f32) -> f32 {
        self.amplitude[axis] * (driver * self.frequency[axis] + self.phase[axis]).sin()
    }
}

/// The sampling grid of a case; random per case unless given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grid {
    /// Pixels per side of the (square) axial slice.
    pub matrix: usize,
    pub slices: usize,
    /// In-plane pixel size and slice thickness, mm.
    pub spacing: f32,
    pub thickness: f32,
}

/// Generates case `index` (1-based) of a dataset made with `seed` at `center`, on a
/// random grid (224–320 pixels over a 360–440 mm field of view, 2–5 mm slices over
/// 280–420 mm from the lung bases down into the pelvis in the full style, 200–250 mm of the
/// abdomen in the others) unless `grid` fixes one.
pub fn generate_case(
    seed: u64,
    index: usize,
    center: Center,
    grid: Option<Grid>,
) -> Result<PhantomCase, ImagingError> {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64);
    let look = match center.style {
        Style::RandomLook | Style::Full => Appearance::random(&mut rng, center.noise_std / 15.0),
        Style::Earlier => Appearance::fixed(
            if center.venous_site {
                Phase::PortalVenous
            } else {
                Phase::NonContrast
            },
            center.noise_std,
        ),
    };
    let anatomy = Anatomy::random(&mut rng, look.clone(), center.style == Style::Full);
    let warp = Warp::random(&mut rng);

    let random_grid = {
        let matrix: usize = rng.random_range(224..=320);
        let fov: f32 = rng.random_range(360.0..440.0);
        let thickness: f32 = [2.0, 2.5, 3.0, 4.0, 5.0][rng.random_range(0..5)];
        // The full style reaches from the pelvis to the lung bases, as abdominal scans do.
        let extent: f32 = if center.style == Style::Full {
            rng.random_range(FULL_EXTENT_MM)
        } else {
            rng.random_range(200.0..250.0)
        };
        Grid {
            matrix,
            slices: ((extent / thickness).round() as usize).clamp(40, 200),
            spacing: fov / matrix as f32,
            thickness,
        }
    };
    let Grid {
        matrix,
        slices,
        spacing,
        thickness,
    } = grid.unwrap_or(random_grid);
    if matrix == 0 || slices == 0 || !(spacing > 0.0 && thickness > 0.0) {
        return Err(ImagingError::InvalidParameter(format!(
            "phantom grid {grid:?}"
        )));
    }
    // Full style: the top is anatomical (FULL_TOP_MM), the scan reaches down from there.
    let z_bottom: f32 = if center.style == Style::Full {
        rng.random_range(FULL_TOP_MM) - slices as f32 * thickness
    } else {
        rng.random_range(-125.0..-105.0)
    };
    let yaw: f32 = rng.random_range(-8.0f32..8.0).to_radians();
    let tilt: f32 = rng.random_range(-3.0f32..3.0).to_radians();
    let (sin_yaw, cos_yaw) = yaw.sin_cos();
    let (sin_tilt, cos_tilt) = tilt.sin_cos();
    let noise_seed: u64 = rng.random();

    let half = (matrix as f32 - 1.0) / 2.0;
    let mut hu = Array3::<f32>::zeros((slices, matrix, matrix));
    let mut labels = Array3::<u8>::zeros((slices, matrix, matrix));
    hu.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(labels.axis_iter_mut(Axis(0)))
        .enumerate()
        .for_each(|(z, (mut hu_slice, mut label_slice))| {
            let pz = z_bottom + z as f32 * thickness;
            for yi in 0..matrix {
                let py = (yi as f32 - half) * spacing;
                for xi in 0..matrix {
                    let px = (xi as f32 - half) * spacing;
                    // Patient rotation in the table plane, then a slight tilt.
                    let rx = cos_yaw * px - sin_yaw * py;
                    let ry0 = sin_yaw * px + cos_yaw * py;
                    let ry = cos_tilt * ry0 - sin_tilt * pz;
                    let rz = sin_tilt * ry0 + cos_tilt * pz;
                    let body = [rx, ry, rz];
                    let organ = [
                        rx + warp.along(0, rz),
                        ry + warp.along(1, rx),
                        rz + warp.along(2, ry),
                    ];
                    let t = anatomy.sample(body, organ);
                    let offset = if t.hu > -500.0 {
                        look.offset_at(body)
                    } else {
                        0.0
                    };
                    hu_slice[[yi, xi]] = t.hu + offset;
                    label_slice[[yi, xi]] = t.label;
                }
            }
        });
    let hu = scanner::render(&hu, &look, &center, noise_seed)?;

    // Voxel order as files come: LPS (DICOM-like), RAS (nibabel canonical) or LAS.
    let flips = [
        [false, false, false],
        [true, true, false],
        [false, true, false],
    ][rng.random_range(0..3)];
    let sizes = [matrix, matrix, slices];
    let steps = [spacing, spacing, thickness];
    // RAS direction of each canonical axis: x toward L, y toward P, z toward S.
    let canonical_ras = [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]];
    let canonical_origin = [-half * spacing, -half * spacing, z_bottom];
    let mut affine = [[0.0f64; 4]; 4];
    affine[3][3] = 1.0;
    for f in 0..3 {
        let sign = if flips[f] { -1.0 } else { 1.0 };
        // Canonical position (mm) of file index 0 along this axis.
        let first = if flips[f] {
            canonical_origin[f] + (sizes[f] - 1) as f32 * steps[f]
        } else {
            canonical_origin[f]
        };
        for w in 0..3 {
            affine[w][f] = canonical_ras[f][w] * sign * f64::from(steps[f]);
            affine[w][3] += canonical_ras[f][w] * f64::from(first);
        }
    }
    let geometry = Geometry::new(sizes, affine)?;
    let reorientation = Reorientation::from_affine(&geometry.affine());
    Ok(PhantomCase {
        image: Volume {
            geometry: geometry.clone(),
            data: reorientation.from_canonical(hu.view()),
        },
        labels: Volume {
            geometry,
            data: reorientation.from_canonical(labels.view()),
        },
        center,
        appearance: look,
    })
}
