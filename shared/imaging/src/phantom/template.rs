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
//!
//! A template may also carry a map of further structures ([`Template::with_groups`]; the
//! 31 structures of `real-dicom`, for instance): muscles, arteries, veins, the gut and the
//! labelled bones then get means of their own, drawn for the phase, instead of moving
//! together as "soft tissue", so the organs' contrast against their neighbours varies as it
//! does between real scans (the recipe's generation-only classes).

use ndarray::{Array3, Axis, Zip};
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
/// The classes of a template without a structure map; a variant of one draws the same
/// numbers in the same order as before structure maps existed.
const BASE_CLASSES: usize = 9;
/// Generation classes of the structure groups: `BASE_CLASSES - 1 + group`.
const MUSCLE: usize = 9;
const ARTERY: usize = 10;
const VEIN: usize = 11;
const GUT: usize = 12;
const SKELETON: usize = 13;
const CLASSES: usize = 14;

/// A group of named structures that shares one drawn mean in a template's variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructureGroup {
    Muscle = 1,
    Artery = 2,
    Vein = 3,
    Gut = 4,
    Skeleton = 5,
}

impl StructureGroup {
    /// The code of this group in a group map (0: no group).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The group of a structure by its TotalSegmentator-style name (`autochthon_left`,
    /// `aorta`, `portal_vein_and_splenic_vein`, `rib_left_6`, …), if it belongs to one.
    pub fn of_structure(name: &str) -> Option<Self> {
        const GROUPS: [(StructureGroup, &[&str]); 5] = [
            (
                StructureGroup::Muscle,
                &["autochthon", "iliopsoas", "gluteus", "muscle"],
            ),
            (StructureGroup::Artery, &["aorta", "artery", "celiac_trunk"]),
            (StructureGroup::Vein, &["vena_cava", "vein"]),
            (
                StructureGroup::Gut,
                &["stomach", "colon", "small_bowel", "duodenum", "esophagus"],
            ),
            (
                StructureGroup::Skeleton,
                &[
                    "vertebra",
                    "rib_",
                    "humerus",
                    "femur",
                    "hip_",
                    "sacrum",
                    "scapula",
                    "clavicula",
                    "sternum",
                    "costal_cartilage",
                ],
            ),
        ];
        let name = name.to_ascii_lowercase();
        GROUPS
            .iter()
            .find(|(_, words)| words.iter().any(|w| name.contains(w)))
            .map(|(group, _)| *group)
    }
}

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
    /// Structure groups ([`StructureGroup::code`], 0 for none) on the CT's grid.
    groups: Option<Canonical<u8>>,
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
        let mut template = Self {
            ct,
            labels,
            image,
            groups: None,
            means: [0.0; CLASSES],
        };
        template.measure_means();
        Ok(template)
    }

    /// The template with a map of structure groups on its grid (values
    /// [`StructureGroup::code`], 0 where no group is named); the organs' labels win where
    /// both name a voxel, and air and fat stay classed by HU.
    pub fn with_groups(mut self, groups: &Volume<u8>) -> Result<Self, ImagingError> {
        if !self.image.geometry.same_grid(&groups.geometry) {
            return Err(ImagingError::GridMismatch {
                image: self.image.geometry.describe(),
                label: groups.geometry.describe(),
            });
        }
        if let Some(&code) = groups
            .data
            .iter()
            .find(|&&g| usize::from(g) > CLASSES - BASE_CLASSES)
        {
            return Err(ImagingError::InvalidLabel {
                value: f64::from(code),
            });
        }
        self.groups = Some(Canonical::of(groups));
        self.measure_means();
        Ok(self)
    }

    fn measure_means(&mut self) {
        let mut sums = [(0.0f64, 0u64); CLASSES];
        let mut add = |hu: f32, label: u8, group: u8| {
            let class = class_of(hu, label, group);
            sums[class].0 += f64::from(hu);
            sums[class].1 += 1;
        };
        match &self.groups {
            Some(groups) => Zip::from(&self.ct.data)
                .and(&self.labels.data)
                .and(&groups.data)
                .for_each(|&hu, &label, &group| add(hu, label, group)),
            None => Zip::from(&self.ct.data)
                .and(&self.labels.data)
                .for_each(|&hu, &label| add(hu, label, 0)),
        }
        self.means = sums.map(|(sum, n)| if n == 0 { 0.0 } else { (sum / n as f64) as f32 });
    }
}

