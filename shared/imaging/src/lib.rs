//! The CT imaging core of abdoseg, shared by the preprocessing, inference and metrics
//! services. It knows nothing of gRPC or async runtimes.
//!
//! - [`nifti`]: validated reading and exact-geometry writing of NIfTI-1 volumes.
//! - [`orientation`]: any voxel order to the canonical LPS grid (axial slices, radiological
//!   left/right) and back.
//! - [`intensity`]: HU windowing and the study's schemes (`none`, `he`, `clahe`) plus
//!   nnU-Net's `zscore`.
//! - [`slices`], [`resize`] and [`resample`]: axial slices at the model's input size (or
//!   its physical pixel size and field of view) and back.
//! - [`phantom`]: seeded synthetic abdomen CTs with labels.

mod error;
pub mod intensity;
pub mod labels;
pub mod nifti;
pub mod orientation;
pub mod phantom;
pub mod resample;
pub mod resize;
pub mod slices;
mod volume;

pub use error::ImagingError;
pub use volume::{Geometry, Volume};

/// The classes of the AbdomenCT-1K convention, by label value.
pub const CLASS_NAMES: [&str; 5] = ["background", "liver", "kidney", "spleen", "pancreas"];

/// Number of classes, background included.
pub const NUM_CLASSES: usize = CLASS_NAMES.len();
