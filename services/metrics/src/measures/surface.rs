//! Surface metrics between two binary masks of one class, in millimetres.
//!
//! The definitions are MONAI's (`compute_hausdorff_distance(percentile=95)` and
//! `compute_surface_dice` without sub-voxels), which MedPy's surface distances share:
//! - a mask's *surface* is its voxels with at least one of the 6 face neighbours outside
//!   the mask (outside the volume counts as outside);
//! - the directed distances from A to B are, for every surface voxel of A, the Euclidean
//!   distance (voxel spacing applied) to the nearest surface voxel of B;
//! - HD95 is the larger of the two directed 95th percentiles (linear interpolation);
//! - NSD at tolerance τ is the share of both surfaces lying within τ of the other one.

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use ndarray::{ArrayView3, Axis};
use rayon::prelude::*;

/// A voxel index along the array axes `(z, y, x)`.
type Index = [u32; 3];

/// Directed surface distances in mm, both ways.
#[derive(Debug, Clone, PartialEq)]
pub struct SurfaceDistances {
    pub predicted_to_truth: Vec<f64>,
    pub truth_to_predicted: Vec<f64>,
}

/// What the surfaces of one class give: `None` where the metric is undefined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurfaceMetrics {
    /// Undefined unless both masks are non-empty (MONAI returns inf or NaN there).
    pub hd95_mm: Option<f64>,
    /// Undefined when both masks are empty; 0 when exactly one is.
    pub nsd: Option<f64>,
}

impl SurfaceDistances {
    /// Surface distances of class `class` between two label maps on one grid, with
    /// `spacing` in mm along the array axes. `None` when the class is in neither map.
    pub fn between(
        predicted: ArrayView3<'_, u8>,
        truth: ArrayView3<'_, u8>,
        class: u8,
        spacing: [f64; 3],
    ) -> Option<Self> {
        Self::between_unless(predicted, truth, class, spacing, &|| false).flatten()
    }

    /// As [`between`](Self::between), giving up (`None`) as soon as `cancelled` says so.
    pub fn between_unless(
        predicted: ArrayView3<'_, u8>,
        truth: ArrayView3<'_, u8>,
        class: u8,
        spacing: [f64; 3],
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Option<Option<Self>> {
        let predicted_surface = surface(predicted, class);
        let truth_surface = surface(truth, class);
        if predicted_surface.is_empty() && truth_surface.is_empty() {
            return Some(None);
        }
        if cancelled() {
            return None;
        }
        Some(Some(Self {
            predicted_to_truth: directed(&predicted_surface, &truth_surface, spacing, cancelled)?,
            truth_to_predicted: directed(&truth_surface, &predicted_surface, spacing, cancelled)?,
        }))
    }

    /// HD95 and NSD at `tolerance_mm`.
    pub fn metrics(&self, tolerance_mm: f64) -> SurfaceMetrics {
        let (a, b) = (&self.predicted_to_truth, &self.truth_to_predicted);
        let hd95_mm = match (percentile(a, 95.0), percentile(b, 95.0)) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Some(x.max(y)),
            _ => None,
        };
        let within = a.iter().chain(b).filter(|&&d| d <= tolerance_mm).count();
        let nsd = Some(within as f64 / (a.len() + b.len()) as f64);
        SurfaceMetrics { hd95_mm, nsd }
    }

    /// The metrics where the class is in neither map.
    pub fn both_empty() -> SurfaceMetrics {
        SurfaceMetrics {
            hd95_mm: None,
            nsd: None,
        }
    }
}

/// The surface voxels of `class`: those with a face neighbour of another class or
/// outside the volume.
pub fn surface(labels: ArrayView3<'_, u8>, class: u8) -> Vec<Index> {
    let (depth, height, width) = labels.dim();
    labels
        .axis_iter(Axis(0))
        .into_par_iter()
        .enumerate()
        .flat_map_iter(|(z, plane)| {
            let mut found = Vec::new();
            for ((y, x), &label) in plane.indexed_iter() {
                if label == class && on_surface(labels, (depth, height, width), [z, y, x], class) {
                    found.push([z as u32, y as u32, x as u32]);
                }
            }
            found
        })
        .collect()
}

