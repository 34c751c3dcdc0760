//! Why a storage operation failed, one variant per cause.

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store URL could not be understood.
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// An identifier or key does not follow the key rules.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidKey {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    /// No object at that key.
    #[error("no object at {key}")]
    NotFound { key: String },
    /// A create-only write found an object already there.
    #[error("an object already exists at {key}")]
    AlreadyExists { key: String },
    /// The object is larger than the caller allows.
    #[error("object at {key} is {size} bytes, over the limit of {limit}")]
    TooLarge { key: String, size: u64, limit: u64 },
    /// A JSON document in the store could not be read or written.
    #[error("object at {key} is not valid JSON of the expected shape: {source}")]
    Json {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// The local store folder could not be created.
    #[error("cannot create the store folder {path}: {source}")]
    CreateFolder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Any other failure of the backend (network, permissions, I/O).
    #[error("object store error at {key}: {source}")]
    Backend {
        key: String,
        #[source]
        source: object_store::Error,
    },
}

impl StorageError {
    /// Classifies an `object_store` error for the key it concerned.
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "object_store::Error is non-exhaustive; every other cause is a backend failure"
    )]
    pub(crate) fn from_backend(key: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Self::NotFound {
                key: key.to_owned(),
            },
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => Self::AlreadyExists {
                key: key.to_owned(),
            },
            other => Self::Backend {
                key: key.to_owned(),
                source: other,
            },
        }
    }
}
