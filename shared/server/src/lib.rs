//! Service wiring shared by abdoseg's four services: configuration blocks, telemetry,
//! the gRPC host (health, reflection, message limits, tracing), trace propagation
//! between services, graceful shutdown, the Prometheus endpoint and the storage error
//! mapping.

pub mod config;
mod host;
mod lifecycle;
pub mod prometheus;
pub mod propagation;
mod status;
pub mod telemetry;

pub use host::{Health, HostOptions, ServiceRegistration, serve};
pub use lifecycle::{Lifecycle, wait_for_signal};
pub use status::storage_status;
