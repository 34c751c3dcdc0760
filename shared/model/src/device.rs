//! Choosing the compute device at run time. burn's CUDA backend panics (on a background
//! thread) when `libcuda` is missing, so CUDA is probed before it is ever initialised.

use serde::{Deserialize, Serialize};

/// What a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceRequest {
    /// CUDA when a driver is there (and this build has CUDA), else CPU.
    Auto,
    Cpu,
    Cuda,
}

/// The device that will be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    Cpu,
    Cuda,
}

/// The CPU backend (burn's `flex`).
#[cfg(feature = "flex")]
pub type CpuBackend = burn::backend::Flex;

/// The CUDA backend; only touch it after [`DeviceRequest::resolve`] chose CUDA.
#[cfg(feature = "cuda")]
pub type CudaBackend = burn::backend::Cuda;

/// Why CUDA cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("CUDA was requested but this abdoseg was built without the `cuda` feature")]
    NotBuilt,
    #[error("CUDA was requested but the NVIDIA driver cannot be loaded ({0}); is this a GPU node?")]
    NoDriver(String),
}

/// Whether the NVIDIA driver library can be loaded. It says nothing of whether a GPU or
/// NVRTC is there: the first use of the device is guarded as well.
pub fn probe_cuda_driver() -> Result<(), String> {
    // SAFETY: loading the NVIDIA driver runs its initialisers, which is what using CUDA
    // does anyway; the handle is dropped at once and no symbol is called.
    #[allow(unsafe_code)]
    let library = unsafe { libloading::Library::new("libcuda.so.1") };
    library.map(drop).map_err(|e| e.to_string())
}

impl DeviceRequest {
    /// Resolves the request; `Auto` falls back to CPU and says why in the second value.
    pub fn resolve(self) -> Result<(Device, Option<String>), DeviceError> {
        let cuda = if cfg!(feature = "cuda") {
            probe_cuda_driver().map_err(DeviceError::NoDriver)
        } else {
            Err(DeviceError::NotBuilt)
        };
        match (self, cuda) {
            (DeviceRequest::Cpu, _) => Ok((Device::Cpu, None)),
            (DeviceRequest::Cuda | DeviceRequest::Auto, Ok(())) => Ok((Device::Cuda, None)),
            (DeviceRequest::Cuda, Err(error)) => Err(error),
            (DeviceRequest::Auto, Err(error)) => {
                Ok((Device::Cpu, Some(format!("using the CPU: {error}"))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_available_and_auto_never_fails() {
        assert_eq!(DeviceRequest::Cpu.resolve().unwrap(), (Device::Cpu, None));
        let (device, note) = DeviceRequest::Auto.resolve().unwrap();
        if device == Device::Cpu {
            assert!(note.is_some(), "auto says why it fell back");
        }
    }

    #[test]
    fn cuda_without_a_driver_is_a_clear_error_not_a_panic() {
        if probe_cuda_driver().is_ok() && cfg!(feature = "cuda") {
            return; // A GPU node: nothing to refuse.
        }
        let error = DeviceRequest::Cuda.resolve().unwrap_err();
        assert!(error.to_string().contains("CUDA was requested"), "{error}");
    }
}
