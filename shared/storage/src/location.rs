//! Where the store is: a `file://`, `s3://` or `memory://` URL, plus the S3 settings that
//! the standard `AWS_*` variables or explicit options supply.

use std::{path::PathBuf, str::FromStr, sync::Arc};

use object_store::{
    ObjectStore, aws::AmazonS3Builder, local::LocalFileSystem, memory::InMemory,
    prefix::PrefixStore,
};

use crate::StorageError;

/// A parsed store URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// A folder on the local file system.
    File(PathBuf),
    /// A bucket (and optional prefix inside it) on S3 or an S3-compatible server.
    S3 { bucket: String, prefix: String },
    /// A store that lives in this process only; for tests.
    Memory,
}

impl StoreLocation {
    /// The default: `abdoseg/store` under the user's data directory
    /// (`$XDG_DATA_HOME` or `~/.local/share` on Linux), else `./abdoseg-store`.
    pub fn default_local() -> Self {
        let base = dirs::data_dir()
            .map(|dir| dir.join("abdoseg").join("store"))
            .unwrap_or_else(|| PathBuf::from("abdoseg-store"));
        Self::File(base)
    }

    /// A URL that names this location again, with no credentials in it.
    pub fn to_url(&self) -> String {
        match self {
            Self::File(path) => format!("file://{}", path.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Self::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
            Self::Memory => "memory://".to_owned(),
        }
    }
}

impl FromStr for StoreLocation {
    type Err = StorageError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| StorageError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected file:///path, s3://bucket/prefix or memory://"))?;
        match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(invalid(
                        "a file:// URL needs an absolute path (file:///data)",
                    ));
                }
                Ok(Self::File(PathBuf::from(rest)))
            }
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid("an s3:// URL needs a bucket name"));
                }
                Ok(Self::S3 {
                    bucket: bucket.to_owned(),
                    prefix: prefix.trim_matches('/').to_owned(),
                })
            }
            "memory" if rest.is_empty() => Ok(Self::Memory),
            "memory" => Err(invalid("memory:// takes nothing after the scheme")),
            _ => Err(invalid("unknown scheme; use file, s3 or memory")),
        }
    }
}

/// Explicit S3 settings. Each one left empty falls back to the standard variable
/// (`AWS_ENDPOINT_URL`/`AWS_ENDPOINT`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// e.g. `http://127.0.0.1:9000` for MinIO; requests then use path-style addressing.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Options {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "***"))
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Everything needed to open the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    pub location: StoreLocation,
    pub s3: S3Options,
    /// Local folder only: `fsync` each written file and its folder before a write
    /// returns, so that an acknowledged object survives a power cut (on by default).
    pub fsync: bool,
    /// Local folder only: remove the staging files of interrupted writes (`{key}#{n}`)
    /// on opening. Only the process that owns the folder (the server) does, so that a
    /// command-line tool opening the same folder never removes a write in flight.
    pub remove_staging: bool,
}

impl StoreConfig {
    pub fn new(location: StoreLocation) -> Self {
        Self {
            location,
            s3: S3Options::default(),
            fsync: true,
            remove_staging: false,
        }
    }

    /// Opens the store as its owner: staging files of interrupted writes are removed.
    pub fn as_owner(mut self) -> Self {
        self.remove_staging = true;
        self
    }

    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    pub fn with_s3(mut self, s3: S3Options) -> Self {
        self.s3 = s3;
        self
    }

    pub(crate) fn build(&self) -> Result<Arc<dyn ObjectStore>, StorageError> {
        match &self.location {
            StoreLocation::File(path) => {
                std::fs::create_dir_all(path).map_err(|source| StorageError::CreateFolder {
                    path: path.display().to_string(),
                    source,
                })?;
                if self.remove_staging {
                    let removed = crate::local::remove_staging_files(path);
                    if removed > 0 {
                        tracing::warn!(removed, "removed staging files of interrupted writes");
                    }
                }
                let store = LocalFileSystem::new_with_prefix(path)
                    .map_err(|source| StorageError::from_backend("", source))?
                    // Deleting the last object of a folder removes the folder too.
                    .with_automatic_cleanup(true)
                    .with_fsync(self.fsync);
                Ok(Arc::new(store))
            }
            StoreLocation::Memory => Ok(Arc::new(InMemory::new())),
            StoreLocation::S3 { bucket, prefix } => {
                let store =
                    self.s3_builder(bucket)
                        .build()
                        .map_err(|source| StorageError::InvalidUrl {
                            url: self.location.to_url(),
                            reason: source.to_string(),
                        })?;
                if prefix.is_empty() {
                    Ok(Arc::new(store))
                } else {
                    Ok(Arc::new(PrefixStore::new(store, prefix.as_str())))
                }
            }
        }
    }

    fn s3_builder(&self, bucket: &str) -> AmazonS3Builder {
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = self.s3.endpoint.clone().or_else(|| {
            std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .ok()
        });
        if let Some(endpoint) = endpoint {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                // MinIO and most S3-compatible servers want path-style addressing.
                .with_virtual_hosted_style_request(false)
                .with_endpoint(endpoint);
        }
        let region = self.s3.region.clone().or_else(|| {
            std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .ok()
        });
        if let Some(region) = region {
            builder = builder.with_region(region);
        }
        if let Some(key) = &self.s3.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &self.s3.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &self.s3.session_token {
            builder = builder.with_token(token);
        }
        builder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_schemes() {
        assert_eq!(
            "file:///var/lib/abdoseg".parse::<StoreLocation>().unwrap(),
            StoreLocation::File(PathBuf::from("/var/lib/abdoseg"))
        );
        assert_eq!(
            "s3://bucket/some/prefix/".parse::<StoreLocation>().unwrap(),
            StoreLocation::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            "s3://bucket".parse::<StoreLocation>().unwrap(),
            StoreLocation::S3 {
                bucket: "bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            "memory://".parse::<StoreLocation>().unwrap(),
            StoreLocation::Memory
        );
    }

    #[test]
    fn rejects_what_it_cannot_open() {
        for bad in [
            "",
            "/tmp/x",
            "file://relative",
            "s3://",
            "gs://b",
            "memory://x",
        ] {
            let err = bad.parse::<StoreLocation>().unwrap_err();
            assert!(
                matches!(err, StorageError::InvalidUrl { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn url_round_trips() {
        for url in ["file:///data/store", "s3://b/p/q", "s3://b", "memory://"] {
            assert_eq!(url.parse::<StoreLocation>().unwrap().to_url(), url);
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let options = S3Options {
            access_key_id: Some("AKIAEXAMPLE".into()),
            secret_access_key: Some("very-secret".into()),
            ..S3Options::default()
        };
        let printed = format!("{options:?}");
        assert!(!printed.contains("very-secret") && !printed.contains("AKIAEXAMPLE"));
    }

    #[test]
    fn default_is_a_local_folder() {
        assert!(matches!(
            StoreLocation::default_local(),
            StoreLocation::File(_)
        ));
    }
}
