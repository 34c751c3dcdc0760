//! Orientation: whatever the file's voxel order (RAS, LPS, LAS, sagittal stacks …),
//! abdoseg works on one canonical grid, LPS: array axes `(z, y, x)` with `+x` toward the
//! patient's left, `+y` posterior and `+z` superior. An axial slice `z` is then an image
//! whose rows run anterior→posterior and whose columns run from the patient's right to
//! left: the radiological view, the same for every file. [`Reorientation`] goes there and
//! back exactly (axis permutations and flips only, no resampling).

use ndarray::{Array3, ArrayView3, Axis};

/// Direction (in RAS world terms) each canonical axis points: x → L, y → P, z → S.
const CANONICAL_SIGN: [f64; 3] = [-1.0, -1.0, 1.0];

/// How the file's voxel axes map onto the canonical grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reorientation {
    /// For file axis `f` (0 = i, 1 = j, 2 = k): the world axis it follows (0 = x, 1 = y, 2 = z).
    world_axis: [usize; 3],
    /// For file axis `f`: whether it runs against the canonical direction.
    flipped: [bool; 3],
}

/// For each file axis, the world axis it follows most closely and the sign (+1 toward
/// R, A, S). Greedy on the largest direction cosine, as nibabel's `io_orientation`.
fn closest_axes(affine: &[[f64; 4]; 4]) -> ([usize; 3], [f64; 3]) {
    let mut cosines = [[0.0f64; 3]; 3]; // [file][world]
    for (f, column) in cosines.iter_mut().enumerate() {
        let norm = (0..3).map(|w| affine[w][f].powi(2)).sum::<f64>().sqrt();
        for (w, value) in column.iter_mut().enumerate() {
            *value = if norm > 0.0 { affine[w][f] / norm } else { 0.0 };
        }
    }
    let mut world_axis = [usize::MAX; 3];
    let mut sign = [1.0; 3];
    let mut world_used = [false; 3];
    for _ in 0..3 {
        let mut best = (0.0, 0, 0);
        for (f, column) in cosines.iter().enumerate() {
            if world_axis[f] != usize::MAX {
                continue;
            }
            for (w, value) in column.iter().enumerate() {
                if !world_used[w] && (value.abs() > best.0 || best.0 == 0.0) {
                    best = (value.abs(), f, w);
                }
            }
        }
        let (_, f, w) = best;
        world_axis[f] = w;
        world_used[w] = true;
        sign[f] = if cosines[f][w] < 0.0 { -1.0 } else { 1.0 };
    }
    (world_axis, sign)
}

/// The orientation code of the file's axes, e.g. "RAS", "LPS" or "LAS".
pub fn axis_codes(affine: &[[f64; 4]; 4]) -> String {
    let (world_axis, sign) = closest_axes(affine);
    (0..3)
        .map(|f| {
            let (positive, negative) = [('R', 'L'), ('A', 'P'), ('S', 'I')][world_axis[f]];
            if sign[f] > 0.0 { positive } else { negative }
        })
        .collect()
}

impl Reorientation {
    /// The mapping for a file with this voxel-to-world affine.
    pub fn from_affine(affine: &[[f64; 4]; 4]) -> Self {
        let (world_axis, sign) = closest_axes(affine);
        let flipped = [0, 1, 2].map(|f| sign[f] != CANONICAL_SIGN[world_axis[f]]);
        Self {
            world_axis,
            flipped,
        }
    }

    /// Whether the file is already canonical (LPS order): nothing to do.
    pub fn is_identity(&self) -> bool {
        self.world_axis == [0, 1, 2] && self.flipped == [false; 3]
    }

    /// Array axis of file axis `f` in `(k, j, i)` storage, and of world axis `w` in the
    /// canonical `(z, y, x)` storage: both reverse the axis number.
    fn array_axis(axis: usize) -> usize {
        2 - axis
    }

    /// The file's `(k, j, i)` voxels on the canonical `(z, y, x)` grid.
    pub fn to_canonical<T: Clone>(&self, data: ArrayView3<'_, T>) -> Array3<T> {
        let mut view = data;
        for f in 0..3 {
            if self.flipped[f] {
                view.invert_axis(Axis(Self::array_axis(f)));
            }
        }
        // Canonical array axis c holds world axis 2 - c, fed by the file axis that follows it.
        let order = [0, 1, 2].map(|c| {
            let world = Self::array_axis(c);
            let f = (0..3)
                .find(|&f| self.world_axis[f] == world)
                .unwrap_or(world);
            Self::array_axis(f)
        });
        view.permuted_axes(order).as_standard_layout().into_owned()
    }

