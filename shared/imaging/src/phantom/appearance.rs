//! Appearance randomization: what a phantom looks like, drawn per case so that a model
//! cannot rely on any one set of intensities or textures (the idea of SynthSeg, Billot et
//! al., MedIA 2023, with CT's own priors). Applied in HU, before any intensity scheme.
//!
//! Per case: a contrast phase (non-contrast 0.4, arterial 0.2, portal venous 0.4); each
//! structure's HU drawn uniformly from its interval for that phase ([`HU_PRIORS`], from
//! the published ranges in `docs/imaging.md`); oral contrast in the gut with p 0.25; a
//! noise level (5–30 HU) with spatially correlated noise (blur σ 0–1 px); image blur σ
//! 0–1.2 px (in-plane resolution); 1–3 adjacent slices averaged (slice thickness); a smooth
//! offset field of up to ±25 HU.

use std::ops::Range;

use rand::Rng;

/// Contrast phase: which tissues enhance and by how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    NonContrast,
    Arterial,
    PortalVenous,
}

impl Phase {
    fn index(self) -> usize {
        match self {
            Self::NonContrast => 0,
            Self::Arterial => 1,
            Self::PortalVenous => 2,
        }
    }
}

/// A structure whose HU the palette draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    Liver,
    KidneyCortex,
    KidneyMedulla,
    Spleen,
    Pancreas,
    Aorta,
    /// Caval, portal, splenic and hepatic veins.
    Veins,
    BowelWall,
    Muscle,
    Fat,
    /// Stomach and bowel contents without oral contrast, bile, cerebrospinal fluid.
    Fluid,
    Trabecular,
    Cortical,
}

/// Every structure, in [`HU_PRIORS`]'s order.
pub const STRUCTURES: [Structure; 13] = [
    Structure::Liver,
    Structure::KidneyCortex,
    Structure::KidneyMedulla,
    Structure::Spleen,
    Structure::Pancreas,
    Structure::Aorta,
    Structure::Veins,
    Structure::BowelWall,
    Structure::Muscle,
    Structure::Fat,
    Structure::Fluid,
    Structure::Trabecular,
    Structure::Cortical,
];

/// HU intervals per structure: non-contrast, arterial, portal venous. Published values
/// (`docs/imaging.md`) widened by about 15 HU on each side.
pub const HU_PRIORS: [[Range<f32>; 3]; 13] = [
    [35.0..80.0, 55.0..100.0, 85.0..145.0], // liver (steatosis to bright)
    [15.0..55.0, 140.0..270.0, 125.0..225.0], // kidney cortex
    [15.0..50.0, 45.0..135.0, 105.0..205.0], // kidney medulla
    [25.0..65.0, 75.0..165.0, 90.0..145.0], // spleen
    [20.0..60.0, 85.0..165.0, 70.0..130.0], // pancreas
    [30.0..65.0, 190.0..380.0, 125.0..215.0], // aorta
    [25.0..60.0, 55.0..155.0, 120.0..205.0], // veins
    [25.0..55.0, 55.0..115.0, 70.0..130.0], // bowel wall
    [30.0..65.0, 35.0..70.0, 40.0..80.0],   // muscle
    [-135.0..-70.0, -135.0..-70.0, -135.0..-70.0], // fat
    [-5.0..30.0, -5.0..30.0, -5.0..30.0],   // fluid
    [90.0..270.0, 90.0..270.0, 90.0..270.0], // trabecular bone
    [400.0..950.0, 400.0..950.0, 400.0..950.0], // cortical bone
];

/// Oral contrast in the stomach and bowel, when a case has it.
pub const ORAL_CONTRAST_HU: Range<f32> = 150.0..450.0;

