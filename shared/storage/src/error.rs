//! Why a storage operation failed, one variant per cause.

use std::io;

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
    /// A caller named a key outside the prefixes its request may touch.
    #[error("key {value:?} is not allowed here: it must lie under {allowed}")]
    OutsideNamespace {
        value: String,
        allowed: &'static str,
    },
    /// The store refuses the key for good (a name too long for it, say); retrying
    /// cannot help.
    #[error("the store refuses the key {key}: {reason}")]
    Refused { key: String, reason: String },
    /// The key collides with what is stored (a file where a folder is needed, or the
    /// reverse); retrying cannot help.
    #[error("the key {key} collides with a stored object: {reason}")]
    Conflict { key: String, reason: String },
    /// The local store holds a symbolic link on the key's path; it is never followed.
    #[error("the key {key} passes through a symbolic link, which the store does not follow")]
    Symlink { key: String },
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
        source: io::Error,
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
            other => match io_kind(&other) {
                Some(
                    kind @ (io::ErrorKind::NotADirectory
                    | io::ErrorKind::IsADirectory
                    | io::ErrorKind::DirectoryNotEmpty),
                ) => Self::Conflict {
                    key: key.to_owned(),
                    reason: kind.to_string(),
                },
                Some(kind @ (io::ErrorKind::InvalidFilename | io::ErrorKind::InvalidInput)) => {
                    Self::Refused {
                        key: key.to_owned(),
                        reason: kind.to_string(),
                    }
                }
                Some(io::ErrorKind::NotFound) => Self::NotFound {
                    key: key.to_owned(),
                },
                _ => Self::Backend {
                    key: key.to_owned(),
                    source: other,
                },
            },
        }
    }
}

/// The kind of the I/O error behind a backend error, if one is behind it: permanent
/// causes (a name too long, a file where a folder should be) are told apart from
/// passing ones that way.
fn io_kind(error: &object_store::Error) -> Option<io::ErrorKind> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(kind: io::ErrorKind) -> object_store::Error {
        object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(io::Error::new(kind, "x")),
        }
    }

    #[test]
    fn permanent_causes_are_told_apart_from_passing_ones() {
        let of = |kind| StorageError::from_backend("k", generic(kind));
        assert!(matches!(
            of(io::ErrorKind::NotADirectory),
            StorageError::Conflict { .. }
        ));
        assert!(matches!(
            of(io::ErrorKind::IsADirectory),
            StorageError::Conflict { .. }
        ));
        assert!(matches!(
            of(io::ErrorKind::InvalidFilename),
            StorageError::Refused { .. }
        ));
        assert!(matches!(
            of(io::ErrorKind::TimedOut),
            StorageError::Backend { .. }
        ));
    }
}
