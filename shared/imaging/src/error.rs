//! Why a volume could not be read, checked or processed: one variant per cause, each
//! with a message a user can act on. Messages never quote header text or pixel values
//! beyond what identifies the fault.

/// Errors of the imaging core.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    #[error("the file is empty")]
    Empty,
    #[error("not a NIfTI-1 file: the header size field is {0}, expected 348")]
    NotNifti(i64),
    #[error("NIfTI-2 files are not supported; convert to NIfTI-1")]
    Nifti2Unsupported,
    #[error("the header ends after {0} bytes; a NIfTI-1 header has 348")]
    TruncatedHeader(usize),
    #[error(
        "this is the two-file NIfTI format (.hdr/.img, magic \"ni1\"); use single-file .nii or .nii.gz"
    )]
    TwoFileFormat,
    #[error("the header's magic is not \"n+1\"")]
    BadMagic,
    #[error("the gzip stream is corrupt: {0}")]
    CorruptGzip(String),
    #[error("the voxel data ends after {got} of {expected} bytes (truncated file)")]
    TruncatedData { expected: u64, got: u64 },
    #[error(
        "datatype code {0} is not supported (uint8, int8, int16, uint16, int32, float32, float64 are)"
    )]
    UnsupportedDatatype(i16),
    #[error("bitpix is {bitpix} but datatype code {datatype} needs {expected}")]
    BitpixMismatch {
        datatype: i16,
        bitpix: i16,
        expected: i16,
    },
    #[error("the volume has {0} dimensions; a CT volume has 3")]
    Dimensionality(u16),
    #[error("the volume is 4D with {0} time points; give one 3D volume")]
    FourDimensional(u16),
    #[error("dimension {axis} is {value}; every dimension must be at least 1")]
    InvalidDimension { axis: usize, value: i64 },
    #[error("the volume needs {bytes} bytes, over the limit of {limit}")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("the volume has {voxels} voxels, over the limit of {limit}")]
    TooManyVoxels { voxels: u64, limit: u64 },
    #[error("voxel size along axis {axis} is {value} mm; it must be positive and finite")]
    InvalidSpacing { axis: usize, value: f32 },
    #[error("vox_offset {0} is invalid: it must be a whole number of at least 352")]
    InvalidVoxOffset(f32),
    #[error("the header extensions take {bytes} bytes, over the limit of {limit}")]
    ExtensionsTooLarge { bytes: u64, limit: u64 },
    #[error("the voxel-to-world affine is not finite or not invertible")]
    InvalidAffine,
    #[error("{count} voxels are NaN or infinite")]
    NonFiniteVoxels { count: usize },
    #[error("label value {value} is not a class (0 background … 4 pancreas)")]
    InvalidLabel { value: f64 },
    #[error("the label map's grid ({label}) differs from its image's ({image})")]
    GridMismatch { image: String, label: String },
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("cannot write the volume: {0}")]
    Write(String),
}
