//! The inference service: whole CT volumes in, label maps with the input's exact
//! geometry out, from warm models on CPU or GPU.

mod error;
mod grpc;

use abdoseg_protos::inference::v1::inference_service_server::InferenceServiceServer;
use abdoseg_server::ServiceRegistration;
use abdoseg_storage::Storage;

pub use error::Error;

/// The service's state: the store that holds volumes, models and predictions.
#[derive(Debug, Clone)]
pub struct InferenceService {
    storage: Storage,
}

impl InferenceService {
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// The tonic server with its message limits, ready for a host.
    pub fn registration(self, max_message_bytes: usize) -> ServiceRegistration {
        ServiceRegistration::new(
            InferenceServiceServer::new(self)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
    }
}