    /// Canonical `(z, y, x)` voxels back in the file's `(k, j, i)` order.
    pub fn from_canonical<T: Clone>(&self, data: ArrayView3<'_, T>) -> Array3<T> {
        let order = [0, 1, 2].map(|a| {
            let f = Self::array_axis(a);
            Self::array_axis(self.world_axis[f])
        });
        let mut view = data.permuted_axes(order);
        for f in 0..3 {
            if self.flipped[f] {
                view.invert_axis(Axis(Self::array_axis(f)));
            }
        }
        view.as_standard_layout().into_owned()
    }

    /// The file's spacing `[i, j, k]` as canonical `[x, y, z]`.
    pub fn canonical_spacing(&self, spacing: [f32; 3]) -> [f32; 3] {
        let mut out = [0.0; 3];
        for f in 0..3 {
            out[self.world_axis[f]] = spacing[f];
        }
        out
    }

    /// The file's shape `[i, j, k]` as canonical `[x, y, z]`: `z` counts the axial
    /// slices, each `y` rows by `x` columns.
    pub fn canonical_shape(&self, shape: [usize; 3]) -> [usize; 3] {
        let mut out = [0; 3];
        for f in 0..3 {
            out[self.world_axis[f]] = shape[f];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affine(columns: [[f64; 3]; 3]) -> [[f64; 4]; 4] {
        let mut a = [[0.0; 4]; 4];
        for (f, column) in columns.iter().enumerate() {
            for w in 0..3 {
                a[w][f] = column[w];
            }
        }
        a[3][3] = 1.0;
        a
    }

    const RAS: [[f64; 3]; 3] = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    const LPS: [[f64; 3]; 3] = [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]];
    const LAS: [[f64; 3]; 3] = [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    // A sagittal stack: i runs A→P, j runs I→S, k runs R→L.
    const PSL: [[f64; 3]; 3] = [[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]];

    #[test]
    fn codes_name_the_axes() {
        assert_eq!(axis_codes(&affine(RAS)), "RAS");
        assert_eq!(axis_codes(&affine(LPS)), "LPS");
        assert_eq!(axis_codes(&affine(LAS)), "LAS");
        assert_eq!(axis_codes(&affine(PSL)), "PSL");
        // Oblique but closest to LPS.
        let oblique = [[-0.98, 0.17, 0.0], [-0.17, -0.98, 0.0], [0.0, 0.0, 2.5]];
        assert_eq!(axis_codes(&affine(oblique)), "LPS");
    }

    /// A volume whose every voxel holds its world position (x, y, z) in mm.
    fn world_volume(columns: [[f64; 3]; 3], shape: (usize, usize, usize)) -> Array3<[i32; 3]> {
        let a = affine(columns);
        Array3::from_shape_fn(shape, |(k, j, i)| {
            let ijk = [i as f64, j as f64, k as f64];
            [0, 1, 2].map(|w| (0..3).map(|f| a[w][f] * ijk[f]).sum::<f64>() as i32)
        })
    }

    #[test]
    fn every_orientation_lands_on_the_same_lps_grid() {
        for columns in [RAS, LPS, LAS, PSL] {
            let data = world_volume(columns, (4, 3, 2));
            let r = Reorientation::from_affine(&affine(columns));
            let c = r.to_canonical(data.view());
            // Along canonical x, world x decreases (toward the left is -R); along y, world
            // y decreases (posterior); along z, world z increases (superior).
            let (nz, ny, nx) = c.dim();
            assert!(nx > 1 && ny > 1 && nz > 1);
            assert!(c[[0, 0, 1]][0] < c[[0, 0, 0]][0], "{columns:?}");
            assert!(c[[0, 1, 0]][1] < c[[0, 0, 0]][1], "{columns:?}");
            assert!(c[[1, 0, 0]][2] > c[[0, 0, 0]][2], "{columns:?}");
            // The round trip is exact.
            assert_eq!(r.from_canonical(c.view()), data, "{columns:?}");
        }
        assert!(Reorientation::from_affine(&affine(LPS)).is_identity());
        assert!(!Reorientation::from_affine(&affine(RAS)).is_identity());
    }

    #[test]
    fn spacing_follows_the_axes() {
        let r = Reorientation::from_affine(&affine(PSL));
        // File i follows y, j follows z, k follows x.
        assert_eq!(r.canonical_spacing([0.7, 2.5, 0.8]), [0.8, 0.7, 2.5]);
        assert_eq!(r.canonical_shape([512, 40, 300]), [300, 512, 40]);
        // The same as the canonical array the voxels are put on, (z, y, x).
        let data = Array3::<u8>::zeros((300, 40, 512));
        assert_eq!(r.to_canonical(data.view()).dim(), (40, 512, 300));
    }
}
