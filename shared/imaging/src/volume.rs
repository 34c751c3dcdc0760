//! A volume and its geometry. Voxels are stored in the file's own order, as an array of
//! shape `(k, j, i)` in C order (the NIfTI `i` axis fastest), so writing it back keeps the
//! source layout byte for byte.

use ndarray::Array3;
use nifti::NiftiHeader;

use crate::ImagingError;

/// Where a volume sits in space: the source header (text fields cleared), from which
/// outputs are written with the identical affine, pixdim and qform/sform codes.
#[derive(Debug, Clone)]
pub struct Geometry {
    header: NiftiHeader,
    affine: [[f64; 4]; 4],
}

impl Geometry {
    /// Builds a geometry from a validated header; the affine must be finite and invertible.
    pub(crate) fn from_header(mut header: NiftiHeader) -> Result<Self, ImagingError> {
        // Patient data may hide in free-text fields: never carry them along.
        header.descrip = Vec::new();
        header.aux_file = [0; 24];
        header.intent_name = [0; 16];
        header.db_name = [0; 18];
        header.data_type = [0; 10];
        let m = header.affine::<f64>();
        let mut affine = [[0.0; 4]; 4];
        for (r, row) in affine.iter_mut().enumerate() {
            for (c, value) in row.iter_mut().enumerate() {
                *value = m[(r, c)];
            }
        }
        let geometry = Self { header, affine };
        let det = geometry.rotation_zooms_determinant();
        if !affine.iter().flatten().all(|v| v.is_finite()) || det.abs() < 1e-9 {
            return Err(ImagingError::InvalidAffine);
        }
        Ok(geometry)
    }

    /// A new grid of `shape` voxels (`[i, j, k]`) placed by a voxel-to-world affine (RAS mm),
    /// written with both sform and qform (code 1, scanner) and millimetre units.
    pub fn new(shape: [usize; 3], affine: [[f64; 4]; 4]) -> Result<Self, ImagingError> {
        let mut header = NiftiHeader {
            dim: [3, 1, 1, 1, 1, 1, 1, 1],
            xyzt_units: 2, // millimetres
            magic: *nifti::header::MAGIC_CODE_NIP1,
            ..NiftiHeader::default()
        };
        for (d, &n) in shape.iter().enumerate() {
            header.dim[d + 1] = u16::try_from(n)
                .ok()
                .filter(|&n| n >= 1 && n <= i16::MAX as u16)
                .ok_or_else(|| ImagingError::InvalidParameter(format!("dimension {n}")))?;
        }
        let m = nifti::affine::Affine4::from_fn(|r, c| affine[r][c] as f32);
        header.set_sform(&m, nifti::XForm::ScannerAnat);
        header.set_qform(&m, nifti::XForm::ScannerAnat);
        Self::from_header(header)
    }

    /// Voxels along the file's `i`, `j`, `k` axes.
    pub fn shape(&self) -> [usize; 3] {
        [1, 2, 3].map(|d| usize::from(self.header.dim[d]))
    }

    /// Voxel size in mm along `i`, `j`, `k`.
    pub fn spacing(&self) -> [f32; 3] {
        [1, 2, 3].map(|d| self.header.pixdim[d])
    }

    /// The voxel-to-world (RAS mm) affine, as NIfTI readers such as nibabel compute it.
    pub fn affine(&self) -> [[f64; 4]; 4] {
        self.affine
    }

    /// The volume of one voxel in mL.
    pub fn voxel_volume_ml(&self) -> f64 {
        self.spacing()
            .iter()
            .map(|&s| f64::from(s))
            .product::<f64>()
            / 1000.0
    }

    pub(crate) fn header(&self) -> &NiftiHeader {
        &self.header
    }

    fn rotation_zooms_determinant(&self) -> f64 {
        let a = &self.affine;
        a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
            - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
            + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
    }

    /// Whether `other` describes the same grid: shape and affine (within 1e-3 mm).
    pub fn same_grid(&self, other: &Geometry) -> bool {
        self.shape() == other.shape()
            && self
                .affine
                .iter()
                .flatten()
                .zip(other.affine.iter().flatten())
                .all(|(a, b)| (a - b).abs() <= 1e-3)
    }

    /// A short description of the grid for error messages (no patient data).
    pub fn describe(&self) -> String {
        let [i, j, k] = self.shape();
        let [si, sj, sk] = self.spacing();
        format!(
            "{i}×{j}×{k} at {si:.3}×{sj:.3}×{sk:.3} mm, {}",
            crate::orientation::axis_codes(&self.affine)
        )
    }
}

/// A volume: voxels of type `T` in the file's order, shape `(k, j, i)`, and its geometry.
#[derive(Debug, Clone)]
pub struct Volume<T> {
    pub geometry: Geometry,
    pub data: Array3<T>,
}

impl<T> Volume<T> {
    /// A volume on the same grid as `self` with other voxels, e.g. a label map.
    pub fn with_data<U>(&self, data: Array3<U>) -> Result<Volume<U>, ImagingError> {
        let [i, j, k] = self.geometry.shape();
        if data.dim() != (k, j, i) {
            return Err(ImagingError::InvalidParameter(format!(
                "data of shape {:?} does not fit a {i}×{j}×{k} grid",
                data.dim()
            )));
        }
        Ok(Volume {
            geometry: self.geometry.clone(),
            data,
        })
    }
}