fn millimetres(index: &Index, spacing: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|a| f64::from(index[a]) * spacing[a])
}

/// The exact distance between two voxels, from their index difference (as SciPy's
/// distance transform computes it).
fn distance(a: &Index, b: &Index, spacing: [f64; 3]) -> f64 {
    (0..3)
        .map(|axis| {
            let d = (f64::from(a[axis]) - f64::from(b[axis])) * spacing[axis];
            d * d
        })
        .sum::<f64>()
        .sqrt()
}

/// For every voxel of `from`, the distance to the nearest voxel of `to`; infinite when
/// `to` is empty. `None` once `cancelled` says so (asked every 4,096 voxels).
fn directed(
    from: &[Index],
    to: &[Index],
    spacing: [f64; 3],
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Option<Vec<f64>> {
    if to.is_empty() {
        return Some(vec![f64::INFINITY; from.len()]);
    }
    let points: Vec<[f64; 3]> = to.iter().map(|i| millimetres(i, spacing)).collect();
    let tree: ImmutableKdTree<f64, 3> = ImmutableKdTree::new_from_slice(&points);
    let chunks: Option<Vec<Vec<f64>>> = from
        .par_chunks(4096)
        .map(|chunk| {
            if cancelled() {
                return None;
            }
            Some(
                chunk
                    .iter()
                    .map(|voxel| {
                        let nearest =
                            tree.nearest_one::<SquaredEuclidean>(&millimetres(voxel, spacing));
                        distance(voxel, &to[nearest.item as usize], spacing)
                    })
                    .collect(),
            )
        })
        .collect();
    Some(chunks?.concat())
}

/// How many surface voxels `class` has: what [`surface`] would return, counted
/// without being held, to size the memory surface metrics need.
pub fn surface_count(labels: ArrayView3<'_, u8>, class: u8) -> usize {
    let (depth, height, width) = labels.dim();
    labels
        .axis_iter(Axis(0))
        .into_par_iter()
        .enumerate()
        .map(|(z, plane)| {
            plane
                .indexed_iter()
                .filter(|&((y, x), &label)| {
                    label == class && on_surface(labels, (depth, height, width), [z, y, x], class)
                })
                .count()
        })
        .sum()
}

/// Whether the voxel at `at` (of `class`) has a face neighbour of another class or
/// outside the volume.
fn on_surface(
    labels: ArrayView3<'_, u8>,
    (depth, height, width): (usize, usize, usize),
    [z, y, x]: [usize; 3],
    class: u8,
) -> bool {
    let outside = |dz: isize, dy: isize, dx: isize| match (
        z.checked_add_signed(dz),
        y.checked_add_signed(dy),
        x.checked_add_signed(dx),
    ) {
        (Some(nz), Some(ny), Some(nx)) if nz < depth && ny < height && nx < width => {
            labels[(nz, ny, nx)] != class
        }
        _ => true,
    };
    outside(-1, 0, 0)
        || outside(1, 0, 0)
        || outside(0, -1, 0)
        || outside(0, 1, 0)
        || outside(0, 0, -1)
        || outside(0, 0, 1)
}

/// The `q`th percentile with linear interpolation between order statistics (NumPy's
/// default); `None` for no values.
pub fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let position = q / 100.0 * (sorted.len() - 1) as f64;
    let low = position.floor() as usize;
    let high = (low + 1).min(sorted.len() - 1);
    let fraction = position - low as f64;
    let (a, b) = (sorted[low], sorted[high]);
    if a == b {
        return Some(a);
    }
    Some(a + (b - a) * fraction)
}

