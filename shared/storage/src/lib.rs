//! Object storage for abdoseg: one [`Storage`] handle over `object_store`, opened from a
//! `file://`, `s3://` or `memory://` URL, and the typed keys that lay out what abdoseg keeps.
//!
//! The layout is documented in `docs/storage.md`.

mod error;
pub mod keys;
mod local;
mod location;
mod storage;

pub use error::StorageError;
pub use keys::{CallerAccess, Id, Key};
pub use location::{S3Options, StoreConfig, StoreLocation};
pub use storage::{ObjectInfo, Storage};
