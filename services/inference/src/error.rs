//! Why a inference call failed, and the one mapping of each cause to a gRPC status.

use abdoseg_server::storage_status;
use abdoseg_storage::StorageError;
use tonic::Status;

/// Errors of the inference service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong; the message says how.
    #[error("{0}")]
    InvalidArgument(String),
    /// The store failed or lacks an object.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Too many segmentations running and queued; retry later.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The caller went away or its deadline passed: the work stopped.
    #[error("the segmentation was cancelled")]
    Cancelled,
    #[error("the deadline passed before the segmentation finished")]
    DeadlineExceeded,
    /// A fault of ours.
    #[error("{0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(message) => Status::invalid_argument(message),
            Error::Storage(error) => storage_status(&error),
            Error::ResourceExhausted(message) => Status::resource_exhausted(message),
            Error::Cancelled => Status::cancelled(error.to_string()),
            Error::DeadlineExceeded => Status::deadline_exceeded(error.to_string()),
            Error::Internal(message) => Status::internal(message),
        }
    }
}
