//! The pelvis below the iliac crests, as abdominal scans show it down to the hips: the
//! gluteal muscles thickening behind and beside the iliac wings, the iliacus inside them,
//! the sacrum, the hip joints (acetabula and femoral heads) with the femoral necks and the
//! thigh muscles below, the pubic rami and ischia, the obturator muscles, the bladder and
//! the rectum. None of it is an organ: in real scans these large muscle masses and the
//! full bladder are where a model that never saw them puts "liver" (`docs/benchmarks.md`,
//! real CT, rows D–F).
//!
//! Coordinates as in [`super::Anatomy`]: canonical mm, x toward the patient's left,
//! y posterior, z superior; `body` the abdomen's half-axes.

use rand::Rng;

use super::{
    Tissue,
    anatomy::{Ellipsoid, tissue},
    appearance::{Appearance, Structure},
};

/// How far below the crests the sacrum and coccyx reach (mm); the spine ends there.
const SACRUM_LENGTH: f32 = 120.0;

/// 0 below `from`, 1 above `to`, linear between.
fn ramp(v: f32, from: f32, to: f32) -> f32 {
    ((v - from) / (to - from)).clamp(0.0, 1.0)
}

#[derive(Debug, Clone)]
pub(super) struct Pelvis {
    /// Height of the iliac crests (z, mm).
    crest: f32,
    /// How far apart the iliac wings sit at the crest (|x|, mm).
    wing_x: f32,
    /// Femoral heads: distance from the midline, height, radius (mm).
    hip_x: f32,
    hip_z: f32,
    head_radius: f32,
    /// Greatest extra thickness of the gluteal muscles (mm).
    gluteal: f32,
    /// The hips' extra width over the abdomen's, as a share of it.
    widening: f32,
    bladder: Ellipsoid,
    rectum_radius: f32,
    rectum_gas: bool,
}

impl Pelvis {
    pub(super) fn random<R: Rng>(rng: &mut R, body: [f32; 2]) -> Self {
        let crest = rng.random_range(-120.0..-95.0);
        let hip_z = crest - rng.random_range(100.0..125.0);
        let bladder_radii = [
            rng.random_range(22.0..55.0),
            rng.random_range(18.0..45.0),
            rng.random_range(18.0..45.0),
        ];
        Self {
            crest,
            wing_x: rng.random_range(60.0..80.0),
            hip_x: rng.random_range(78.0..95.0),
            hip_z,
            head_radius: rng.random_range(21.0..27.0),
            gluteal: rng.random_range(25.0..55.0),
            widening: rng.random_range(0.0..0.15),
            bladder: Ellipsoid::new(
                [
                    rng.random_range(-8.0..8.0),
                    -body[1] * rng.random_range(0.3..0.45),
                    hip_z + rng.random_range(0.0..30.0) + bladder_radii[2] * 0.5,
                ],
                bladder_radii,
            ),
            rectum_radius: rng.random_range(11.0..19.0),
            rectum_gas: rng.random_bool(0.4),
        }
    }

    /// Height of the iliac crests (z, mm).
    pub(super) fn crest(&self) -> f32 {
        self.crest
    }

    /// How much wider than the abdomen the body is at height `z` (a factor ≥ 1).
    pub(super) fn width_factor(&self, z: f32) -> f32 {
        1.0 + self.widening * ramp(self.crest - z, 0.0, 60.0)
    }

