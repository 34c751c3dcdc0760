//! Synthetic abdomen phantoms: seeded 3D CT volumes in HU with label maps, hard enough
//! that intensity thresholds fail (the pancreas sits among neighbours of nearly its HU).
//!
//! Per case: body size, organ sizes and positions, rotation, a smooth deformation, number
//! of slices, slice thickness, in-plane resolution and voxel order (LPS, RAS or LAS) vary,
//! and so does the look ([`appearance`]: contrast phase, every structure's HU, noise,
//! blur, slice averaging, a smooth offset field). Per "center": the noise level, intensity
//! offset and scale.

mod anatomy;
pub mod appearance;
mod case;
pub mod difficulty;
mod pelvis;
mod scanner;
mod surroundings;
mod template;

pub use anatomy::{Anatomy, Tissue};
pub use case::{Center, Grid, PhantomCase, Style, generate_case};
pub use template::{Template, template_variant};

/// The AbdomenCT-1K file names of case `index` (1-based): image and label.
pub fn case_file_names(index: usize) -> (String, String) {
    (
        format!("Case_{index:05}_0000.nii.gz"),
        format!("Case_{index:05}.nii.gz"),
    )
}
