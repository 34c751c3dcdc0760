//! Reusable clap configuration blocks; every flag also reads an environment variable,
//! so that Kubernetes can configure a service without arguments.

use std::{net::SocketAddr, time::Duration};

use abdoseg_storage::{S3Options, StorageError, StoreConfig, StoreLocation};

/// Default gRPC address of `abdoseg serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// Where a server listens and how it treats messages and shutdown.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "ABDOSEG_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Address of the Prometheus endpoint (`GET /metrics`); none when unset. Port 0
    /// picks a free port.
    #[arg(long, env = "ABDOSEG_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Largest gRPC message accepted or sent, in bytes. Volumes never travel in one
    /// message (they stream in chunks or stay in the store), so the largest messages
    /// are manifests and reports; 16 MiB holds a 1,000-case manifest with room to spare.
    #[arg(long, env = "ABDOSEG_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Seconds that in-flight calls and background work get to finish after SIGTERM.
    #[arg(long, env = "ABDOSEG_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Seconds to keep serving after health turns NOT_SERVING on SIGTERM, so that
    /// polling probes and load balancers see it and stop routing here before the
    /// listener closes (open health Watch streams end then).
    #[arg(long, env = "ABDOSEG_SHUTDOWN_DELAY_SECS", default_value_t = 5)]
    pub shutdown_delay_secs: u64,
}

impl ServerArgs {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay_secs)
    }
}

/// The bounds every service puts on requests (see `docs/configuration.md`).
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Memory, in MiB, that requests may reserve in all (volumes decoded, models
    /// trained); a request that needs more than the whole is refused, one that needs
    /// more than is free waits briefly or is refused with RESOURCE_EXHAUSTED. Default:
    /// three quarters of the container's memory limit, or of the machine's memory.
    #[arg(long, env = "ABDOSEG_MEMORY_BUDGET_MIB")]
    pub memory_budget_mib: Option<u64>,

    /// Most voxels a volume may have once decoded, in every service (512×512×2048).
    #[arg(long, env = "ABDOSEG_MAX_VOLUME_VOXELS", default_value_t = 1 << 29)]
    pub max_volume_voxels: u64,

    /// Seconds an upload stream (UploadVolume, SegmentStream) may stay silent between
    /// two messages before it is dropped.
    #[arg(long, env = "ABDOSEG_STREAM_IDLE_TIMEOUT_SECS", default_value_t = 30)]
    pub stream_idle_timeout_secs: u64,
}

impl LimitArgs {
    /// The bounds, with the memory budget measured when not given.
    pub fn request_limits(&self) -> crate::RequestLimits {
        crate::RequestLimits {
            budget: match self.memory_budget_mib {
                Some(mib) => crate::MemoryBudget::new(mib.saturating_mul(1 << 20)),
                None => crate::MemoryBudget::detect(),
            },
            max_voxels: self.max_volume_voxels.max(1),
            idle_timeout: Duration::from_secs(self.stream_idle_timeout_secs.max(1)),
        }
    }
}

/// Which object store to use. S3 credentials come from the standard `AWS_*` variables.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// `file:///path`, `s3://bucket/prefix` or `memory://`; defaults to a folder under
    /// the user's data directory.
    #[arg(long, env = "ABDOSEG_STORE")]
    pub store: Option<String>,

    /// S3 endpoint for MinIO or another S3-compatible server (path-style addressing).
    #[arg(long, env = "ABDOSEG_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Local folder only: fsync every written object and its folder before the write
    /// is acknowledged. `false` trades durability after a power cut for write speed.
    #[arg(long, env = "ABDOSEG_STORE_FSYNC", default_value_t = true, action = clap::ArgAction::Set)]
    pub store_fsync: bool,
}

impl StoreArgs {
    pub fn store_config(&self) -> Result<StoreConfig, StorageError> {
        let location = match &self.store {
            Some(url) => url.parse()?,
            None => StoreLocation::default_local(),
        };
        Ok(StoreConfig::new(location)
            .with_s3(S3Options {
                endpoint: self.s3_endpoint.clone(),
                ..S3Options::default()
            })
            .with_fsync(self.store_fsync))
    }
}

/// Where each service's peers are. Unset means "in this process" for `serve all`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PeerArgs {
    /// Inference service used by the metrics service, e.g. `http://inference:50051`.
    #[arg(long, env = "ABDOSEG_INFERENCE_URL")]
    pub inference_url: Option<String>,
}

/// Logging output.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// `text` for people, `json` for log collectors.
    #[arg(long, env = "ABDOSEG_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        store: StoreArgs,
    }

    #[test]
    fn defaults_are_the_embedded_ones() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(cli.server.max_message_bytes, 16 * 1024 * 1024);
        assert_eq!(cli.server.shutdown_grace(), Duration::from_secs(30));
        assert!(matches!(
            cli.store.store_config().unwrap().location,
            StoreLocation::File(_)
        ));
    }

    #[test]
    fn flags_override_and_bad_urls_fail() {
        let cli =
            Cli::try_parse_from(["x", "--listen", "0.0.0.0:9000", "--store", "memory://"]).unwrap();
        assert_eq!(cli.server.listen.port(), 9000);
        assert_eq!(
            cli.store.store_config().unwrap().location,
            StoreLocation::Memory
        );
        let cli = Cli::try_parse_from(["x", "--store", "ftp://nope"]).unwrap();
        assert!(cli.store.store_config().is_err());
        assert!(Cli::try_parse_from(["x", "--listen", "not-an-address"]).is_err());
    }
}
