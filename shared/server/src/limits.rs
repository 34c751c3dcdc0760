//! Bounds every service applies to the requests it takes: the process's memory budget,
//! the largest volume (in voxels) any request may decode, and how long an upload stream
//! may stay silent.

use std::time::Duration;

use crate::budget::{BudgetError, MemoryBudget};

/// The request bounds of one process, shared by its services.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    pub budget: MemoryBudget,
    /// Most voxels a volume may have once decoded.
    pub max_voxels: u64,
    /// Longest silence between two messages of an upload stream.
    pub idle_timeout: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            budget: MemoryBudget::detect(),
            max_voxels: 1 << 29,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// The status a caller gets when a request's memory cannot be had: INVALID_ARGUMENT when
/// it could never fit, RESOURCE_EXHAUSTED (with a retry hint in the message) when other
/// work holds the memory now.
pub fn budget_status(error: &BudgetError) -> tonic::Status {
    match error {
        BudgetError::NeverFits { .. } => tonic::Status::invalid_argument(error.to_string()),
        BudgetError::Busy { .. } => tonic::Status::resource_exhausted(error.to_string()),
    }
}
