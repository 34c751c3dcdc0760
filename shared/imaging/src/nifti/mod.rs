//! NIfTI-1 volumes: validated reading (`.nii` and `.nii.gz`, every common dtype, any
//! orientation) and writing with exactly the source geometry.
//!
//! The `nifti` crate parses headers and computes affines. Voxel data is read here rather
//! than through the crate's readers, because those allocate whatever the header declares:
//! every size is checked against [`ReadLimits`] before a byte is allocated.

mod dtype;
mod header;
mod read;
mod write;

pub use dtype::Dtype;
pub use read::{
    DEFAULT_MAX_VOXELS, ReadLimits, VolumeInfo, read_ct, read_geometry, read_info, read_labels,
    read_labels_on, read_labels_remapped,
};
pub use write::{write_ct_u8, write_f32, write_i16, write_labels};
