//! The one mapping from storage errors to gRPC statuses, used inside every service's
//! own `Error → Status` mapping. Internal detail goes to the log, not to the caller.

use abdoseg_storage::StorageError;
use tonic::Status;

/// The answer to a fault of ours: the detail goes to the log under a fresh error id,
/// the caller gets the id and no internals.
pub fn internal_status(service: &str, detail: &dyn std::fmt::Display) -> Status {
    let error_id = format!("{:016x}", rand_id());
    tracing::error!(%service, %error_id, detail = %detail, "internal error");
    Status::internal(format!(
        "internal error in the {service} service (error id {error_id}); the service log has the detail"
    ))
}

/// A random-enough id to find one log line by: time and a process-wide counter, hashed.
fn rand_id() -> u64 {
    use std::{
        hash::{BuildHasher, Hasher},
        sync::atomic::{AtomicU64, Ordering},
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// The status a caller should see for a storage failure.
pub fn storage_status(error: &StorageError) -> Status {
    match error {
        StorageError::InvalidKey { .. }
        | StorageError::OutsideNamespace { .. }
        | StorageError::Refused { .. } => Status::invalid_argument(error.to_string()),
        StorageError::Conflict { .. } => Status::failed_precondition(error.to_string()),
        StorageError::Symlink { .. } => {
            tracing::error!(error = %error, "refused a path through a symbolic link in the store");
            Status::failed_precondition("the object store refuses this key")
        }
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
        let outside = StorageError::OutsideNamespace {
            value: "models/m/weights.mpk".into(),
            allowed: "predictions/",
        };
        assert_eq!(storage_status(&outside).code(), Code::InvalidArgument);
        let clash = StorageError::Conflict {
            key: "a/b".into(),
            reason: "not a directory".into(),
        };
        assert_eq!(storage_status(&clash).code(), Code::FailedPrecondition);
        let json = StorageError::Json {
            key: "secret/path".into(),
            source: serde_json_error(),
        };
        let status = storage_status(&json);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret/path"));
    }

    #[test]
    fn internal_answers_carry_an_id_and_no_detail() {
        let status = internal_status("inference", &"tensor shape [3, 5] at burn/src/x.rs:42");
        assert_eq!(status.code(), Code::Internal);
        assert!(status.message().contains("error id"));
        assert!(!status.message().contains("burn/src"));
        let other = internal_status("inference", &"x");
        assert_ne!(status.message(), other.message());
    }

    fn serde_json_error() -> serde_json::Error {
        serde_json::from_str::<u8>("x").unwrap_err()
    }
}
