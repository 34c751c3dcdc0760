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

    /// Seconds to keep serving after health turns NOT_SERVING on SIGTERM, so that load
    /// balancers stop routing here before the listener closes.
    #[arg(long, env = "ABDOSEG_SHUTDOWN_DELAY_SECS", default_value_t = 0)]
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
}

impl StoreArgs {
    pub fn store_config(&self) -> Result<StoreConfig, StorageError> {
        let location = match &self.store {
            Some(url) => url.parse()?,
            None => StoreLocation::default_local(),
        };
        Ok(StoreConfig::new(location).with_s3(S3Options {
            endpoint: self.s3_endpoint.clone(),
            ..S3Options::default()
        }))
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