#[cfg(test)]
mod cancellation_tests {
    use ndarray::Array3;

    use super::*;

    #[test]
    fn cancelled_work_gives_up() {
        let mut a = Array3::<u8>::zeros((4, 4, 4));
        a[(1, 1, 1)] = 1;
        let b = a.clone();
        let done = SurfaceDistances::between_unless(a.view(), b.view(), 1, [1.0; 3], &|| false);
        assert!(matches!(done, Some(Some(_))));
        let given_up = SurfaceDistances::between_unless(a.view(), b.view(), 1, [1.0; 3], &|| true);
        assert!(given_up.is_none());
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array3;

    use super::*;

    fn cuboid(
        shape: (usize, usize, usize),
        from: [usize; 3],
        to: [usize; 3],
        class: u8,
    ) -> Array3<u8> {
        let mut labels = Array3::zeros(shape);
        for z in from[0]..to[0] {
            for y in from[1]..to[1] {
                for x in from[2]..to[2] {
                    labels[(z, y, x)] = class;
                }
            }
        }
        labels
    }

    #[test]
    fn a_solid_cube_has_only_its_shell_as_surface() {
        let labels = cuboid((7, 7, 7), [1, 1, 1], [6, 6, 6], 2);
        // 5³ voxels minus the 3³ interior.
        assert_eq!(surface(labels.view(), 2).len(), 125 - 27);
        assert_eq!(surface_count(labels.view(), 2), 125 - 27);
        // A mask touching the volume's edge has its edge voxels on the surface.
        let full = Array3::from_elem((3, 3, 3), 1u8);
        assert_eq!(surface(full.view(), 1).len(), 26);
    }

    #[test]
    fn a_shift_along_an_anisotropic_axis_is_measured_in_mm() {
        let truth = cuboid((12, 12, 12), [2, 2, 2], [8, 8, 8], 1);
        let predicted = cuboid((12, 12, 12), [4, 2, 2], [10, 8, 8], 1);
        let spacing = [2.5, 0.8, 0.8];
        let d = SurfaceDistances::between(predicted.view(), truth.view(), 1, spacing).unwrap();
        let worst = d.predicted_to_truth.iter().cloned().fold(0.0, f64::max);
        assert!((worst - 5.0).abs() < 1e-12, "{worst}");
        let m = d.metrics(5.0);
        assert!((m.hd95_mm.unwrap() - 5.0).abs() < 1e-12);
        assert_eq!(m.nsd, Some(1.0));
        let tight = d.metrics(2.4);
        assert!(tight.nsd.unwrap() < 1.0);
    }

    #[test]
    fn identical_masks_are_at_distance_zero() {
        let labels = cuboid((9, 9, 9), [1, 2, 3], [7, 8, 6], 4);
        let d =
            SurfaceDistances::between(labels.view(), labels.view(), 4, [1.0, 1.0, 3.0]).unwrap();
        let m = d.metrics(0.0);
        assert_eq!(m.hd95_mm, Some(0.0));
        assert_eq!(m.nsd, Some(1.0));
    }

    #[test]
    fn empty_masks_follow_the_documented_conventions() {
        let empty = Array3::<u8>::zeros((5, 5, 5));
        let some = cuboid((5, 5, 5), [1, 1, 1], [3, 3, 3], 3);
        assert!(SurfaceDistances::between(empty.view(), empty.view(), 3, [1.0; 3]).is_none());
        let missed = SurfaceDistances::between(empty.view(), some.view(), 3, [1.0; 3]).unwrap();
        let m = missed.metrics(3.0);
        assert_eq!(m.hd95_mm, None);
        assert_eq!(m.nsd, Some(0.0));
    }

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4, 10], 95) == 8.8
        assert!((percentile(&[10.0, 1.0, 3.0, 2.0, 4.0], 95.0).unwrap() - 8.8).abs() < 1e-12);
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 95.0), None);
    }
}