/// Bounds of the per-case image effects.
pub const NOISE_STD_HU: Range<f32> = 5.0..30.0;
pub const NOISE_BLUR_PX: Range<f32> = 0.0..1.0;
pub const IMAGE_BLUR_PX: Range<f32> = 0.0..1.2;
pub const MAX_SLICES_AVERAGED: usize = 3;
pub const MAX_OFFSET_FIELD_HU: f32 = 25.0;

/// One case's look.
#[derive(Debug, Clone, PartialEq)]
pub struct Appearance {
    pub phase: Phase,
    hu: [f32; 13],
    /// Gut contents: fluid or oral contrast.
    pub gut_contents: f32,
    pub noise_std: f32,
    pub noise_blur_px: f32,
    pub image_blur_px: f32,
    pub slices_averaged: usize,
    /// Smooth offset field: amplitude (HU), spatial frequencies (1/mm) and phases per axis.
    pub offset_amplitude: f32,
    pub offset_frequency: [f32; 3],
    pub offset_phase: [f32; 3],
    /// Share of the pancreas replaced by fat between its lobules (0 in a young gland).
    pub pancreas_fat: f32,
}

/// Fatty pancreas: how many cases have one, and how much of the gland is fat. Fatty
/// replacement between the lobules is common with age and obesity (prevalence 16–35 % in
/// population studies); a real non-contrast case of ours reads −10 ± 28 HU over its
/// labelled pancreas at 3 mm, far below a lean gland's 20–60 HU.
pub const FATTY_PANCREAS_SHARE: f64 = 0.4;
pub const PANCREAS_FAT: Range<f32> = 0.15..0.6;

impl Appearance {
    /// A random look; `noise_scale` is the site's noise relative to the middle of
    /// [`NOISE_STD_HU`] (1 for an average scanner).
    pub fn random<R: Rng>(rng: &mut R, noise_scale: f32) -> Self {
        let phase = match rng.random_range(0.0f32..1.0) {
            p if p < 0.4 => Phase::NonContrast,
            p if p < 0.6 => Phase::Arterial,
            _ => Phase::PortalVenous,
        };
        let mut hu = HU_PRIORS.each_ref().map(|ranges| {
            let range = &ranges[phase.index()];
            rng.random_range(range.clone())
        });
        // Without contrast the kidney's cortex and medulla look alike: one homogeneous
        // organ around its sinus fat, as in real plain scans.
        if phase == Phase::NonContrast {
            let medulla = &HU_PRIORS[2][Phase::NonContrast.index()];
            hu[2] = (hu[1] + rng.random_range(-6.0..6.0)).clamp(medulla.start, medulla.end - 0.01);
        }
        let gut_contents = if rng.random_bool(0.25) {
            rng.random_range(ORAL_CONTRAST_HU)
        } else {
            hu[10]
        };
        let middle = (NOISE_STD_HU.start + NOISE_STD_HU.end) / 2.0;
        let noise_std = (rng.random_range(NOISE_STD_HU) * 0.5 + middle * 0.5 * noise_scale)
            .clamp(NOISE_STD_HU.start, NOISE_STD_HU.end);
        Self {
            phase,
            hu,
            gut_contents,
            noise_std,
            noise_blur_px: rng.random_range(NOISE_BLUR_PX),
            image_blur_px: if rng.random_bool(0.5) {
                rng.random_range(IMAGE_BLUR_PX)
            } else {
                0.0
            },
            slices_averaged: rng.random_range(1..=MAX_SLICES_AVERAGED),
            offset_amplitude: rng.random_range(0.0..MAX_OFFSET_FIELD_HU),
            offset_frequency: [0; 3].map(|_| rng.random_range(0.004..0.015)),
            offset_phase: [0; 3].map(|_| rng.random_range(0.0..std::f32::consts::TAU)),
            pancreas_fat: if rng.random_bool(FATTY_PANCREAS_SHARE) {
                rng.random_range(PANCREAS_FAT)
            } else {
                0.0
            },
        }
    }

