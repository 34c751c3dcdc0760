//! The anatomy of one phantom: shapes in canonical millimetres (x toward the patient's
//! left, y posterior, z superior; origin mid-body) with their tissue and label.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    appearance::{Appearance, Phase, Structure},
    surroundings::Surroundings,
};

/// What a point is made of, with its label (0 = background … 4 = pancreas).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tissue {
    pub hu: f32,
    pub label: u8,
}

/// Unlabelled tissue of this HU.
pub(super) const fn tissue(hu: f32) -> Tissue {
    Tissue { hu, label: 0 }
}

/// An ellipsoid with a bounding-box test first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ellipsoid {
    pub(super) center: [f32; 3],
    inv_radii: [f32; 3],
    /// Cosine and sine of its turn about the z axis (from x toward y).
    yaw: [f32; 2],
    /// How far its axial sections shift in x and y per mm above its centre (a shear: every
    /// section keeps its shape, so the long axis leans as a real kidney's does).
    lean: [f32; 2],
}

impl Ellipsoid {
    pub(super) fn new(center: [f32; 3], radii: [f32; 3]) -> Self {
        Self::turned(center, radii, 0.0)
    }

    /// An ellipsoid whose first axis is turned by `yaw` radians from x toward y.
    pub(super) fn turned(center: [f32; 3], radii: [f32; 3], yaw: f32) -> Self {
        let (sin, cos) = yaw.sin_cos();
        Self {
            center,
            inv_radii: radii.map(|r| 1.0 / r.max(1.0)),
            yaw: [cos, sin],
            lean: [0.0; 2],
        }
    }

    /// The same ellipsoid with its sections shifted by `lean` mm (x, y) per mm above its
    /// centre.
    pub(super) fn leaning(self, lean: [f32; 2]) -> Self {
        Self { lean, ..self }
    }

    /// Its centre's section `dz` mm above the centre (where the sheared axis passes).
    pub(super) fn axis_at(&self, dz: f32) -> [f32; 3] {
        let [x, y, z] = self.center;
        [x + self.lean[0] * dz, y + self.lean[1] * dz, z + dz]
    }

    /// The same ellipsoid with every radius `by` mm longer: it and a shell about `by` thick.
    pub(super) fn grown(&self, by: f32) -> Self {
        Self {
            inv_radii: self.inv_radii.map(|inv| 1.0 / (1.0 / inv + by)),
            ..*self
        }
    }

    /// Squared normalized distance: < 1 inside.
    #[inline]
    pub(super) fn level(&self, p: [f32; 3]) -> f32 {
        let [cos, sin] = self.yaw;
        let dz = p[2] - self.center[2];
        let (dx, dy) = (
            p[0] - self.center[0] - self.lean[0] * dz,
            p[1] - self.center[1] - self.lean[1] * dz,
        );
        let local = [cos * dx + sin * dy, cos * dy - sin * dx, dz];
        (0..3).map(|a| (local[a] * self.inv_radii[a]).powi(2)).sum()
    }
}

/// A tube around a polyline, with a radius per vertex.
#[derive(Debug, Clone)]
struct Tube {
    points: Vec<[f32; 3]>,
    radii: Vec<f32>,
    low: [f32; 3],
    high: [f32; 3],
}

impl Tube {
    /// A quadratic Bézier from `a` through control `b` to `c`, radius from `ra` to `rc`.
    fn bezier(a: [f32; 3], b: [f32; 3], c: [f32; 3], ra: f32, rb: f32, rc: f32) -> Self {
        let n = 24;
        let mut points = Vec::with_capacity(n + 1);
        let mut radii = Vec::with_capacity(n + 1);
        for s in 0..=n {
            let t = s as f32 / n as f32;
            let u = 1.0 - t;
            points.push([0, 1, 2].map(|k| u * u * a[k] + 2.0 * u * t * b[k] + t * t * c[k]));
            radii.push(if t < 0.5 {
                ra + (rb - ra) * t * 2.0
            } else {
                rb + (rc - rb) * (t - 0.5) * 2.0
            });
        }
        let margin = ra.max(rb).max(rc);
        let mut low = [f32::MAX; 3];
        let mut high = [f32::MIN; 3];
        for p in &points {
            for k in 0..3 {
                low[k] = low[k].min(p[k] - margin);
                high[k] = high[k].max(p[k] + margin);
            }
        }
        Self {
            points,
            radii,
            low,
            high,
        }
    }

