//! Why a metrics call failed, and the one mapping of each cause to a gRPC status.

use abdoseg_server::{budget_status, internal_status, storage_status};
use abdoseg_storage::StorageError;
use tonic::Status;

/// Errors of the metrics service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong; the message says how.
    #[error("{0}")]
    InvalidArgument(String),
    /// The request is well formed but the system is not in a state to run it.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The store failed or lacks an object.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored object is not what it should be (e.g. not a label map).
    #[error("{what}: {detail}")]
    InvalidObject { what: String, detail: String },
    /// The memory the request needs cannot be had (now, or ever).
    #[error(transparent)]
    Budget(#[from] abdoseg_server::BudgetError),
    /// Too many single-case calls running and waiting.
    #[error(transparent)]
    Busy(#[from] abdoseg_server::GateFull),
    /// The caller went away: the work stopped.
    #[error("the evaluation was cancelled")]
    Cancelled,
    /// The caller's deadline passed: the work stopped.
    #[error("the deadline passed before the evaluation finished")]
    DeadlineExceeded,
    /// The inference service refused or failed a case.
    #[error("inference: {0}")]
    Inference(Status),
    /// A bug or an unexpected failure inside the service.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(message) => Status::invalid_argument(message),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
            Error::Storage(error) => storage_status(&error),
            Error::InvalidObject { .. } => Status::invalid_argument(error.to_string()),
            Error::Inference(status) => {
                Status::new(status.code(), format!("inference: {}", status.message()))
            }
            Error::Budget(error) => budget_status(&error),
            Error::Busy(full) => full.into(),
            Error::Cancelled => Status::cancelled(error.to_string()),
            Error::DeadlineExceeded => Status::deadline_exceeded(error.to_string()),
            Error::Internal(detail) => internal_status("metrics", &detail),
        }
    }
}