    /// The look phantoms had before randomization (one HU per structure and phase, the
    /// site's white noise, no blur, averaging or offset field): kept for comparisons.
    pub fn fixed(phase: Phase, noise_std: f32) -> Self {
        let venous = phase != Phase::NonContrast;
        let pick = |plain: f32, contrast: f32| if venous { contrast } else { plain };
        Self {
            phase,
            hu: [
                pick(58.0, 105.0),
                pick(33.0, 175.0),
                pick(30.0, 125.0),
                pick(47.0, 112.0),
                pick(42.0, 98.0),
                pick(50.0, 170.0),
                pick(40.0, 155.0),
                pick(38.0, 95.0),
                52.0,
                -95.0,
                15.0,
                210.0,
                650.0,
            ],
            gut_contents: 20.0,
            noise_std,
            noise_blur_px: 0.0,
            image_blur_px: 0.0,
            slices_averaged: 1,
            offset_amplitude: 0.0,
            offset_frequency: [0.0; 3],
            offset_phase: [0.0; 3],
            pancreas_fat: 0.0,
        }
    }

    /// The HU this case gives `structure`.
    #[inline]
    pub fn hu(&self, structure: Structure) -> f32 {
        self.hu[structure as usize]
    }

    /// The smooth offset at a point (mm), within ±[`Self::offset_amplitude`].
    #[inline]
    pub fn offset_at(&self, p: [f32; 3]) -> f32 {
        let wave = |a: usize| (p[a] * self.offset_frequency[a] + self.offset_phase[a]).sin();
        self.offset_amplitude * wave(0) * wave(1) * (0.5 + 0.5 * wave(2))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn draws_are_seeded_and_stay_within_their_priors() {
        let draw = |seed| Appearance::random(&mut ChaCha8Rng::seed_from_u64(seed), 1.0);
        assert_eq!(draw(4), draw(4));
        assert_ne!(draw(4), draw(5));
        let mut phases = std::collections::HashSet::new();
        for seed in 0..300 {
            let look = draw(seed);
            phases.insert(look.phase.index());
            for (structure, ranges) in STRUCTURES.iter().zip(&HU_PRIORS) {
                let range = &ranges[look.phase.index()];
                assert!(range.contains(&look.hu(*structure)), "{structure:?}");
            }
            if look.phase == Phase::NonContrast {
                let cortex = look.hu(Structure::KidneyCortex);
                assert!((cortex - look.hu(Structure::KidneyMedulla)).abs() <= 6.0);
            }
            assert!(NOISE_STD_HU.contains(&look.noise_std) || look.noise_std == NOISE_STD_HU.end);
            assert!((1..=MAX_SLICES_AVERAGED).contains(&look.slices_averaged));
            assert!(look.image_blur_px < IMAGE_BLUR_PX.end);
            for p in [
                [0.0, 0.0, 0.0],
                [123.0, -80.0, 40.0],
                [-200.0, 150.0, -120.0],
            ] {
                assert!(look.offset_at(p).abs() <= MAX_OFFSET_FIELD_HU);
            }
        }
        assert_eq!(phases.len(), 3, "every phase is drawn");
        let fatty = (0..300)
            .map(draw)
            .filter(|look| {
                assert!(look.pancreas_fat == 0.0 || PANCREAS_FAT.contains(&look.pancreas_fat));
                look.pancreas_fat > 0.0
            })
            .count();
        assert!(
            (90..=150).contains(&fatty),
            "{fatty} of 300 fatty pancreases"
        );
    }

    #[test]
    fn contrast_raises_what_enhances() {
        // The intervals themselves keep the phases' order where radiology does.
        let [plain, arterial, venous] = &HU_PRIORS[Structure::Aorta as usize];
        assert!(arterial.start > plain.end && venous.start > plain.end);
        let [plain, _, venous] = &HU_PRIORS[Structure::Liver as usize];
        assert!(venous.end > plain.end + 50.0);
    }
}