    #[inline]
    fn contains(&self, p: [f32; 3]) -> bool {
        if (0..3).any(|k| p[k] < self.low[k] || p[k] > self.high[k]) {
            return false;
        }
        self.points
            .windows(2)
            .zip(self.radii.windows(2))
            .any(|(seg, r)| {
                let (a, b) = (seg[0], seg[1]);
                let ab = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
                let ap = [p[0] - a[0], p[1] - a[1], p[2] - a[2]];
                let len2 = ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2];
                let t = ((ap[0] * ab[0] + ap[1] * ab[1] + ap[2] * ab[2]) / len2).clamp(0.0, 1.0);
                let d = [ap[0] - t * ab[0], ap[1] - t * ab[1], ap[2] - t * ab[2]];
                let radius = r[0] + (r[1] - r[0]) * t;
                d[0] * d[0] + d[1] * d[1] + d[2] * d[2] < radius * radius
            })
    }
}

/// All shapes of one case.
#[derive(Debug, Clone)]
pub struct Anatomy {
    body: [f32; 2],
    /// How much deeper the back is than the front (mm; full style 15–40, else 0): room
    /// behind the spine for the erector spinae, which fill 60 mm or more of a real back.
    back: f32,
    subcutaneous_fat: f32,
    muscle: f32,
    liver: [Ellipsoid; 2],
    /// The full style's lower tip of the right lobe, beside the right kidney.
    liver_tip: Option<Ellipsoid>,
    spleen: Ellipsoid,
    kidneys: [Ellipsoid; 2],
    kidney_sinus: [Ellipsoid; 2],
    /// The full style's renal sinus inside each kidney, around its long axis.
    renal_sinus: Option<[Ellipsoid; 2]>,
    pancreas: Tube,
    duodenum: Tube,
    splenic_vein: Tube,
    stomach: Ellipsoid,
    bowel: Vec<(Ellipsoid, bool)>,
    /// The colon's frame (ascending, transverse, descending) with stool and gas, with
    /// surroundings only.
    colon: Vec<Tube>,
    aorta: [f32; 3],
    ivc: [f32; 3],
    /// Every structure's HU for this case.
    look: Appearance,
    /// Structures beyond the organs' neighbours (psoas, gallbladder, adrenals, arms, the
    /// table, cartilage, lesions); `None` for the earlier, plainer phantoms.
    surroundings: Option<Surroundings>,
}

/// Full style: the right kidney's centre height in the anatomy's frame (mm; the left one
/// sits 10 mm higher). The liver's centre is near +45 and its dome near +100.
pub(super) const KIDNEY_Z_MM: std::ops::Range<f32> = -20.0..5.0;

fn jitter<R: Rng>(rng: &mut R, p: [f32; 3], by: f32) -> [f32; 3] {
    p.map(|v| v + rng.random_range(-by..=by))
}

fn scaled<R: Rng>(rng: &mut R, radii: [f32; 3], low: f32, high: f32) -> [f32; 3] {
    let s = rng.random_range(low..=high);
    radii.map(|r| r * s)
}

