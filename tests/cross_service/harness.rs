//! Starts the four services in one in-process stack over one store.

use std::time::Duration;

use abdoseg::stack::{self, Role, RunningStack, StackConfig};
use abdoseg_server::{HostOptions, config::PeerArgs, prometheus::Metrics};
use abdoseg_storage::{S3Options, Storage, StoreConfig};
use abdoseg_testkit::S3Server;
use tokio::net::TcpListener;
use tonic::transport::Channel;

/// A running stack, the store under it, and a channel to it.
pub struct Harness {
    pub stack: RunningStack,
    pub storage: Storage,
    pub channel: Channel,
    /// The stack's Prometheus registry.
    pub metrics: Metrics,
    _s3: Option<S3Server>,
}

/// Knobs a test may turn.
#[derive(Clone)]
pub struct Options {
    pub max_message_bytes: usize,
    pub host: HostOptions,
    pub inference: abdoseg_inference::InferenceLimits,
    pub default_model: Option<String>,
    pub requests: abdoseg_server::RequestLimits,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_message_bytes: 16 * 1024 * 1024,
            host: HostOptions {
                shutdown_grace: Duration::from_secs(5),
                shutdown_delay: Duration::ZERO,
            },
            inference: Default::default(),
            default_model: None,
            requests: Default::default(),
        }
    }
}

impl Harness {
    /// All four services over an in-memory store.
    pub async fn start() -> Self {
        Self::start_with(Storage::in_memory(), Options::default(), None).await
    }

    /// All four services over a real S3 endpoint served inside this process.
    pub async fn start_on_s3() -> Self {
        let s3 = S3Server::start().await.expect("start the S3 server");
        let config = StoreConfig::new(format!("s3://{}/abdoseg", s3.bucket).parse().unwrap())
            .with_s3(S3Options {
                endpoint: Some(s3.endpoint.clone()),
                region: Some(s3.region.clone()),
                access_key_id: Some(s3.access_key_id.clone()),
                secret_access_key: Some(s3.secret_access_key.clone()),
                session_token: None,
            });
        let storage = Storage::open(&config).expect("open the S3 store");
        Self::start_with(storage, Options::default(), Some(s3)).await
    }

    pub async fn start_with(storage: Storage, options: Options, s3: Option<S3Server>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = Metrics::new();
        let stack = stack::spawn(
            listener,
            StackConfig {
                role: Role::All,
                storage: storage.clone(),
                peers: PeerArgs::default(),
                max_message_bytes: options.max_message_bytes,
                host: options.host,
                preprocess_workers: 2,
                training_jobs: 1,
                inference: options.inference,
                default_model: options.default_model.clone(),
                metrics: metrics.clone(),
                requests: options.requests.clone(),
            },
        )
        .expect("start the stack");
        let channel = Channel::from_shared(stack.url())
            .unwrap()
            .connect()
            .await
            .expect("connect to the stack");
        Self {
            stack,
            storage,
            channel,
            metrics,
            _s3: s3,
        }
    }
}

/// Starts the real `abdoseg` binary with `args` (plus `--listen 127.0.0.1:0`) and `envs`;
/// returns the child and its URL, read from the line it prints once it listens.
pub fn spawn_binary(args: &[&str], envs: &[(&str, String)]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_abdoseg"))
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start abdoseg");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    (child, format!("http://{addr}"))
}
