//! What lies around the organs in a real scan and a model must learn to reject: the psoas
//! muscles, the gallbladder in the liver's bed, the adrenals above the kidneys, costal
//! cartilage, arms at the sides (or raised out of the field), the scanner's table, and
//! cysts and lesions inside the organs (which keep the organ's label, as in AbdomenCT-1K);
//! the lung bases above and the pelvis below ([`super::pelvis`]).
//! Coordinates as in [`super::Anatomy`]: canonical mm, x toward the patient's left,
//! y posterior, z superior.

use rand::Rng;

use super::{
    Tissue,
    anatomy::{Ellipsoid, tissue},
    appearance::{Appearance, Structure},
    pelvis::Pelvis,
};

/// Arms at the patient's sides: the centre of each arm's cross-section from the midline
/// and its radii (mm).
#[derive(Debug, Clone, Copy)]
struct Arms {
    x: f32,
    y: f32,
    radii: [f32; 2],
}

/// A lesion: its shape and HU (it keeps the label of the organ it lies in).
#[derive(Debug, Clone, Copy)]
struct Lesion {
    shape: Ellipsoid,
    hu: f32,
}

/// The chest above the diaphragm.
#[derive(Debug, Clone, Copy)]
struct Ends {
    /// Height (z, mm) of the diaphragm's domes at the sides; the centre sits lower.
    dome: f32,
    heart: Ellipsoid,
}

#[derive(Debug, Clone)]
pub struct Surroundings {
    ends: Ends,
    psoas_x: f32,
    psoas_growth: f32,
    /// The back muscles: erector spinae either side of the spine's processes (half-width
    /// and depth, mm) and the quadratus lumborum behind each kidney (radii, mm).
    erector: [f32; 2],
    quadratus: [f32; 2],
    gallbladder: Option<Ellipsoid>,
    adrenals: [Ellipsoid; 2],
    /// The fat inside each kidney's (Gerota's) fascia, 6–16 mm around the kidney: real
    /// kidneys lie in it, apart from the psoas and the back muscles.
    perirenal_fat: [Ellipsoid; 2],
    /// Its innermost 1–5 mm, which keeps even the liver and the spleen off the kidneys
    /// (the fat plane of the hepatorenal and splenorenal recesses).
    fat_plane: [Ellipsoid; 2],
    arms: Option<Arms>,
    /// The table's top surface (y, mm), below the patient's back.
    table: Option<f32>,
    lesions: Vec<Lesion>,
    pub(super) pelvis: Pelvis,
}

