//! Prepared datasets: what the preprocessing service writes and training reads.
//!
//! - [`config`]: the preprocessing recorded with every dataset and model.
//! - [`labels`]: label conventions of raw datasets (nnU-Net's `dataset.json`).
//! - [`manifest`]: the dataset's manifest, per-case records and fingerprint.
//! - [`shard`]: the compact slice-shard format, readable one slice at a time.
//! - [`split`]: the seeded patient-level split.
//! - [`model_input`]: a CT volume to model input slices and the model's output back.
//! - [`prepare`]: one case from NIfTI bytes to a shard — the code path inference uses too.

pub mod config;
mod digest;
pub mod labels;
pub mod manifest;
pub mod model_input;
pub mod prepare;
pub mod proto;
pub mod shard;
pub mod split;

pub use digest::sha256_hex;

/// Version of the prepared-dataset format; part of every dataset id.
pub const FORMAT_VERSION: u32 = 1;
