//! The gRPC contracts of abdoseg, generated from `proto/` at build time.
//!
//! Each service has a versioned package; `common::v1` holds the types they share.

// Generated code follows its generator's style, not ours.
#![allow(
    missing_debug_implementations,
    unused_qualifications,
    clippy::all,
    clippy::clone_on_ref_ptr,
    clippy::wildcard_enum_match_arm
)]

/// Types shared by every service.
pub mod common {
    /// Version 1 of the shared types.
    pub mod v1 {
        tonic::include_proto!("abdoseg.common.v1");
    }
}

/// The preprocessing service's contract.
pub mod preprocessing {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("abdoseg.preprocessing.v1");
    }
}

/// The training service's contract.
pub mod training {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("abdoseg.training.v1");
    }
}

/// The inference service's contract.
pub mod inference {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("abdoseg.inference.v1");
    }
}

/// The metrics service's contract.
pub mod metrics {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("abdoseg.metrics.v1");
    }
}

/// The encoded `FileDescriptorSet` of every abdoseg proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/abdoseg_descriptor.bin"));
