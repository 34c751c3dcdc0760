//! Service wiring shared by abdoseg's four services: configuration blocks, telemetry,
//! the gRPC host (health, reflection, message limits, tracing), trace propagation
//! between services, graceful shutdown, the Prometheus endpoint and the storage error
//! mapping.

pub mod budget;
pub mod config;
mod deadline;
mod gate;
mod health;
mod host;
mod lifecycle;
mod limits;
pub mod prometheus;
pub mod propagation;
mod rejections;
mod status;
pub mod telemetry;

pub use budget::{BudgetError, MemoryBudget, Reservation};
pub use deadline::deadline;
pub use gate::{Gate, GateFull, Ticket};
pub use host::{Health, HostOptions, ServiceRegistration, serve};
pub use lifecycle::{Lifecycle, wait_for_signal};
pub use limits::{RequestLimits, budget_status};
pub use status::{internal_status, storage_status};
