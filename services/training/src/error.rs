//! Why a training call failed, and the one mapping of each cause to a gRPC status.

use abdoseg_server::{internal_status, storage_status};
use abdoseg_storage::StorageError;
use tonic::Status;

/// Errors of the training service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong; the message says how.
    #[error("{0}")]
    InvalidArgument(String),
    /// The request is sound but the system is not in a state to run it (no GPU, an
    /// unusable dataset).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The store failed or lacks an object.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A fault of ours (a crashed run, a corrupt shard or checkpoint).
    #[error("{0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(message) => Status::invalid_argument(message),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
            Error::Storage(error) => storage_status(&error),
            Error::Internal(detail) => internal_status("training", &detail),
        }
    }
}