    /// Below the crests, inside the abdominal wall's fat: the muscles and bones of the
    /// pelvis and hips. `wall_depth` is the depth (mm) below the subcutaneous fat.
    pub(super) fn musculoskeletal(
        &self,
        [x, y, z]: [f32; 3],
        wall_depth: f32,
        body: [f32; 2],
        look: &Appearance,
    ) -> Option<Tissue> {
        let below = self.crest - z;
        if below < -10.0 {
            return None;
        }
        let ax = x.abs();
        let muscle = look.hu(Structure::Muscle);
        let fat = look.hu(Structure::Fat);
        let (trabecular, cortical) = (look.hu(Structure::Trabecular), look.hu(Structure::Cortical));
        let bone = |r: f32| tissue(if r > 0.75 { cortical } else { trabecular });
        let spine_y = body[1] * 0.45;

        // Gluteal muscles: a thick layer under the fat, greatest behind and beside the
        // wings, with a fat plane between maximus and medius.
        let angle = y.atan2(ax); // 0 lateral, + posterior, − anterior
        let around = ((angle - 0.5) * std::f32::consts::FRAC_PI_2).cos().max(0.0);
        let thickness = self.gluteal * around * ramp(below, -10.0, 40.0);
        if wall_depth < thickness {
            let plane = (wall_depth - thickness * 0.45).abs() < 1.5;
            return Some(tissue(if plane { fat } else { muscle }));
        }

        // The sacrum behind, narrowing downward; the coccyx ends it.
        if (0.0..SACRUM_LENGTH).contains(&below) {
            let half_width = (48.0 - below * 0.35).max(8.0);
            let sy = spine_y - 5.0 + below * 0.12;
            let r = (x / half_width).powi(2) + ((y - sy) / 16.0).powi(2);
            if r < 1.0 {
                return Some(bone(r));
            }
        }

        // The iliac wings: oblique plates from the sacroiliac joints forward and out to the
        // anterior spines, closing toward the acetabula lower down, the iliacus lining
        // their inner faces.
        let hip_y = body[1] * 0.05;
        let head_top = self.crest - self.hip_z - self.head_radius;
        if (0.0..head_top).contains(&below) {
            let t = below / head_top;
            let lerp =
                |a: [f32; 2], b: [f32; 2]| [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
            let back = lerp([42.0, spine_y - 6.0], [self.hip_x - 22.0, hip_y + 22.0]);
            let front = lerp(
                [self.wing_x + 45.0, -body[1] * 0.1],
                [self.hip_x + 8.0, hip_y - 12.0],
            );
            let (d, normal_side) = segment_distance([ax, y], back, front);
            let half = 4.0 + 5.0 * t;
            if d < half {
                return Some(bone(d / half));
            }
            // Inner (anteromedial) face: the iliacus.
            if normal_side < 0.0 && d < half + 16.0 * (1.0 - t * 0.6) {
                return Some(tissue(muscle));
            }
        }

        // The hip joints: femoral heads in their sockets, the socket's rim.
        let to_head =
            ((ax - self.hip_x).powi(2) + (y - hip_y).powi(2) + (z - self.hip_z).powi(2)).sqrt();
        if to_head < self.head_radius {
            return Some(bone(to_head / self.head_radius));
        }
        if to_head < self.head_radius + 8.0 && ax < self.hip_x + 5.0 {
            return Some(tissue(if to_head < self.head_radius + 2.0 {
                fat
            } else {
                cortical
            }));
        }
        // Below the heads: the femoral necks out to the trochanters and the shafts, in the
        // thigh muscles.
        if z < self.hip_z {
            let drop = self.hip_z - z;
            let femur_x = self.hip_x + (drop * 1.2).min(30.0);
            let r = ((ax - femur_x).powi(2) + (y - hip_y).powi(2)).sqrt();
            let radius = if drop < 25.0 { 16.0 } else { 13.0 };
            if r < radius {
                return Some(tissue(if r > radius - 4.0 {
                    cortical
                } else {
                    trabecular
                }));
            }
            if r < 55.0 && ax > 45.0 {
                return Some(tissue(muscle));
            }
            // The ischial tuberosities behind.
            let ischium = ((ax - 45.0) / 14.0).powi(2) + ((y - body[1] * 0.35) / 18.0).powi(2);
            if drop < 50.0 && ischium < 1.0 {
                return Some(bone(ischium));
            }
        }
        // The pubic rami in front.
        let level = (z - self.hip_z) / 25.0;
        if (-1.2..0.6).contains(&level) && ax > 3.0 && ax < self.hip_x - 10.0 {
            let pubic = ((y + body[1] * 0.55) / 11.0).powi(2);
            if pubic < 1.0 {
                return Some(bone(pubic));
            }
        }
        // The obturator internus: the muscle lining the pelvis's side wall.
        if (self.hip_z - 40.0..self.hip_z + 35.0).contains(&z)
            && (self.hip_x - 38.0..self.hip_x - 18.0).contains(&ax)
            && y > -body[1] * 0.4
        {
            return Some(tissue(muscle));
        }
        None
    }

    /// Inside the pelvis, among the bowel: the bladder and the rectum.
    pub(super) fn viscera(
        &self,
        [x, y, z]: [f32; 3],
        body: [f32; 2],
        look: &Appearance,
    ) -> Option<Tissue> {
        if self.bladder.level([x, y, z]) < 1.0 {
            return Some(tissue(look.hu(Structure::Fluid)));
        }
        let below = self.crest - z;
        if below > 40.0 {
            let ry = body[1] * 0.45 - 30.0 + (below - 40.0) * 0.1;
            let r = (x.powi(2) + (y - ry).powi(2)).sqrt() / self.rectum_radius;
            if r < 1.0 {
                return Some(tissue(if r > 0.75 {
                    look.hu(Structure::BowelWall)
                } else if self.rectum_gas && r < 0.5 {
                    -850.0
                } else {
                    look.gut_contents
                }));
            }
        }
        None
    }

    /// Below the coccyx the spine has ended.
    pub(super) fn spine_ended(&self, z: f32) -> bool {
        self.crest - z > SACRUM_LENGTH
    }
}

/// Distance from `p` to the segment `a`–`b`, and on which side of it `p` lies (the sign
/// of the cross product: negative toward the midline and the front for a wing drawn from
/// back to front on the left half).
fn segment_distance(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> (f32, f32) {
    let ab = [b[0] - a[0], b[1] - a[1]];
    let ap = [p[0] - a[0], p[1] - a[1]];
    let len2 = (ab[0] * ab[0] + ab[1] * ab[1]).max(1e-6);
    let t = ((ap[0] * ab[0] + ap[1] * ab[1]) / len2).clamp(0.0, 1.0);
    let d = [ap[0] - t * ab[0], ap[1] - t * ab[1]];
    let side = ab[0] * ap[1] - ab[1] * ap[0];
    ((d[0] * d[0] + d[1] * d[1]).sqrt(), side)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::phantom::appearance::{Appearance, Phase};

    #[test]
    fn muscles_bones_and_bladder_sit_where_the_pelvis_has_them() {
        let body = [160.0, 115.0];
        let look = Appearance::fixed(Phase::NonContrast, 0.0);
        let (muscle, fluid) = (look.hu(Structure::Muscle), look.hu(Structure::Fluid));
        for seed in 0..20 {
            let pelvis = Pelvis::random(&mut ChaCha8Rng::seed_from_u64(seed), body);
            let hu_at =
                |p: [f32; 3], wall: f32| pelvis.musculoskeletal(p, wall, body, &look).map(|t| t.hu);
            // Above the crests the pelvis is not there.
            assert_eq!(hu_at([120.0, 40.0, pelvis.crest + 30.0], 5.0), None);
            // Beside and behind the wings, 40 mm below the crest: gluteal muscle under
            // the fat (away from the fat plane inside it).
            let gluteal = hu_at([125.0, 60.0, pelvis.crest - 40.0], 3.0).unwrap();
            assert_eq!(gluteal, muscle, "seed {seed}");
            // The centre of a femoral head is bone, brighter than any soft tissue.
            let head = hu_at([pelvis.hip_x, body[1] * 0.05, pelvis.hip_z], 60.0).unwrap();
            assert!(head > 150.0, "seed {seed}: {head}");
            // The bladder holds fluid; nothing here carries an organ's label.
            let bladder = pelvis.viscera(pelvis.bladder.center, body, &look).unwrap();
            assert_eq!((bladder.hu, bladder.label), (fluid, 0));
            assert!(pelvis.width_factor(pelvis.crest - 100.0) >= 1.0);
            assert_eq!(pelvis.width_factor(pelvis.crest + 10.0), 1.0);
        }
    }
}
