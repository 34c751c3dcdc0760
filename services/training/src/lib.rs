//! The training service: U-Net training jobs that run off the request path, survive
//! restarts through checkpoints in the store, and register the models they produce.

mod error;
mod grpc;

use abdoseg_protos::training::v1::training_service_server::TrainingServiceServer;
use abdoseg_server::{Lifecycle, ServiceRegistration};
use abdoseg_storage::Storage;

pub use error::Error;

/// The service's state: the store that holds jobs and models, and the lifecycle that
/// background jobs watch to checkpoint and stop on shutdown.
#[derive(Debug, Clone)]
pub struct TrainingService {
    storage: Storage,
    #[allow(
        dead_code,
        reason = "background jobs run under it from the training issue on"
    )]
    lifecycle: Lifecycle,
}

impl TrainingService {
    pub fn new(storage: Storage, lifecycle: Lifecycle) -> Self {
        Self { storage, lifecycle }
    }

    /// The tonic server with its message limits, ready for a host.
    pub fn registration(self, max_message_bytes: usize) -> ServiceRegistration {
        ServiceRegistration::new(
            TrainingServiceServer::new(self)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
    }
}