fn class_of(hu: f32, label: u8, group: u8) -> usize {
    match (label, hu_class(hu)) {
        (1..=4, _) => usize::from(label),
        (_, by_hu @ (AIR | FAT)) => by_hu,
        (_, by_hu) if group == 0 => by_hu,
        _ => BASE_CLASSES - 1 + usize::from(group),
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
    let mut texture = [1.0f32; CLASSES];
    for scale in &mut texture[..BASE_CLASSES] {
        *scale = rng.random_range(0.6..1.4);
    }
    let mut target = target_means(&look, template, &mut rng);
    let noise_seed: u64 = rng.random();
    if template.groups.is_some() {
        // Drawn after everything a template without groups draws, so that its variants
        // stay what they were.
        for scale in &mut texture[BASE_CLASSES..] {
            *scale = rng.random_range(0.6..1.4);
        }
        group_means(&mut target, &look, template, &mut rng);
    }

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
            let source_groups = template.groups.as_ref().map(|g| g.axial(z));
            for (i, &[sy, sx]) in sources.iter().enumerate() {
                let (r, c) = (i / columns, i % columns);
                let value = bilinear(&ct, sy, sx);
                let label = nearest(&source_labels, sy, sx);
                let group = source_groups.as_ref().map_or(0, |g| nearest(g, sy, sx));
                let class = class_of(value, label, group);
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

/// The means of the structure groups in this variant, each drawn for the look's phase on
/// its own: muscle, arteries, veins, the gut's wall and contents, the labelled bones.
fn group_means(
    target: &mut [f32; CLASSES],
    look: &Appearance,
    template: &Template,
    rng: &mut ChaCha8Rng,
) {
    target[MUSCLE] = look.hu(Structure::Muscle) + rng.random_range(-10.0..10.0);
    target[ARTERY] = look.hu(Structure::Aorta);
    target[VEIN] = look.hu(Structure::Veins);
    let wall = rng.random_range(0.3..1.0);
    target[GUT] = wall * look.hu(Structure::BowelWall) + (1.0 - wall) * look.hu(Structure::Fluid);
    target[SKELETON] = template.means[SKELETON] * rng.random_range(0.8..1.2);
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
    fn structure_groups_get_means_of_their_own_and_leave_groupless_variants_alone() {
        // Every voxel of the body's soft tissue named muscle (group 1): the grouped
        // template's variants draw it a mean of its own where the plain template's draw
        // one for all soft tissue; everything else, noise included, is drawn alike.
        let plain = template();
        let groups = Volume {
            geometry: plain.image.geometry.clone(),
            data: Array3::from_shape_fn((4, 50, 60), |(_, y, x)| {
                u8::from(plain.image.data[[0, y, x]] == 40.0)
            }),
        };
        let grouped = plain.clone().with_groups(&groups).unwrap();
        assert!((grouped.means[MUSCLE] - 40.0).abs() < 1e-3);
        assert_eq!(grouped.means[SOFT], 0.0, "no soft tissue is left ungrouped");
        let center = Center::new(1, 0);
        let mut shifts = Vec::new();
        for index in 0..12 {
            let a = template_variant(&plain, 5, index, center).unwrap();
            let b = template_variant(&grouped, 5, index, center).unwrap();
            assert_eq!(a.labels.data, b.labels.data);
            assert_eq!(a.appearance, b.appearance);
            // Over the body's inner soft tissue the two differ by one shift per variant.
            let differences: Vec<f32> = a
                .image
                .data
                .iter()
                .zip(b.image.data.iter())
                .zip(a.labels.data.iter())
                .map(|((&va, &vb), &l)| (f32::from(va), f32::from(vb), l))
                .filter(|&(va, vb, l)| l == 0 && va > -10.0 && vb > -10.0 && va < 150.0)
                .map(|(va, vb, _)| vb - va)
                .collect();
            assert!(differences.len() > 500, "{}", differences.len());
            let mean = differences.iter().sum::<f32>() / differences.len() as f32;
            // Muscle ± 10 HU against muscle ± 10 HU, times the centre's calibration.
            assert!(mean.abs() < 21.0 * center.scale.abs() + 1.0, "{mean}");
            shifts.push(mean);
        }
        let apart = shifts.iter().filter(|s| s.abs() > 1.0).count();
        assert!(apart >= 8, "{shifts:?}");
        // Codes beyond the groups are refused.
        let mut bad = groups.clone();
        bad.data[[0, 0, 0]] = 9;
        assert!(plain.with_groups(&bad).is_err());
    }

    #[test]
    fn structures_fall_into_groups_by_name() {
        use StructureGroup::*;
        for (name, group) in [
            ("autochthon_left", Some(Muscle)),
            ("iliopsoas_right", Some(Muscle)),
            ("aorta", Some(Artery)),
            ("inferior_vena_cava", Some(Vein)),
            ("portal_vein_and_splenic_vein", Some(Vein)),
            ("stomach", Some(Gut)),
            ("colon", Some(Gut)),
            ("vertebrae_T12", Some(Skeleton)),
            ("rib_left_6", Some(Skeleton)),
            ("costal_cartilages", Some(Skeleton)),
            ("spinal_cord", None),
            ("adrenal_gland_right", None),
            ("liver", None),
        ] {
            assert_eq!(StructureGroup::of_structure(name), group, "{name}");
        }
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