impl Anatomy {
    /// A random anatomy. Positions follow the abdomen: liver on the patient's right
    /// (x < 0), spleen left and posterior, kidneys beside the spine, pancreas across the
    /// midline in front of the aorta, its head in the duodenal C-loop.
    pub fn random<R: Rng + Clone>(rng: &mut R, look: Appearance, surroundings: bool) -> Self {
        // Variations added after the rest draw from a stream of their own, so that adding
        // one leaves every earlier draw (and so every other shape) as it was.
        let mut later = ChaCha8Rng::seed_from_u64(rng.clone().next_u64() ^ 0x001E_A70F_5AFE);
        let body = [
            rng.random_range(145.0..175.0),
            rng.random_range(105.0..125.0),
        ];
        let liver_center = jitter(rng, [-65.0, -5.0, 45.0], 8.0);
        let liver = [
            Ellipsoid::new(liver_center, scaled(rng, [72.0, 80.0, 70.0], 0.88, 1.12)),
            Ellipsoid::new(
                jitter(rng, [5.0, -45.0, 55.0], 8.0),
                scaled(rng, [45.0, 28.0, 35.0], 0.85, 1.15),
            ),
        ];
        let spleen = Ellipsoid::new(
            jitter(rng, [88.0, 45.0, 45.0], 8.0),
            scaled(rng, [24.0, 42.0, 50.0], 0.8, 1.2),
        );
        let kidney_radii = scaled(rng, [26.0, 30.0, 52.0], 0.85, 1.15);
        // With surroundings, kidneys sit as high as real ones: their upper halves behind
        // the liver's right lobe and beside the spleen, the liver's lowest part below the
        // right kidney's hilum (real-abdomen: 45 mm below; docs/imaging.md).
        let kidney_z = if surroundings {
            rng.random_range(KIDNEY_Z_MM)
        } else {
            rng.random_range(-45.0..-20.0)
        };
        let left = jitter(rng, [68.0, 52.0, kidney_z + 10.0], 5.0);
        let right = jitter(rng, [-68.0, 52.0, kidney_z], 5.0);
        // With surroundings, kidneys as real ones lie and measure: an axial section of
        // about 60 × 50 mm at the hilum (real-abdomen: 59–63 × 49–54), thinner front to
        // back than side to side, turned so that the hilum faces forward and inward
        // (lateral border behind).
        let (kidney_radii, turn) = if surroundings {
            let [x, y, z] = kidney_radii;
            ([x * 1.15, y * 0.9, z], rng.random_range(0.35f32..0.6))
        } else {
            (kidney_radii, 0.0)
        };
        // With surroundings, each kidney's long axis leans as real ones do, the upper pole
        // toward the spine and the back, the lower pole out and forward (real-abdomen: the
        // sections' centres move 28-31 mm across and 26-32 mm front to back over the kidney's
        // 99-108 mm, about 0.3 mm per mm each way).
        let leans = [1.0f32, -1.0].map(|side| {
            if surroundings {
                [
                    -side * later.random_range(0.15f32..0.35),
                    later.random_range(0.15f32..0.35),
                ]
            } else {
                [0.0; 2]
            }
        });
        let kidneys = [
            Ellipsoid::turned(left, kidney_radii, turn).leaning(leans[0]),
            Ellipsoid::turned(right, kidney_radii, -turn).leaning(leans[1]),
        ];
        // The renal sinus, toward the hilum. With surroundings it opens there, as real
        // kidneys do around their middle: a C of parenchyma around fat on the hilum slices.
        let (offset, hilum_radii) = if surroundings {
            (26.0, [12.0, 10.0, 14.0])
        } else {
            (12.0, [9.0, 12.0, 25.0])
        };
        // A yawed ellipsoid `offset` mm from kidney centre `c` toward its hilum.
        let toward_hilum = |c: [f32; 3], side: f32, offset: f32, radii: [f32; 3]| {
            let (sin, cos) = (side * turn).sin_cos();
            Ellipsoid::turned(
                [c[0] - side * offset * cos, c[1] - side * offset * sin, c[2]],
                radii,
                side * turn,
            )
        };
        let hilum = |c, side| toward_hilum(c, side, offset, hilum_radii);
        let kidney_sinus = [
            hilum(left, 1.0).leaning(leans[0]),
            hilum(right, -1.0).leaning(leans[1]),
        ];
        // With surroundings, the sinus's fat also fills the kidney's core above and below
        // the hilum, as on real-abdomen's kidneys (a ring of parenchyma around fat 20 mm
        // from the hilum, a C 25-30 mm deep at it), scaled with the kidney.
        let renal_sinus = surroundings.then(|| {
            let k = kidney_radii[0] / 30.0;
            let core = |c, side| toward_hilum(c, side, 12.0 * k, [16.0 * k, 12.0 * k, 35.0 * k]);
            [
                core(left, 1.0).leaning(leans[0]),
                core(right, -1.0).leaning(leans[1]),
            ]
        });

        // The pancreas: head right of the midline, body over the aorta, tail at the spleen.
        let head = jitter(rng, [-28.0, -5.0, 0.0], 5.0);
        let body_point = jitter(rng, [8.0, -30.0, 12.0], 5.0);
        let tail = jitter(rng, [72.0, 22.0, 28.0], 6.0);
        let thickness = rng.random_range(0.8..1.15);
        let pancreas = Tube::bezier(
            head,
            body_point,
            tail,
            13.0 * thickness,
            8.5 * thickness,
            8.0 * thickness,
        );
        // The duodenum wraps the head; the splenic vein runs behind the body and tail.
        let duodenum = Tube::bezier(
            [head[0] - 5.0, head[1] - 15.0, head[2] + 25.0],
            [head[0] - 30.0, head[1] + 5.0, head[2]],
            [head[0] + 5.0, head[1] + 5.0, head[2] - 28.0],
            9.0,
            10.0,
            9.0,
        );
        let splenic_vein = Tube::bezier(
            [head[0] + 15.0, head[1] + 14.0, head[2] + 2.0],
            [body_point[0], body_point[1] + 16.0, body_point[2]],
            [tail[0] - 5.0, tail[1] + 12.0, tail[2]],
            4.5,
            4.5,
            4.0,
        );
        let stomach = Ellipsoid::new(
            jitter(rng, [55.0, -35.0, 65.0], 8.0),
            scaled(rng, [40.0, 32.0, 38.0], 0.8, 1.2),
        );
        // With surroundings the small bowel and the sigmoid also fill the pelvis.
        let (loops, lowest, largest) = if surroundings {
            (45..65, -190.0, 25.0)
        } else {
            (14..22, -110.0, 22.0)
        };
        let bowel = (0..rng.random_range(loops))
            .map(|_| {
                let center = [
                    rng.random_range(-100.0..100.0),
                    rng.random_range(-80.0..10.0),
                    rng.random_range(lowest..20.0),
                ];
                let radius = rng.random_range(10.0..largest);
                let gas = rng.random_bool(0.35);
                (
                    Ellipsoid::new(center, [radius, radius * 0.8, radius * 1.3]),
                    gas,
                )
            })
            .collect();

        // Drawn in the order the earlier phantoms drew them, the surroundings last.
        let colon = if surroundings {
            let side = body[0] - rng.random_range(35.0..55.0);
            let low = rng.random_range(-140.0..-100.0);
            let front = -body[1] * rng.random_range(0.45..0.65);
            let flexure = rng.random_range(10.0..40.0);
            let r = rng.random_range(15.0..24.0);
            vec![
                // Ascending colon on the right, up to the hepatic flexure.
                Tube::bezier(
                    [-side, 5.0, low],
                    [-side - 5.0, 0.0, (low + flexure) / 2.0],
                    [-side + 15.0, front * 0.5, flexure - 10.0],
                    r,
                    r,
                    r * 0.9,
                ),
                // Transverse colon, sagging forward across the midline.
                Tube::bezier(
                    [-side + 15.0, front * 0.5, flexure - 10.0],
                    [0.0, front, flexure - rng.random_range(20.0..60.0)],
                    [side - 10.0, front * 0.4, flexure + 15.0],
                    r * 0.9,
                    r * 0.85,
                    r * 0.85,
                ),
                // Descending colon on the left, down to the sigmoid.
                Tube::bezier(
                    [side - 10.0, front * 0.4, flexure + 15.0],
                    [side + 5.0, 15.0, (low + flexure) / 2.0],
                    [side - 20.0, 0.0, low - 20.0],
                    r * 0.85,
                    r * 0.8,
                    r * 0.8,
                ),
            ]
        } else {
            Vec::new()
        };

        let subcutaneous_fat = rng.random_range(8.0..28.0);
        let muscle = rng.random_range(7.0..13.0);
        let aorta = [12.0 + rng.random_range(-4.0..4.0), 28.0, 11.0];
        let ivc = [-22.0 + rng.random_range(-4.0..4.0), 30.0, 12.0];
        let back = if surroundings {
            rng.random_range(15.0..40.0)
        } else {
            0.0
        };
        let surroundings =
            surroundings.then(|| Surroundings::random(rng, body, back, &liver, &kidneys));
        // With surroundings, the right lobe's lower tip: a strip along the body wall beside
        // and in front of the right kidney, down to 32-64 mm below its centre, as on
        // real-abdomen (45 mm; from the kidney's lateral border to 60 mm out, 0-85 mm in
        // front of its centre; the two ellipsoids above end near its level).
        let liver_tip = surroundings.is_some().then(|| {
            let c = kidneys[1].center;
            Ellipsoid::new(
                jitter(rng, [c[0] - 45.0, c[1] - 40.0, c[2] - 18.0], 5.0),
                scaled(rng, [17.0, 42.0, 30.0], 0.8, 1.2),
            )
        });
        Self {
            body,
            back,
            subcutaneous_fat,
            muscle,
            liver,
            liver_tip,
            spleen,
            kidneys,
            kidney_sinus,
            renal_sinus,
            pancreas,
            duodenum,
            splenic_vein,
            stomach,
            bowel,
            colon,
            aorta,
            ivc,
            look,
            surroundings,
        }
    }

