//! Why a preprocessing call failed, and the one mapping of each cause to a gRPC status.

use abdoseg_server::{budget_status, internal_status, storage_status};
use abdoseg_storage::StorageError;
use tonic::Status;

/// Errors of the preprocessing service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong; the message says how.
    #[error("{0}")]
    InvalidArgument(String),
    /// The prefix holds no case in any known layout.
    #[error("no cases under {0}: expected images named Case_XXXXX_0000.nii.gz")]
    NoCases(String),
    /// The dataset's own description is wrong (e.g. its dataset.json).
    #[error("{0}")]
    InvalidDataset(String),
    /// A volume is not usable (not NIfTI, truncated, wrong grid …).
    #[error("{0}")]
    InvalidVolume(#[from] abdoseg_imaging::ImagingError),
    /// The memory the request needs cannot be had (now, or ever).
    #[error(transparent)]
    Budget(#[from] abdoseg_server::BudgetError),
    /// Too many single-volume calls running and waiting.
    #[error(transparent)]
    Busy(#[from] abdoseg_server::GateFull),
    /// The upload stream itself failed (a message over the size limit, the caller gone):
    /// its own status, passed on.
    #[error("the upload broke off: {}", .0.message())]
    Upload(Status),
    /// The store failed or lacks an object.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The service is shutting down; the job resumes on the next request.
    #[error("the service is shutting down; run the request again to resume")]
    ShuttingDown,
    /// A worker task failed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(message) => Status::invalid_argument(message),
            Error::NoCases(_) => Status::not_found(error.to_string()),
            // A volume that cannot be read is bad input wherever it is named.
            Error::InvalidVolume(_) => Status::invalid_argument(error.to_string()),
            Error::InvalidDataset(_) => Status::failed_precondition(error.to_string()),
            Error::Budget(error) => budget_status(&error),
            Error::Upload(status) => status,
            Error::Busy(full) => full.into(),
            Error::Storage(error) => storage_status(&error),
            Error::ShuttingDown => Status::unavailable(error.to_string()),
            Error::Internal(detail) => internal_status("preprocessing", &detail),
        }
    }
}
