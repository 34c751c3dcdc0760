//! Test-only helpers shared by the crates' test suites: a real S3 endpoint (s3s + s3s-fs)
//! served from a temporary folder inside the test process, on `127.0.0.1:0`.

use std::net::SocketAddr;

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder as ConnBuilder,
};
use s3s::{auth::SimpleAuth, service::S3ServiceBuilder};
use tokio::{net::TcpListener, task::JoinHandle};

/// A running S3 server; it stops when dropped.
#[derive(Debug)]
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    pub addr: SocketAddr,
    accept_loop: JoinHandle<()>,
    _root: tempfile::TempDir,
}

impl S3Server {
    /// Starts a server with one empty bucket, `abdoseg-test`, on the current Tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let root = tempfile::tempdir()?;
        let bucket = "abdoseg-test".to_owned();
        // s3s-fs keeps a bucket as a folder under its root.
        std::fs::create_dir(root.path().join(&bucket))?;
        let access_key_id = "abdoseg-test-access".to_owned();
        let secret_access_key = "abdoseg-test-secret".to_owned();

        let fs = s3s_fs::FileSystem::new(root.path())
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(
            access_key_id.clone(),
            secret_access_key.clone(),
        ));
        let service = builder.build();

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accept_loop = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let connection = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "s3 test connection ended with an error");
                    }
                });
            }
        });

        Ok(Self {
            endpoint: format!("http://{addr}"),
            bucket,
            access_key_id,
            secret_access_key,
            region: "us-east-1".to_owned(),
            addr,
            accept_loop,
            _root: root,
        })
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}