impl Surroundings {
    /// Random surroundings for a body of half-axes `body` (its back `back` mm deeper) with
    /// these organs.
    pub(super) fn random<R: Rng>(
        rng: &mut R,
        body: [f32; 2],
        back: f32,
        liver: &[Ellipsoid; 2],
        kidneys: &[Ellipsoid; 2],
    ) -> Self {
        let main_liver = liver[0].center;
        let gallbladder = rng.random_bool(0.8).then(|| {
            Ellipsoid::new(
                [
                    main_liver[0] + rng.random_range(15.0..35.0),
                    main_liver[1] - rng.random_range(20.0..40.0),
                    main_liver[2] - rng.random_range(30.0..50.0),
                ],
                [
                    rng.random_range(10.0..18.0),
                    rng.random_range(12.0..20.0),
                    rng.random_range(22.0..40.0),
                ],
            )
        });
        let adrenals = [0, 1].map(|k| {
            let c = kidneys[k].center;
            let top = kidneys[k].axis_at(50.0);
            let toward_midline = if c[0] > 0.0 { -1.0 } else { 1.0 };
            Ellipsoid::new(
                [top[0] + toward_midline * 12.0, top[1] - 6.0, top[2]],
                [4.0, 13.0, 14.0],
            )
        });
        let arms = rng.random_bool(0.5).then(|| Arms {
            x: body[0] + rng.random_range(15.0..45.0),
            y: rng.random_range(-20.0..30.0),
            radii: [rng.random_range(30.0..45.0), rng.random_range(38.0..55.0)],
        });
        let table = rng
            .random_bool(0.7)
            .then(|| body[1] + back + rng.random_range(2.0..25.0));
        let lesions = (0..rng.random_range(0..4))
            .map(|_| {
                // In the liver most often, else a kidney cyst.
                let host = if rng.random_bool(0.7) {
                    liver[0].center
                } else {
                    kidneys[rng.random_range(0..2)].center
                };
                let radius = rng.random_range(4.0..18.0);
                Lesion {
                    shape: Ellipsoid::new(
                        host.map(|v| v + rng.random_range(-25.0..25.0)),
                        [radius, radius * rng.random_range(0.8..1.2), radius],
                    ),
                    // Cysts near water; solid lesions darker or brighter than the organ.
                    hu: if rng.random_bool(0.5) {
                        rng.random_range(0.0..20.0)
                    } else {
                        rng.random_range(-40.0..40.0)
                    },
                }
            })
            .collect();
        let dome = main_liver[2] + rng.random_range(45.0..70.0);
        let ends = Ends {
            dome,
            heart: Ellipsoid::new(
                [
                    rng.random_range(5.0..25.0),
                    -body[1] * 0.25,
                    dome + rng.random_range(35.0..55.0),
                ],
                [55.0, 45.0, 50.0].map(|r| r * rng.random_range(0.85..1.15)),
            ),
        };
        let pelvis = Pelvis::random(rng, body);
        let perirenal_fat = [0, 1].map(|k| kidneys[k].grown(rng.random_range(6.0..16.0)));
        let fat_plane = [0, 1].map(|k| kidneys[k].grown(rng.random_range(1.0..5.0)));
        Self {
            ends,
            psoas_x: rng.random_range(28.0..38.0),
            psoas_growth: rng.random_range(0.12..0.2),
            erector: [rng.random_range(20.0..30.0), rng.random_range(18.0..28.0)],
            quadratus: [rng.random_range(12.0..20.0), rng.random_range(9.0..15.0)],
            gallbladder,
            adrenals,
            perirenal_fat,
            fat_plane,
            arms,
            table,
            lesions,
            pelvis,
        }
    }

    /// Outside the body outline: an arm, the table, or nothing (air).
    pub(super) fn outside(&self, [x, y, _]: [f32; 3], look: &Appearance) -> Option<Tissue> {
        if let Some(arms) = self.arms {
            let r = ((x.abs() - arms.x) / arms.radii[0]).powi(2)
                + ((y - arms.y) / arms.radii[1]).powi(2);
            if r < 1.0 {
                return Some(tissue(if r < 0.04 {
                    look.hu(Structure::Cortical)
                } else if r < 0.08 {
                    look.hu(Structure::Trabecular)
                } else if r > 0.8 {
                    look.hu(Structure::Fat)
                } else {
                    look.hu(Structure::Muscle)
                }));
            }
        }
        if let Some(top) = self.table
            && x.abs() < 230.0
            && (top..top + 14.0).contains(&y)
        {
            // A carbon shell around a foam core.
            let shell = y < top + 2.0 || y > top + 12.0;
            return Some(tissue(if shell { 250.0 } else { -800.0 }));
        }
        None
    }

    /// Costal cartilage: the ribs' anterior ends in the upper abdomen, just inside the wall.
    pub(super) fn cartilage(
        &self,
        [x, y, z]: [f32; 3],
        inner_depth: f32,
        body: [f32; 2],
        look: &Appearance,
    ) -> Option<Tissue> {
        if z > 15.0 && inner_depth < 8.0 && y < -body[1] * 0.4 && x.abs() > 15.0 {
            let angle = y.atan2(x);
            if (angle * 6.0 + z / 14.0).sin() > 0.8 {
                return Some(tissue(look.hu(Structure::Trabecular) * 0.6));
            }
        }
        None
    }

    /// Right around the kidneys, before the liver and the spleen: the fat plane between.
    pub(super) fn kidney_fat_plane(&self, p: [f32; 3], look: &Appearance) -> Option<Tissue> {
        self.fat_plane
            .iter()
            .any(|f| f.level(p) < 1.0)
            .then(|| kidney_fat(look))
    }

