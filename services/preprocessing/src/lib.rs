//! The preprocessing service: raw CT datasets in the store become patient-level splits
//! of preprocessed axial slices with a manifest; single volumes are preprocessed for
//! inference through the same code.

mod convert;
mod discover;
mod error;
mod grpc;
mod job;
mod upload;

use abdoseg_imaging::nifti::ReadLimits;
use abdoseg_protos::preprocessing::v1::preprocessing_service_server::PreprocessingServiceServer;
use abdoseg_server::{Gate, Lifecycle, RequestLimits, ServiceRegistration};
use abdoseg_storage::Storage;

pub use error::Error;

/// The service's state and limits.
#[derive(Debug, Clone)]
pub struct PreprocessingService {
    storage: Storage,
    lifecycle: Lifecycle,
    /// Cases prepared at once.
    workers: usize,
    limits: ReadLimits,
    /// The process's memory budget, voxel limit and upload idle timeout.
    requests: RequestLimits,
    /// UploadVolume and PreprocessVolume: the calls that decode one volume each.
    volumes: Gate,
    /// PrepareDataset jobs.
    preparations: Gate,
}

/// Dataset preparations that run at once (each preparing `workers` cases), and that may
/// wait.
const PREPARATIONS_RUNNING: usize = 2;
const PREPARATIONS_WAITING: usize = 8;

/// Single-volume calls (uploads, PreprocessVolume) that run at once, and that may wait.
const VOLUME_CALLS_RUNNING: usize = 2;
const VOLUME_CALLS_WAITING: usize = 16;

impl PreprocessingService {
    /// `workers`: cases prepared at once (each also uses the CPU's cores for its slices).
    pub fn new(storage: Storage, lifecycle: Lifecycle, workers: usize) -> Self {
        Self {
            storage,
            lifecycle,
            workers: workers.max(1),
            limits: ReadLimits::default(),
            requests: RequestLimits::default(),
            volumes: Gate::new("volume calls", VOLUME_CALLS_RUNNING, VOLUME_CALLS_WAITING),
            preparations: Gate::new(
                "dataset preparations",
                PREPARATIONS_RUNNING,
                PREPARATIONS_WAITING,
            ),
        }
    }

    /// The process's request bounds (its memory budget is shared with the other
    /// services of the process).
    pub fn with_request_limits(mut self, requests: RequestLimits) -> Self {
        self.limits.max_voxels = requests.max_voxels;
        self.requests = requests;
        self
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
