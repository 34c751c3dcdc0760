//! The [`Storage`] handle: the operations abdoseg needs, with keys and errors of its own.

use std::{fmt, ops::Range, path::PathBuf, sync::Arc};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart,
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{Key, StorageError, StoreConfig, StoreLocation};

/// What the store knows of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: Key,
    pub size: u64,
    /// The entity tag, when the backend gives one.
    pub etag: Option<String>,
}

/// A cheap-to-clone handle on the configured object store.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<dyn ObjectStore>,
    location: StoreLocation,
    /// The folder of a local store, whose paths are checked for symbolic links.
    local_root: Option<Arc<PathBuf>>,
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage")
            .field("location", &self.location.to_url())
            .finish()
    }
}

type Result<T> = std::result::Result<T, StorageError>;

impl Storage {
    /// Opens (and for `file://`, creates) the store.
    pub fn open(config: &StoreConfig) -> Result<Self> {
        let local_root = match &config.location {
            StoreLocation::File(path) => Some(Arc::new(path.clone())),
            StoreLocation::S3 { .. } | StoreLocation::Memory => None,
        };
        Ok(Self {
            inner: config.build()?,
            location: config.location.clone(),
            local_root,
        })
    }

    /// On a local store, refuses a key whose path passes through a symbolic link.
    fn guard(&self, key: &Key) -> Result<()> {
        match &self.local_root {
            Some(root) => crate::local::refuse_symlinks(root, key),
            None => Ok(()),
        }
    }

    /// A fresh store that lives in this process only.
    pub fn in_memory() -> Self {
        Self {
            inner: Arc::new(object_store::memory::InMemory::new()),
            location: StoreLocation::Memory,
            local_root: None,
        }
    }

    /// Where this store is.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// Writes an object, replacing any object at the key.
    pub async fn put(&self, key: &Key, data: Bytes) -> Result<ObjectInfo> {
        self.put_with_mode(key, data, PutMode::Overwrite).await
    }

    /// Writes an object only if none exists at the key; [`StorageError::AlreadyExists`]
    /// otherwise. This is how concurrent writers agree on who wrote first.
    pub async fn put_if_absent(&self, key: &Key, data: Bytes) -> Result<ObjectInfo> {
        self.put_with_mode(key, data, PutMode::Create).await
    }

    /// Writes an object only if none exists at the key, or one with exactly these bytes
    /// (the same request again); [`StorageError::AlreadyExists`] otherwise. Callers'
    /// outputs are written this way: never over what someone else stored.
    pub async fn put_once(&self, key: &Key, data: Bytes) -> Result<ObjectInfo> {
        match self.put_if_absent(key, data.clone()).await {
            Err(StorageError::AlreadyExists { .. }) => {
                let existing = self.head(key).await?;
                if existing.size == data.len() as u64 && self.get(key).await? == data {
                    Ok(existing)
                } else {
                    Err(StorageError::AlreadyExists {
                        key: key.to_string(),
                    })
                }
            }
            other => other,
        }
    }

    async fn put_with_mode(&self, key: &Key, data: Bytes, mode: PutMode) -> Result<ObjectInfo> {
        self.guard(key)?;
        let size = data.len() as u64;
        let result = self
            .inner
            .put_opts(
                &key.to_path(),
                PutPayload::from_bytes(data),
                PutOptions::from(mode),
            )
            .await
            .map_err(|e| StorageError::from_backend(key.as_str(), e))?;
        Ok(ObjectInfo {
            key: key.clone(),
            size,
            etag: result.e_tag,
        })
    }