    /// The tissue at `body_point` (for the outline, undeformed) and `organ_point` (for
    /// everything inside, after the smooth deformation).
    #[inline]
    pub fn sample(&self, body_point: [f32; 3], organ_point: [f32; 3]) -> Tissue {
        let [x, y, z] = body_point;
        let pelvis = self.surroundings.as_ref().map(|s| &s.pelvis);
        let half_width = self.body[0] * pelvis.map_or(1.0, |p| p.width_factor(z));
        let half_depth = self.body[1] + if y > 0.0 { self.back } else { 0.0 };
        let radial = (x / half_width).powi(2) + (y / half_depth).powi(2);
        let look = &self.look;
        if radial >= 1.0 {
            return self
                .surroundings
                .as_ref()
                .and_then(|s| s.outside(body_point, look))
                .unwrap_or(tissue(-1000.0));
        }
        // Depth below the skin, approximately, in mm.
        let depth = (1.0 - radial.sqrt()) * half_depth;
        if depth < 2.0 {
            return tissue(look.hu(Structure::Muscle) - 15.0);
        }
        if depth < 2.0 + self.subcutaneous_fat {
            return tissue(look.hu(Structure::Fat) - 10.0);
        }
        let wall = 2.0 + self.subcutaneous_fat + self.muscle;
        if depth < wall {
            return tissue(look.hu(Structure::Muscle));
        }
        if let Some(t) = pelvis.and_then(|p| {
            p.musculoskeletal(
                body_point,
                depth - 2.0 - self.subcutaneous_fat,
                self.body,
                look,
            )
        }) {
            return t;
        }
        if let Some(t) = self.bone(body_point, depth - wall) {
            return t;
        }
        self.viscera(organ_point)
    }

