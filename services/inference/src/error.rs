//! Why a inference call failed, and the one mapping of each cause to a gRPC status.

use abdoseg_server::{budget_status, internal_status, storage_status};
use abdoseg_storage::StorageError;
use tonic::Status;

/// Errors of the inference service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong; the message says how.
    #[error("{0}")]
    InvalidArgument(String),
    /// The volume is not a readable NIfTI CT (not NIfTI, truncated, too large …).
    #[error("the volume cannot be read: {0}")]
    InvalidVolume(abdoseg_imaging::ImagingError),
    /// The memory the request needs cannot be had (now, or ever).
    #[error(transparent)]
    Budget(abdoseg_server::BudgetError),
    /// The upload stream itself failed (a message over the size limit, the caller gone):
    /// its own status, passed on.
    #[error("the upload broke off: {}", .0.message())]
    Upload(Status),
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
    /// The service is shutting down and takes no more work.
    #[error("the inference service is stopping; retry on another replica or later")]
    Stopping,
    /// A fault of ours.
    #[error("{0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(message) => Status::invalid_argument(message),
            Error::InvalidVolume(_) => Status::invalid_argument(error.to_string()),
            Error::Budget(error) => budget_status(&error),
            Error::Upload(status) => status,
            Error::Storage(error) => storage_status(&error),
            Error::ResourceExhausted(message) => Status::resource_exhausted(message),
            Error::Cancelled => Status::cancelled(error.to_string()),
            Error::DeadlineExceeded => Status::deadline_exceeded(error.to_string()),
            Error::Stopping => Status::unavailable(error.to_string()),
            Error::Internal(detail) => internal_status("inference", &detail),
        }
    }
}