    /// Streams a large object in parts (a multipart upload on S3), so that it never sits
    /// in memory whole. A failed stream aborts the upload and leaves no object behind.
    pub async fn put_stream<S, E>(&self, key: &Key, chunks: S) -> Result<ObjectInfo>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: Into<StorageError>,
    {
        self.guard(key)?;
        let upload = self
            .inner
            .put_multipart(&key.to_path())
            .await
            .map_err(|e| StorageError::from_backend(key.as_str(), e))?;
        let mut writer = WriteMultipart::new(upload);
        let mut size = 0u64;
        let mut chunks = chunks;
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => {
                    size += chunk.len() as u64;
                    writer
                        .wait_for_capacity(4)
                        .await
                        .map_err(|e| StorageError::from_backend(key.as_str(), e))?;
                    writer.put(chunk);
                }
                Err(error) => {
                    // Best effort: the caller's error matters more than the abort's.
                    let _ = writer.abort().await;
                    return Err(error.into());
                }
            }
        }
        let result = writer
            .finish()
            .await
            .map_err(|e| StorageError::from_backend(key.as_str(), e))?;
        Ok(ObjectInfo {
            key: key.clone(),
            size,
            etag: result.e_tag,
        })
    }

    /// Reads a whole object.
    pub async fn get(&self, key: &Key) -> Result<Bytes> {
        self.guard(key)?;
        let result = self
            .inner
            .get(&key.to_path())
            .await
            .map_err(|e| StorageError::from_backend(key.as_str(), e))?;
        result
            .bytes()
            .await
            .map_err(|e| StorageError::from_backend(key.as_str(), e))
    }

    /// Reads a whole object after checking that it is at most `limit` bytes, so that an
    /// outsized object is refused before any memory is committed to it.
    pub async fn get_bounded(&self, key: &Key, limit: u64) -> Result<Bytes> {
        let info = self.head(key).await?;
        if info.size > limit {
            return Err(StorageError::TooLarge {
                key: key.to_string(),
                size: info.size,
                limit,
            });
        }
        self.get(key).await
    }

    /// Reads a byte range of an object.
    pub async fn get_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes> {
        self.guard(key)?;
        self.inner
            .get_range(&key.to_path(), range)
            .await
            .map_err(|e| StorageError::from_backend(key.as_str(), e))
    }

    /// Streams an object in the backend's chunks.
    pub async fn get_stream(
        &self,
        key: &Key,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + 'static> {
        self.guard(key)?;
        let result = self
            .inner
            .get(&key.to_path())
            .await
            .map_err(|e| StorageError::from_backend(key.as_str(), e))?;
        let owned = key.to_string();
        Ok(result
            .into_stream()
            .map_err(move |e| StorageError::from_backend(&owned, e)))
    }

    /// Size and entity tag of an object.
    pub async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        self.guard(key)?;
        let meta = self
            .inner
            .head(&key.to_path())
            .await
            .map_err(|e| StorageError::from_backend(key.as_str(), e))?;
        Ok(info_of(key.clone(), &meta))
    }

    /// Whether an object exists at the key.
    pub async fn exists(&self, key: &Key) -> Result<bool> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Every object under a prefix, at any depth, sorted by key.
    pub async fn list(&self, prefix: &Key) -> Result<Vec<ObjectInfo>> {
        let mut objects: Vec<ObjectInfo> = self
            .inner
            .list(Some(&prefix.to_path()))
            .map_err(|e| StorageError::from_backend(prefix.as_str(), e))
            .and_then(|meta| async move {
                let key = Key::parse(meta.location.as_ref())?;
                Ok(info_of(key, &meta))
            })
            .try_collect()
            .await?;
        // A linked folder's contents are not the store's: not listed.
        objects.retain(|object| self.guard(&object.key).is_ok());
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// The names of the "folders" directly under a prefix, sorted.
    pub async fn list_children(&self, prefix: &Key) -> Result<Vec<String>> {
        let listing = self
            .inner
            .list_with_delimiter(Some(&prefix.to_path()))
            .await
            .map_err(|e| StorageError::from_backend(prefix.as_str(), e))?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Reads and parses a JSON document.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &Key) -> Result<T> {
        let data = self.get(key).await?;
        serde_json::from_slice(&data).map_err(|source| StorageError::Json {
            key: key.to_string(),
            source,
        })
    }

    /// Writes a JSON document, replacing any object at the key.
    pub async fn put_json<T: Serialize>(&self, key: &Key, value: &T) -> Result<ObjectInfo> {
        let data = serde_json::to_vec_pretty(value).map_err(|source| StorageError::Json {
            key: key.to_string(),
            source,
        })?;
        self.put(key, Bytes::from(data)).await
    }

    /// Deletes an object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &Key) -> Result<()> {
        self.guard(key)?;
        match self.inner.delete(&key.to_path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::from_backend(key.as_str(), e)),
        }
    }

    /// Deletes every object under a prefix; returns how many.
    pub async fn delete_prefix(&self, prefix: &Key) -> Result<usize> {
        let objects = self.list(prefix).await?;
        for object in &objects {
            self.delete(&object.key).await?;
        }
        Ok(objects.len())
    }
}

fn info_of(key: Key, meta: &ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key,
        size: meta.size,
        etag: meta.e_tag.clone(),
    }
}