    fn bone(&self, [x, y, z]: [f32; 3], inner_depth: f32) -> Option<Tissue> {
        let look = &self.look;
        let (trabecular, cortical) = (look.hu(Structure::Trabecular), look.hu(Structure::Cortical));
        // Vertebral body, canal and posterior elements.
        let spine_y = self.body[1] * 0.45;
        let r2 = x * x + (y - spine_y).powi(2);
        let spine_ended = self
            .surroundings
            .as_ref()
            .is_some_and(|s| s.pelvis.spine_ended(z));
        if r2 < 20.0 * 20.0 && !spine_ended {
            let disc = (z.rem_euclid(32.0)) < 6.0;
            return Some(tissue(if disc {
                look.hu(Structure::Muscle) + 35.0
            } else if r2 > 17.0 * 17.0 {
                cortical
            } else {
                trabecular
            }));
        }
        let canal_y = spine_y + 29.0;
        if x * x + (y - canal_y).powi(2) < 9.0 * 9.0 && !spine_ended {
            return Some(tissue(look.hu(Structure::Fluid)));
        }
        if (x / 24.0).powi(2) + ((y - canal_y - 16.0) / 9.0).powi(2) < 1.0 && !spine_ended {
            return Some(tissue((trabecular + cortical) / 2.0));
        }
        // Ribs: oblique bands in the upper abdomen, just inside the wall, not in front.
        if z > -30.0 && inner_depth < 9.0 && y > -self.body[1] * 0.4 {
            let angle = y.atan2(x);
            if ((angle * 6.0 + z / 14.0).sin()) > 0.82 {
                return Some(tissue(cortical * 0.9));
            }
        }
        if let Some(t) = self
            .surroundings
            .as_ref()
            .and_then(|s| s.cartilage([x, y, z], inner_depth, self.body, look))
        {
            return Some(t);
        }
        // Paraspinal muscles; with surroundings, the erector spinae behind the processes
        // take their place (`Surroundings::after_organs`).
        if self.surroundings.is_none()
            && (x.abs() - 38.0).powi(2) / 400.0 + (y - spine_y - 22.0).powi(2) / 500.0 < 1.0
        {
            return Some(tissue(look.hu(Structure::Muscle)));
        }
        None
    }

