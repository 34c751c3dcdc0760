//! Warm models: loaded once from the registry, kept in an LRU cache bounded by the memory
//! their weights take, shared by every request that uses them.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use abdoseg_imaging::intensity::Intensity;
use abdoseg_model::{
    UNet,
    device::{CpuBackend, Device},
    weights,
};
use abdoseg_registry::{BUNDLED_MODEL_ID, ModelRecord, bundled_weights};
use abdoseg_storage::{Id, Key, Storage, StorageError};
use burn::module::Module;
use bytes::Bytes;

use crate::Error;

/// The network on the device the service runs on (boxed: the two backends' modules differ
/// in size, and the enum lives in every cache entry).
#[derive(Debug)]
pub enum Network {
    Cpu(Box<UNet<CpuBackend>>),
    #[cfg(feature = "cuda")]
    Cuda(Box<UNet<abdoseg_model::device::CudaBackend>>),
}

impl Network {
    fn load(record: &ModelRecord, bytes: &[u8], device: Device) -> Result<Self, String> {
        let config = record.spec.training.model();
        match device {
            Device::Cpu => {
                let device = Default::default();
                weights::decode(config.init::<CpuBackend>(&device), bytes, &device)
                    .map(|net| Self::Cpu(Box::new(net)))
            }
            #[cfg(feature = "cuda")]
            Device::Cuda => {
                use abdoseg_model::device::CudaBackend;
                let device = Default::default();
                weights::decode(config.init::<CudaBackend>(&device), bytes, &device)
                    .map(|net| Self::Cuda(Box::new(net)))
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda => Err(abdoseg_model::device::DeviceError::NotBuilt.to_string()),
        }
    }

    fn parameters(&self) -> usize {
        match self {
            Network::Cpu(net) => net.num_params(),
            #[cfg(feature = "cuda")]
            Network::Cuda(net) => net.num_params(),
        }
    }
}

/// A loaded model with what it needs to reproduce training's preprocessing.
#[derive(Debug)]
pub struct WarmModel {
    pub record: ModelRecord,
    pub net: Network,
    pub intensity: Intensity,
    /// Parameters × 4 bytes: what the weights take in memory.
    pub memory_bytes: u64,
    pub loaded_at: SystemTime,
    pub served: AtomicU64,
}

/// The cache; the most recently used model is last.
#[derive(Debug)]
pub struct ModelCache {
    device: Device,
    capacity_bytes: u64,
    /// `latest` falls back to the shipped model while the store has no trained one.
    bundled: bool,
    entries: Mutex<Vec<Arc<WarmModel>>>,
}

impl ModelCache {
    pub fn new(capacity_bytes: u64, device: Device, bundled: bool) -> Self {
        Self {
            device,
            capacity_bytes,
            bundled,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The record `model_id` names: the store's, or the shipped model's for its id (and
    /// for `latest` while the store has none, when allowed).
    async fn record(&self, storage: &Storage, model_id: &str) -> Result<ModelRecord, Error> {
        match abdoseg_registry::resolve(storage, model_id).await {
            Err(StorageError::NotFound { .. })
                if self.bundled && (model_id.is_empty() || model_id == "latest") =>
            {
                abdoseg_registry::bundled_record().map_err(Error::Internal)
            }
            other => Ok(other?),
        }
    }

    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }

    /// The warm models, least recently used first.
    pub fn models(&self) -> Vec<Arc<WarmModel>> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn touch(&self, model_id: &str) -> Option<Arc<WarmModel>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let position = entries.iter().position(|m| m.record.model_id == model_id)?;
        let model = entries.remove(position);
        entries.push(Arc::clone(&model));
        Some(model)
    }

    /// The model (an id or `latest`), loading it when it is not warm. Loading evicts the
    /// least recently used models until the new one fits (it stays even when it alone
    /// exceeds the capacity: refusing every request would help nobody).
    pub async fn get(&self, storage: &Storage, model_id: &str) -> Result<Arc<WarmModel>, Error> {
        if !model_id.is_empty() && model_id != "latest" {
            Id::parse(model_id).map_err(|e| Error::InvalidArgument(format!("model_id: {e}")))?;
            if let Some(model) = self.touch(model_id) {
                return Ok(model);
            }
        }
        let record = self.record(storage, model_id).await?;
        if let Some(model) = self.touch(&record.model_id) {
            return Ok(model);
        }
        let bytes = if record.model_id == BUNDLED_MODEL_ID {
            Bytes::from_static(bundled_weights())
        } else {
            storage.get(&Key::parse(&record.weights_key)?).await?
        };
        let device = self.device;
        let model = tokio::task::spawn_blocking(move || load(record, &bytes, device))
            .await
            .map_err(|e| Error::Internal(format!("loading the model panicked: {e}")))??;
        let model = Arc::new(model);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = entries
            .iter()
            .find(|m| m.record.model_id == model.record.model_id)
        {
            return Ok(Arc::clone(existing)); // Loaded by a concurrent request meanwhile.
        }
        let mut used: u64 = entries.iter().map(|m| m.memory_bytes).sum();
        while !entries.is_empty() && used + model.memory_bytes > self.capacity_bytes {
            let evicted = entries.remove(0);
            used -= evicted.memory_bytes;
            tracing::info!(model = %evicted.record.model_id, "evicted from the warm cache");
        }
        entries.push(Arc::clone(&model));
        tracing::info!(model = %model.record.model_id, bytes = model.memory_bytes, "model loaded");
        Ok(model)
    }
}

fn load(record: ModelRecord, bytes: &[u8], device: Device) -> Result<WarmModel, Error> {
    let intensity = record
        .intensity()
        .map_err(|e| Error::Internal(format!("model {}: {e}", record.model_id)))?;
    let net = Network::load(&record, bytes, device)
        .map_err(|e| Error::Internal(format!("model {}: {e}", record.model_id)))?;
    Ok(WarmModel {
        memory_bytes: net.parameters() as u64 * 4,
        record,
        net,
        intensity,
        loaded_at: SystemTime::now(),
        served: AtomicU64::new(0),
    })
}

impl WarmModel {
    pub fn served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }
}
