//! The study's two 2D U-Nets, in burn, with softmax over the five AbdomenCT-1K classes.
//!
//! - [`UNetConfig`] builds either variant at any depth from 4 to 8.
//! - [`device`] picks the compute device at run time: CPU (`flex`) or CUDA, probed first.
//!
//! Pure burn: no gRPC, no async runtime.

pub mod context;
pub mod device;
pub mod train;
mod unet;
pub mod weights;

pub use context::SliceContext;
pub use unet::{Architecture, Normalization, UNet, UNetConfig};

/// Classes predicted: background, liver, kidney, spleen, pancreas.
pub const NUM_CLASSES: usize = 5;
