//! Decoys: masses with an organ's density where no organ is, labelled background. On
//! real CT the phantom-trained models put "liver" on whatever below the liver has the
//! liver's HU — the bladder, the gluteal muscles, the right flank (`docs/benchmarks.md`,
//! real CT, rows J–O) — because in the phantoms nothing but an organ ever had an organ's
//! density. Decoys break that shortcut the way SynthSeg's random intensities do: density
//! alone no longer names an organ, so the network must learn shape and place. In real
//! scans they stand for fluid-filled bowel, haematomas, collections and muscle.
//!
//! Coordinates as in [`super::Anatomy`]: canonical mm, x toward the patient's left,
//! y posterior, z superior.

use rand::Rng;

use super::{
    Tissue,
    anatomy::{Ellipsoid, tissue},
    appearance::{Appearance, Structure},
};

/// The organ densities a decoy takes, with their weights: mostly the liver's, whose false
/// positives cost the most.
const DENSITIES: [(Structure, u32); 4] = [
    (Structure::Liver, 4),
    (Structure::Spleen, 2),
    (Structure::KidneyCortex, 2),
    (Structure::Pancreas, 2),
];

/// Most decoys in one case.
pub(super) const MAX_DECOYS: usize = 5;

#[derive(Debug, Clone)]
pub(super) struct Decoys(Vec<(Ellipsoid, Structure)>);

impl Decoys {
    /// 0–[`MAX_DECOYS`] ellipsoids of 12–40 mm radii in the lower abdomen and pelvis, from
    /// 20 mm below `hips` (the femoral heads' height) to 50 mm above `crest` (the iliac
    /// crests'), across most of a body of half-axes `body`. They are drawn after the
    /// organs, so an organ always wins where one overlaps.
    pub(super) fn random<R: Rng>(rng: &mut R, body: [f32; 2], crest: f32, hips: f32) -> Self {
        let count = rng.random_range(0..=MAX_DECOYS);
        let total: u32 = DENSITIES.iter().map(|(_, w)| w).sum();
        let decoys = (0..count)
            .map(|_| {
                let center = [
                    rng.random_range(-0.7..0.7) * body[0],
                    rng.random_range(-0.5..0.35) * body[1],
                    rng.random_range(hips - 20.0..crest + 50.0),
                ];
                let radii = [0; 3].map(|_| rng.random_range(12.0..40.0));
                let shape = Ellipsoid::turned(center, radii, rng.random_range(0.0..3.2));
                let mut pick = rng.random_range(0..total);
                let density = DENSITIES
                    .iter()
                    .find(|(_, w)| {
                        let here = pick < *w;
                        pick = pick.saturating_sub(*w);
                        here
                    })
                    .map_or(Structure::Liver, |(s, _)| *s);
                (shape, density)
            })
            .collect();
        Self(decoys)
    }

    /// The decoy at `p`, if any: its organ's HU in this case's look, label 0.
    pub(super) fn at(&self, p: [f32; 3], look: &Appearance) -> Option<Tissue> {
        self.0
            .iter()
            .find(|(shape, _)| shape.level(p) < 1.0)
            .map(|(_, density)| tissue(look.hu(*density)))
    }

    #[cfg(test)]
    pub(super) fn shapes(&self) -> impl Iterator<Item = &(Ellipsoid, Structure)> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::phantom::appearance::Phase;

    #[test]
    fn decoys_have_an_organs_density_and_no_label_in_the_lower_abdomen() {
        let body = [160.0, 115.0];
        let look = Appearance::fixed(Phase::PortalVenous, 0.0);
        let (crest, hips) = (-110.0, -220.0);
        let mut counts = [0usize; MAX_DECOYS + 1];
        let mut liver_like = 0;
        for seed in 0..200 {
            let decoys = Decoys::random(&mut ChaCha8Rng::seed_from_u64(seed), body, crest, hips);
            let shapes: Vec<_> = decoys.shapes().collect();
            counts[shapes.len()] += 1;
            for (shape, density) in shapes {
                let c = shape.center;
                assert!((hips - 20.0..crest + 50.0).contains(&c[2]), "seed {seed}: {c:?}");
                assert!(c[0].abs() < body[0] * 0.7, "seed {seed}: {c:?}");
                // At its centre a decoy is itself (unless an earlier one covers it) and is
                // background.
                let found = decoys.at(c, &look).unwrap();
                assert_eq!(found.label, 0);
                if found.hu == look.hu(*density) && *density == Structure::Liver {
                    liver_like += 1;
                }
            }
            // Far above the crests there is none.
            assert!(decoys.at([0.0, 0.0, crest + 200.0], &look).is_none());
        }
        // Every count from none to the most occurs; the liver's density is the commonest.
        assert!(counts.iter().all(|&n| n > 10), "{counts:?}");
        let all: usize = (0..=MAX_DECOYS).map(|n| n * counts[n]).sum();
        assert!(liver_like * 10 > all * 3, "{liver_like} of {all}");
    }
}