    fn viscera(&self, p: [f32; 3]) -> Tissue {
        let look = &self.look;
        let veins = look.hu(Structure::Veins);
        let [x, y, _] = p;
        // Vessels first: they run through everything.
        if (x - self.aorta[0]).powi(2) + (y - self.aorta[1]).powi(2) < self.aorta[2].powi(2) {
            return tissue(look.hu(Structure::Aorta));
        }
        if p[2] > -90.0
            && (x - self.ivc[0]).powi(2) + (y - self.ivc[1]).powi(2) < self.ivc[2].powi(2)
        {
            return tissue(veins - 10.0);
        }
        if self.splenic_vein.contains(p) {
            return tissue(veins);
        }
        if self.pancreas.contains(p) {
            let fat = look.pancreas_fat > 0.0 && lobule(p) < look.pancreas_fat;
            return Tissue {
                hu: look.hu(if fat {
                    Structure::Fat
                } else {
                    Structure::Pancreas
                }),
                label: 4,
            };
        }
        if self.duodenum.contains(p) {
            return tissue(look.hu(Structure::BowelWall) - 8.0);
        }
        let surroundings = self.surroundings.as_ref();
        if let Some(t) = surroundings.and_then(|s| s.before_organs(p, look)) {
            return t;
        }
        let lesion = || surroundings.and_then(|s| s.lesion(p));
        for (k, kidney) in self.kidneys.iter().enumerate() {
            let level = kidney.level(p);
            if level < 1.0 {
                let core = self.renal_sinus.is_some_and(|r| r[k].level(p) < 1.0);
                if core || self.kidney_sinus[k].level(p) < 1.0 {
                    return tissue(look.hu(Structure::Fat) + 30.0);
                }
                let cortex = level > 0.55;
                return Tissue {
                    hu: lesion().unwrap_or_else(|| {
                        look.hu(if cortex {
                            Structure::KidneyCortex
                        } else {
                            Structure::KidneyMedulla
                        })
                    }),
                    label: 2,
                };
            }
        }
        if let Some(t) = surroundings.and_then(|s| s.kidney_fat_plane(p, look)) {
            return t;
        }
        if self.spleen.level(p) < 1.0 {
            return Tissue {
                hu: lesion().unwrap_or(look.hu(Structure::Spleen)),
                label: 3,
            };
        }
        if self
            .liver
            .iter()
            .chain(&self.liver_tip)
            .any(|e| e.level(p) < 1.0)
        {
            // Hepatic veins and portal branches: darker (plain) or brighter (venous) tubes.
            let vein = ((p[0] * 0.09).sin() * (p[2] * 0.07).cos()).abs() < 0.035;
            let liver = look.hu(Structure::Liver);
            let vessel_hu = match look.phase {
                Phase::NonContrast => liver - 18.0,
                Phase::Arterial | Phase::PortalVenous => veins,
            };
            return Tissue {
                hu: lesion().unwrap_or(if vein { vessel_hu } else { liver }),
                label: 1,
            };
        }
        if let Some(t) = surroundings.and_then(|s| s.after_organs(p, self.body[1] * 0.45, look)) {
            return t;
        }
        if let Some(t) = surroundings.and_then(|s| s.ends(p, self.body, look)) {
            return t;
        }
        if self.stomach.level(p) < 1.0 {
            // Gas rises anteriorly.
            let gas = p[1] < self.stomach.center[1] - 0.35 / self.stomach.inv_radii[1];
            return tissue(if gas { -900.0 } else { look.gut_contents });
        }
        if self.colon.iter().any(|c| c.contains(p)) {
            // Stool: gas bubbles in soft contents.
            let bubbles = ((p[0] * 0.45).sin() + (p[1] * 0.5).sin() * (p[2] * 0.4).cos()) > 1.1;
            return tissue(if bubbles {
                -750.0
            } else {
                look.gut_contents + 10.0
            });
        }
        for (loop_shape, gas) in &self.bowel {
            let level = loop_shape.level(p);
            if level < 1.0 {
                return tissue(if *gas && level < 0.45 {
                    -850.0
                } else if level > 0.7 {
                    look.hu(Structure::BowelWall)
                } else {
                    look.gut_contents
                });
            }
        }
        // Mesenteric and retroperitoneal fat.
        tissue(look.hu(Structure::Fat) + 12.0)
    }
}

