//! The preprocessing service: raw CT datasets in the store become patient-level splits
//! of preprocessed axial slices with a manifest; single volumes are preprocessed for
//! inference through the same code.

mod error;
mod grpc;

use abdoseg_protos::preprocessing::v1::preprocessing_service_server::PreprocessingServiceServer;
use abdoseg_server::ServiceRegistration;
use abdoseg_storage::Storage;

pub use error::Error;

/// The service's state: where datasets live.
#[derive(Debug, Clone)]
pub struct PreprocessingService {
    storage: Storage,
}

impl PreprocessingService {
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// The tonic server with its message limits, ready for a host.
    pub fn registration(self, max_message_bytes: usize) -> ServiceRegistration {
        ServiceRegistration::new(
            PreprocessingServiceServer::new(self)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        )
    }
}
