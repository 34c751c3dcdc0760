//! Axial slices: a volume on the canonical LPS grid, slice by slice, and back to the
//! file's voxel order with its exact geometry.

use ndarray::{Array2, Array3, ArrayView2, Axis};
use rayon::prelude::*;

use crate::{
    ImagingError, Volume,
    intensity::{Intensity, Slice},
    orientation::Reorientation,
};

/// A volume on the canonical grid: array axes `(z, y, x)`, slices `z` axial.
#[derive(Debug, Clone)]
pub struct Canonical<T> {
    pub data: Array3<T>,
    /// Spacing in mm along canonical `[x, y, z]`.
    pub spacing: [f32; 3],
    pub reorientation: Reorientation,
}

impl<T: Clone> Canonical<T> {
    /// Puts a volume on the canonical grid.
    pub fn of(volume: &Volume<T>) -> Self {
        let reorientation = Reorientation::from_affine(&volume.geometry.affine());
        Self {
            data: reorientation.to_canonical(volume.data.view()),
            spacing: reorientation.canonical_spacing(volume.geometry.spacing()),
            reorientation,
        }
    }

    /// Number of axial slices.
    pub fn slice_count(&self) -> usize {
        self.data.len_of(Axis(0))
    }

    /// Axial slice `z`: rows anterior→posterior, columns patient's right→left.
    pub fn axial(&self, z: usize) -> ArrayView2<'_, T> {
        self.data.index_axis(Axis(0), z)
    }

    /// Canonical voxels back in the file's order, ready to write with its geometry.
    pub fn to_file_order<U: Clone>(&self, data: &Array3<U>) -> Array3<U> {
        self.reorientation.from_canonical(data.view())
    }
}

/// Stacks equally sized slices into a canonical `(z, y, x)` array.
pub fn stack<T: Clone + Default>(slices: Vec<Array2<T>>) -> Result<Array3<T>, ImagingError> {
    let Some(first) = slices.first() else {
        return Err(ImagingError::InvalidParameter("no slices to stack".into()));
    };
    let (h, w) = first.dim();
    let mut out = Array3::<T>::default((slices.len(), h, w));
    for (z, slice) in slices.into_iter().enumerate() {
        if slice.dim() != (h, w) {
            return Err(ImagingError::InvalidParameter(
                "slices of different sizes".into(),
            ));
        }
        out.index_axis_mut(Axis(0), z).assign(&slice);
    }
    Ok(out)
}

/// The whole volume preprocessed slice by slice on the canonical grid, written back in
/// the file's order on its geometry: `Gray` for `none`/`he`/`clahe`, `Float` for `zscore`.
pub enum Preprocessed {
    Gray(Volume<u8>),
    Float(Volume<f32>),
}

impl std::fmt::Debug for Preprocessed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gray(v) => write!(f, "Gray({})", v.geometry.describe()),
            Self::Float(v) => write!(f, "Float({})", v.geometry.describe()),
        }
    }
}

/// Preprocesses every axial slice of a CT volume (HU).
pub fn preprocess_volume(
    volume: &Volume<f32>,
    intensity: &Intensity,
) -> Result<Preprocessed, ImagingError> {
    intensity.validate()?;
    let canonical = Canonical::of(volume);
    let slices: Vec<Slice> = (0..canonical.slice_count())
        .into_par_iter()
        .map(|z| intensity.apply(canonical.axial(z)))
        .collect();
    // One scheme, one kind of slice: gray for the study's schemes, floats for zscore.
    let mut gray = Vec::new();
    let mut floats = Vec::new();
    for slice in slices {
        match slice {
            Slice::Gray(g) => gray.push(g),
            Slice::Float(f) => floats.push(f),
        }
    }
    if floats.is_empty() {
        let data = canonical.to_file_order(&stack(gray)?);
        return Ok(Preprocessed::Gray(volume.with_data(data)?));
    }
    let data = canonical.to_file_order(&stack(floats)?);
    Ok(Preprocessed::Float(volume.with_data(data)?))
}