/// Lobules of about 4 mm: a value uniform in [0, 1) per cell of a slightly warped lattice,
/// so a share `f` of a gland's cells (fat between lobules) is `lobule(p) < f`.
pub(super) fn lobule(p: [f32; 3]) -> f32 {
    const CELL_MM: f32 = 4.0;
    let warp = |a: f32, b: f32| a + 1.2 * (b * 0.37).sin();
    let cell = [
        (warp(p[0], p[1]) / CELL_MM).floor() as i32,
        (warp(p[1], p[2]) / CELL_MM).floor() as i32,
        (warp(p[2], p[0]) / CELL_MM).floor() as i32,
    ];
    // A 32-bit integer hash (xorshift-multiply) of the cell: deterministic, no state.
    let mut h = (cell[0] as u32).wrapping_mul(0x8da6_b343)
        ^ (cell[1] as u32).wrapping_mul(0xd816_3841)
        ^ (cell[2] as u32).wrapping_mul(0xcb1a_b31f);
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^= h >> 16;
    (h >> 8) as f32 / (1u32 << 24) as f32
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::{Anatomy, lobule};
    use crate::phantom::appearance::{Appearance, Phase};

    /// The first point outside `fat` on the way from `from` in kidney `kidney`'s
    /// direction from its centre to `fat`'s centre (0.25 mm steps, level with `from`).
    fn walk_out(kidney: &super::Ellipsoid, fat: &super::Ellipsoid, from: [f32; 3]) -> [f32; 3] {
        let [dx, dy] = [0, 1].map(|a| fat.center[a] - kidney.center[a]);
        let norm = (dx * dx + dy * dy).sqrt();
        let mut p = from;
        while fat.level(p) < 1.0 {
            p = [p[0] + 0.25 * dx / norm, p[1] + 0.25 * dy / norm, p[2]];
        }
        p
    }

    /// Whether walking out of kidney `k`'s sinus, away from the kidney's centre, leaves the
    /// kidney too: the sinus then opens at the hilum instead of lying inside the organ.
    fn sinus_opens(anatomy: &Anatomy, k: usize) -> bool {
        let (kidney, sinus) = (&anatomy.kidneys[k], &anatomy.kidney_sinus[k]);
        kidney.level(walk_out(kidney, sinus, sinus.center)) >= 1.0
    }

    #[test]
    fn full_style_kidneys_open_at_the_hilum_around_sinus_fat() {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let look = Appearance::fixed(Phase::PortalVenous, 10.0);
            let full = Anatomy::random(&mut rng, look.clone(), true);
            let earlier = Anatomy::random(&mut rng, look, false);
            assert!(earlier.renal_sinus.is_none());
            let cores = full
                .renal_sinus
                .expect("the full style draws the renal sinus");
            for (k, core) in cores.iter().enumerate() {
                assert!(sinus_opens(&full, k), "seed {seed}, kidney {k}");
                assert!(!sinus_opens(&earlier, k), "seed {seed}, kidney {k}");
                // 20 mm above the hilum the sinus's fat lies inside the kidney, away from
                // the hilum's opening, and walking from it toward the hilum leaves the fat
                // inside the kidney: parenchyma all round, as on real-abdomen's kidneys.
                let kidney = &full.kidneys[k];
                let p = core.axis_at(20.0);
                assert!(core.level(p) < 1.0 && kidney.level(p) < 1.0, "seed {seed}");
                assert!(full.kidney_sinus[k].level(p) >= 1.0, "seed {seed}");
                let out = walk_out(kidney, core, p);
                assert!(kidney.level(out) < 1.0, "seed {seed}, kidney {k}");
            }
        }
    }

    /// The centre (x, y) of `e`'s section `dz` mm above its centre, from points sampled
    /// 0.5 mm apart.
    fn section_centre(e: &super::Ellipsoid, dz: f32) -> [f32; 2] {
        let [cx, cy, cz] = e.center;
        let (mut sum, mut n) = ([0.0f32; 2], 0.0f32);
        for i in -200..=200 {
            for j in -200..=200 {
                let p = [cx + i as f32 * 0.5, cy + j as f32 * 0.5, cz + dz];
                if e.level(p) < 1.0 {
                    sum = [sum[0] + p[0], sum[1] + p[1]];
                    n += 1.0;
                }
            }
        }
        assert!(n > 0.0, "no section {dz} mm from the centre");
        sum.map(|v| v / n)
    }

    /// How far `e`'s section centre moves (x, y; mm) from 0.6 of its half-height below its
    /// centre to as far above, and that span of height (mm).
    fn drift_over_middle(e: &super::Ellipsoid) -> ([f32; 2], f32) {
        let reach = 0.6 / e.inv_radii[2];
        let [upper, lower] = [reach, -reach].map(|dz| section_centre(e, dz));
        ([upper[0] - lower[0], upper[1] - lower[1]], 2.0 * reach)
    }

    #[test]
    fn full_style_kidneys_lean_upper_poles_toward_the_spine_and_the_back() {
        // Real-abdomen's kidneys: the sections' centres move 28-31 mm toward the midline and
        // 26-32 mm toward the back from the lower pole to the upper (0.3 mm per mm).
        let look = Appearance::fixed(Phase::NonContrast, 10.0);
        for seed in 0..10u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let full = Anatomy::random(&mut rng, look.clone(), true);
            let earlier = Anatomy::random(&mut rng, look.clone(), false);
            for k in 0..2 {
                let kidney = &full.kidneys[k];
                let (drift, span) = drift_over_middle(kidney);
                let medial = -kidney.center[0].signum() * drift[0] / span;
                assert!(
                    (0.1..0.4).contains(&medial),
                    "seed {seed}, kidney {k}: {medial}"
                );
                assert!(
                    (0.1..0.4).contains(&(drift[1] / span)),
                    "seed {seed}, kidney {k}"
                );
                // The earlier style keeps its upright kidneys.
                let (drift, _) = drift_over_middle(&earlier.kidneys[k]);
                assert!(drift.iter().all(|d| d.abs() < 0.5), "seed {seed}");
            }
        }
    }

    /// Lowest and highest z of an ellipsoid (upright, yawed or leaning: a lean shears the
    /// sections sideways and leaves the height alone).
    fn z_extent(e: &super::Ellipsoid) -> [f32; 2] {
        let r = 1.0 / e.inv_radii[2];
        [e.center[2] - r, e.center[2] + r]
    }

    #[test]
    fn full_style_kidneys_lie_behind_the_liver_and_beside_the_spleen() {
        // As on real CT (docs/imaging.md): the liver mostly reaches below the right
        // kidney's hilum (real-abdomen: 45 mm below), the spleen's lower pole lies within
        // the left kidney's height, and the kidneys' upper poles stay under the liver's top.
        let look = Appearance::fixed(Phase::NonContrast, 10.0);
        let mut below = Vec::new();
        for seed in 0..40u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let anatomy = Anatomy::random(&mut rng, look.clone(), true);
            let [left, right] = &anatomy.kidneys;
            let [liver_low, liver_top] = z_extent(&anatomy.liver[0]);
            below.push(liver_low - right.center[2]);
            let [left_low, left_top] = z_extent(left);
            let spleen_low = z_extent(&anatomy.spleen)[0];
            assert!((left_low..left_top).contains(&spleen_low), "seed {seed}");
            for kidney in [left, right] {
                let top = z_extent(kidney)[1];
                assert!(top < liver_top - 20.0, "seed {seed}: {top} vs {liver_top}");
            }
        }
        let mean = below.iter().sum::<f32>() / below.len() as f32;
        let lower = below.iter().filter(|&&d| d < 0.0).count();
        assert!((-40.0..-10.0).contains(&mean), "{below:?}");
        assert!(lower * 4 >= below.len() * 3, "{below:?}");
    }

    #[test]
    fn full_style_livers_reach_down_beside_the_right_kidney() {
        // Real-abdomen's liver reaches 45 mm below the right kidney's centre, lateral to
        // the kidney and in front of it; the full style's lower tip does so too.
        let look = Appearance::fixed(Phase::NonContrast, 10.0);
        for seed in 0..40u64 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let anatomy = Anatomy::random(&mut rng, look.clone(), true);
            let right = anatomy.kidneys[1].center;
            let tip = anatomy
                .liver_tip
                .expect("the full style draws the liver's tip");
            let below = right[2] - z_extent(&tip)[0];
            assert!((25.0..75.0).contains(&below), "seed {seed}: {below}");
            // Lateral to the kidney (x < 0 is the patient's right) and in front of it.
            assert!(tip.center[0] < right[0] - 30.0, "seed {seed}");
            assert!(tip.center[1] < right[1] - 25.0, "seed {seed}");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(Anatomy::random(&mut rng, look, false).liver_tip.is_none());
    }

    #[test]
    fn full_style_kidneys_lie_in_fat() {
        // Real kidneys lie in fat (Gerota's fascia), apart from the psoas and the back
        // muscles: of the 0–4 mm around each kidney where no other organ is, little is
        // muscle or bone (without the perirenal fat, a third), and its first 1 mm holds
        // neither liver nor spleen.
        let look = Appearance::fixed(Phase::NonContrast, 10.0);
        let mut shares = Vec::new();
        for seed in 0..10 {
            let anatomy = Anatomy::random(&mut ChaCha8Rng::seed_from_u64(seed), look.clone(), true);
            for kidney in &anatomy.kidneys {
                let shell = kidney.grown(4.0);
                let near = kidney.grown(1.0);
                let [cx, cy, cz] = kidney.center;
                let (mut fat, mut other, mut organ, mut all_near) = (0, 0, 0, 0);
                for i in -35..=35 {
                    for j in -35..=35 {
                        for k in -35..=35 {
                            let step = |c: f32, n: i32| c + 2.0 * n as f32;
                            let p = [step(cx, i), step(cy, j), step(cz, k)];
                            if kidney.level(p) < 1.0 || shell.level(p) >= 1.0 {
                                continue;
                            }
                            let t = anatomy.sample(p, p);
                            if near.level(p) < 1.0 {
                                all_near += 1;
                                organ += usize::from(t.label == 1 || t.label == 3);
                            }
                            match (t.label, t.hu < -40.0) {
                                (0, true) => fat += 1,
                                (0, false) => other += 1,
                                _ => {}
                            }
                        }
                    }
                }
                shares.push(other as f32 / (fat + other) as f32);
                // Not even the liver or the spleen touches it.
                assert_eq!(organ, 0, "seed {seed}: {organ} of {all_near}");
            }
        }
        let mean = shares.iter().sum::<f32>() / shares.len() as f32;
        assert!(mean < 0.2, "{shares:?}");
        assert!(shares.iter().all(|&s| s < 0.4), "{shares:?}");
    }

    #[test]
    fn lobules_split_a_gland_by_the_share_asked() {
        // Points on a 1 mm grid through a 60 × 30 × 40 mm block: the cells below `f` make
        // up about `f` of it.
        let points: Vec<[f32; 3]> = (0..60)
            .flat_map(|x| (0..30).flat_map(move |y| (0..40).map(move |z| [x, y, z])))
            .map(|[x, y, z]| [x as f32 - 20.0, y as f32 + 35.5, z as f32 - 81.0])
            .collect();
        for share in [0.15f32, 0.4, 0.6] {
            let fat = points.iter().filter(|&&p| lobule(p) < share).count();
            let measured = fat as f32 / points.len() as f32;
            assert!((measured - share).abs() < 0.06, "{share}: {measured}");
        }
        assert!(points.iter().all(|&p| (0.0..1.0).contains(&lobule(p))));
        // Lobules, not voxel noise: most 1 mm neighbours share their cell.
        let same = points
            .windows(2)
            .filter(|w| (lobule(w[0]) - lobule(w[1])).abs() < 1e-6)
            .count();
        assert!(same * 10 > points.len() * 6, "{same} of {}", points.len());
    }
}
