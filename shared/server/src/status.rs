//! The one mapping from storage errors to gRPC statuses, used inside every service's
//! own `Error → Status` mapping. Internal detail goes to the log, not to the caller.

use abdoseg_storage::StorageError;
use tonic::Status;

/// The status a caller should see for a storage failure.
pub fn storage_status(error: &StorageError) -> Status {
    match error {
        StorageError::InvalidKey { .. } => Status::invalid_argument(error.to_string()),
        StorageError::NotFound { .. } => Status::not_found(error.to_string()),
        StorageError::AlreadyExists { .. } => Status::already_exists(error.to_string()),
        StorageError::TooLarge { .. } => Status::resource_exhausted(error.to_string()),
        StorageError::InvalidUrl { .. }
        | StorageError::CreateFolder { .. }
        | StorageError::Json { .. } => {
            tracing::error!(error = %error, "storage misconfigured or corrupt");
            Status::internal("the object store is misconfigured or holds a corrupt object")
        }
        StorageError::Backend { .. } => {
            tracing::warn!(error = %error, "object store unavailable");
            Status::unavailable("the object store is unavailable; retry later")
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn callers_get_codes_they_can_act_on() {
        let not_found = StorageError::NotFound { key: "k".into() };
        assert_eq!(storage_status(&not_found).code(), Code::NotFound);
        let exists = StorageError::AlreadyExists { key: "k".into() };
        assert_eq!(storage_status(&exists).code(), Code::AlreadyExists);
        let large = StorageError::TooLarge {
            key: "k".into(),
            size: 2,
            limit: 1,
        };
        assert_eq!(storage_status(&large).code(), Code::ResourceExhausted);
        let json = StorageError::Json {
            key: "secret/path".into(),
            source: serde_json_error(),
        };
        let status = storage_status(&json);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret/path"));
    }

    fn serde_json_error() -> serde_json::Error {
        serde_json::from_str::<u8>("x").unwrap_err()
    }
}
