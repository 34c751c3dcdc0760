//! The inference service: whole CT volumes in, label maps with the input's exact
//! geometry out, from warm models.
//!
//! - [`cache`]: warm models in an LRU cache bounded by memory.
//! - [`pipeline`]: volume → label map (the model's preprocessing, batches, argmax, back
//!   to the input's grid); [`postprocess`]: largest components and organ figures.
//! - [`segment`]: one Segment call with admission, deadline and cancellation;
//!   [`stream`]: the same for volumes uploaded in chunks.

mod cache;
mod error;
mod grpc;
mod pipeline;
mod postprocess;
mod segment;
mod stream;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use abdoseg_model::device::{Device, DeviceError, DeviceRequest};
use abdoseg_protos::inference::v1::inference_service_server::InferenceServiceServer;
use abdoseg_server::{Gate, RequestLimits, ServiceRegistration};
use abdoseg_storage::Storage;

pub use error::Error;

use cache::ModelCache;

/// Bounds on the work the service takes on.
#[derive(Debug, Clone, Copy)]
pub struct InferenceLimits {
    /// Segmentations that run at once (each uses every core).
    pub concurrency: usize,
    /// Segmentations that may wait beyond those; more get RESOURCE_EXHAUSTED.
    pub queue_capacity: usize,
    /// Slices per forward pass.
    pub batch_size: usize,
    /// Largest input file read from the store, in bytes.
    pub max_input_bytes: u64,
    /// Largest decompressed voxel data a volume may declare, in bytes.
    pub max_voxel_bytes: u64,
    /// Memory the warm models' weights may take, in bytes.
    pub cache_bytes: u64,
    /// Where inference runs; `Auto` takes CUDA when a driver is there.
    pub device: DeviceRequest,
    /// Whether `latest` falls back to the model shipped in the binary while the store has
    /// no trained model.
    pub bundled_model: bool,
}

impl Default for InferenceLimits {
    fn default() -> Self {
        Self {
            concurrency: 1,
            queue_capacity: 8,
            batch_size: 16,
            max_input_bytes: 1 << 30,
            max_voxel_bytes: 2 << 30,
            cache_bytes: 2 << 30,
            device: DeviceRequest::Auto,
            bundled_model: true,
        }
    }
}

/// The gRPC service name, as health checks know it.
pub const SERVICE_NAME: &str = "abdoseg.inference.v1.InferenceService";

/// The service's state: the store, the warm models and the admission counters.
#[derive(Debug, Clone)]
pub struct InferenceService {
    storage: Storage,
    device: Device,
    cache: Arc<ModelCache>,
    limits: InferenceLimits,
    requests: RequestLimits,
    /// Segmentations running and waiting.
    queue: Gate,
    default_model: Option<String>,
    ready: Arc<AtomicBool>,
}

impl InferenceService {
    /// Fails only when CUDA is asked for and cannot be had.
    pub fn with_limits(
        storage: Storage,
        limits: InferenceLimits,
        default_model: Option<String>,
    ) -> Result<Self, DeviceError> {
        let (device, note) = limits.device.resolve()?;
        if let Some(note) = note {
            tracing::info!("inference: {note}");
        }
        Ok(Self {
            storage,
            device,
            cache: Arc::new(ModelCache::new(
                limits.cache_bytes,
                device,
                limits.bundled_model,
            )),
            queue: Gate::new("segmentations", limits.concurrency, limits.queue_capacity),
            ready: Arc::new(AtomicBool::new(default_model.is_none())),
            default_model,
            limits,
            requests: RequestLimits::default(),
        })
    }

    /// The process's request bounds (its memory budget is shared with the other
    /// services of the process).
    pub fn with_request_limits(mut self, requests: RequestLimits) -> Self {
        self.requests = requests;
        self
    }

    fn device_proto(&self) -> abdoseg_protos::common::v1::Device {
        match self.device {
            Device::Cpu => abdoseg_protos::common::v1::Device::Cpu,
            Device::Cuda => abdoseg_protos::common::v1::Device::Cuda,
        }
    }

    pub fn default_model(&self) -> Option<&str> {
        self.default_model.as_deref()
    }

    /// Loads the default model (if any) into the warm cache; the service is ready after.
    pub async fn warm_default_model(&self) -> Result<(), Error> {
        if let Some(model_id) = &self.default_model {
            self.cache.get(&self.storage, model_id).await?;
        }
        self.ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
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