    /// Inside the abdomen, before the organs: the gallbladder (carved out of the liver).
    pub(super) fn before_organs(&self, p: [f32; 3], look: &Appearance) -> Option<Tissue> {
        match self.gallbladder {
            Some(g) if g.level(p) < 1.0 => Some(tissue(look.hu(Structure::Fluid))),
            _ => None,
        }
    }

    /// Above the diaphragm, where no organ is: the heart and the lung bases (air, thin
    /// vessels) over the domes, which sit higher at the sides and dip toward the back.
    /// Below the abdomen: the pelvis's bladder and rectum ([`Pelvis::viscera`]).
    pub(super) fn ends(&self, p: [f32; 3], body: [f32; 2], look: &Appearance) -> Option<Tissue> {
        let [x, y, z] = p;
        let ends = &self.ends;
        let side = (x / body[0]).abs().min(1.0);
        let diaphragm = ends.dome - 25.0 * (1.0 - side) - 30.0 * (y / body[1]).clamp(0.0, 1.0);
        if z > diaphragm {
            if ends.heart.level(p) < 1.0 {
                return Some(tissue(look.hu(Structure::Veins)));
            }
            let vessel = ((x * 0.21).sin() * (y * 0.17).cos() * (z * 0.13).sin()).abs() < 0.02;
            return Some(tissue(if vessel {
                look.hu(Structure::Veins) - 20.0
            } else {
                -860.0
            }));
        }
        self.pelvis.viscera(p, body, look)
    }

    /// Inside the abdomen, after the organs: the adrenals, the erector spinae, the fat
    /// around the kidneys, the psoas muscles (growing toward the pelvis) beside the spine
    /// and the quadratus lumborum, in that order of precedence.
    pub(super) fn after_organs(
        &self,
        [x, y, z]: [f32; 3],
        spine_y: f32,
        look: &Appearance,
    ) -> Option<Tissue> {
        if self.adrenals.iter().any(|a| a.level([x, y, z]) < 1.0) {
            return Some(tissue(look.hu(Structure::Muscle) + 5.0));
        }
        // The back muscles, large in real scans (a model that never saw them called them
        // kidney): erector spinae behind the transverse processes, from 32 mm behind the
        // vertebral body's centre into the back (real-dicom's at T12: 38 mm, 9–56 mm
        // either side of the midline), quadratus lumborum beside the psoas behind the
        // kidneys (apart from them by their fat), down to the iliac crests.
        let [half_width, depth] = self.erector;
        if ((x.abs() - 14.0 - half_width) / half_width).powi(2)
            + ((y - spine_y - 32.0 - depth) / depth).powi(2)
            < 1.0
        {
            return Some(tissue(look.hu(Structure::Muscle)));
        }
        if self.perirenal_fat.iter().any(|f| f.level([x, y, z]) < 1.0) {
            return Some(kidney_fat(look));
        }
        let radius = 5.0 + (10.0 - z).max(0.0) * self.psoas_growth;
        if z < 20.0
            && ((x.abs() - self.psoas_x) / radius).powi(2)
                + ((y - spine_y + 4.0) / (radius * 0.9)).powi(2)
                < 1.0
        {
            return Some(tissue(look.hu(Structure::Muscle)));
        }
        let above_pelvis = z > self.pelvis.crest() - 20.0;
        let [qx, qy] = self.quadratus;
        if above_pelvis
            && z < 40.0
            && ((x.abs() - self.psoas_x - 28.0) / qx).powi(2) + ((y - spine_y - 24.0) / qy).powi(2)
                < 1.0
        {
            return Some(tissue(look.hu(Structure::Muscle) - 3.0));
        }
        None
    }

    /// A lesion's HU at `p` inside an organ, if one is there.
    pub(super) fn lesion(&self, p: [f32; 3]) -> Option<f32> {
        self.lesions
            .iter()
            .find(|l| l.shape.level(p) < 1.0)
            .map(|l| l.hu)
    }
}

/// The fat around the kidneys, its fat plane and its shell alike.
fn kidney_fat(look: &Appearance) -> Tissue {
    tissue(look.hu(Structure::Fat) + 8.0)
}
