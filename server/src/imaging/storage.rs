//! Where stored objects live, by the SHA-256 of their bytes. One interface,
//! [`ObjectStore`], with two implementations: [`FileStore`], the file system
//! under the data directory (the default), and [`BucketStore`], any store of
//! the `object_store` crate chosen by URL (`serve --object-store`): local
//! files (`file:///srv/osteo/objects`), memory (`memory:///`, for tests)
//! and, built with the server's `s3` feature, S3 and compatible stores
//! (`s3://bucket/prefix`) for multi-site installations. Both lay objects
//! out as `ab/abcdef….dcm`, so a directory written by one is read by the
//! other.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored object {0} is not what was written (hash differs)")]
    Corrupt(String),
    #[error("object store: {0}")]
    Backend(String),
}

/// Content-addressed object storage.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync {
    /// Stores `bytes` under `sha256` (a no-op when already there).
    async fn put(&self, sha256: &str, bytes: &[u8]) -> Result<(), StorageError>;
    /// The bytes stored under `sha256`, checked against it.
    async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, StorageError>;
}

/// Objects under `root/ab/abcdef….dcm`; written to a temporary file first
/// and renamed, so a crash never leaves half an object under its name.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    pub fn new(root: PathBuf) -> FileStore {
        FileStore { root }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(format!("{sha256}.dcm"))
    }
}

#[async_trait::async_trait]
impl ObjectStore for FileStore {
    async fn put(&self, sha256: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let path = self.path(sha256);
        if tokio::fs::try_exists(&path).await? {
            return Ok(());
        }
        let dir = path
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.clone());
        tokio::fs::create_dir_all(&dir).await?;
        let tmp = dir.join(format!(".{sha256}.{}.tmp", std::process::id()));
        tokio::fs::write(&tmp, bytes).await?;
        let file = tokio::fs::File::open(&tmp).await?;
        file.sync_all().await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(())
    }

    async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if !osteo_trial::codes::is_sha256(sha256) {
            return Ok(None);
        }
        match tokio::fs::read(self.path(sha256)).await {
            Ok(bytes) => {
                if super::sha256_hex(&bytes) != sha256 {
                    return Err(StorageError::Corrupt(sha256.to_owned()));
                }
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// An `object_store` store (and a prefix in it) as the object storage.
#[derive(Debug, Clone)]
pub struct BucketStore {
    inner: std::sync::Arc<dyn object_store::ObjectStore>,
    prefix: object_store::path::Path,
}

impl BucketStore {
    /// The store a URL names: `file:///absolute/path`, `memory:///`, or
    /// (with the `s3` feature) `s3://bucket/prefix`, credentials from the
    /// usual `AWS_*` variables.
    pub fn from_url(url: &str) -> Result<BucketStore, StorageError> {
        let parsed =
            url::Url::parse(url).map_err(|e| StorageError::Backend(format!("{url}: {e}")))?;
        let (inner, prefix) = object_store::parse_url_opts(&parsed, std::env::vars())
            .map_err(|e| StorageError::Backend(format!("{url}: {e}")))?;
        if parsed.scheme() == "file" {
            std::fs::create_dir_all(parsed.path())?;
        }
        Ok(BucketStore {
            inner: std::sync::Arc::from(inner),
            prefix,
        })
    }

    fn key(&self, sha256: &str) -> object_store::path::Path {
        self.prefix
            .clone()
            .join(&sha256[..2])
            .join(format!("{sha256}.dcm").as_str())
    }
}

use object_store::ObjectStoreExt;

fn backend(e: object_store::Error) -> StorageError {
    StorageError::Backend(e.to_string())
}

#[async_trait::async_trait]
impl ObjectStore for BucketStore {
    async fn put(&self, sha256: &str, bytes: &[u8]) -> Result<(), StorageError> {
        if !osteo_trial::codes::is_sha256(sha256) {
            return Err(StorageError::Backend(format!("{sha256} is not a SHA-256")));
        }
        let key = self.key(sha256);
        match self.inner.head(&key).await {
            Ok(_) => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(backend(e)),
        }
        // Each store's put is atomic: a reader never sees half an object.
        self.inner
            .put(&key, object_store::PutPayload::from(bytes.to_vec()))
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if !osteo_trial::codes::is_sha256(sha256) {
            return Ok(None);
        }
        let bytes = match self.inner.get(&self.key(sha256)).await {
            Ok(found) => found.bytes().await.map_err(backend)?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        if super::sha256_hex(&bytes) != sha256 {
            return Err(StorageError::Corrupt(sha256.to_owned()));
        }
        Ok(Some(bytes.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bucket_store_keeps_objects_by_hash_in_the_file_store_layout() {
        let bytes = b"a stored object".to_vec();
        let sha = crate::imaging::sha256_hex(&bytes);
        let memory = BucketStore::from_url("memory:///").unwrap();
        assert_eq!(memory.get(&sha).await.unwrap(), None);
        memory.put(&sha, &bytes).await.unwrap();
        memory.put(&sha, &bytes).await.unwrap();
        assert_eq!(memory.get(&sha).await.unwrap(), Some(bytes.clone()));
        assert!(memory.put("not-a-hash", &bytes).await.is_err());
        // Local files: the same layout as FileStore, so each reads the other's.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let local = BucketStore::from_url(&url).unwrap();
        local.put(&sha, &bytes).await.unwrap();
        let files = FileStore::new(dir.path().to_path_buf());
        assert_eq!(files.get(&sha).await.unwrap(), Some(bytes.clone()));
        // A changed object is reported, never served.
        std::fs::write(
            dir.path().join(&sha[..2]).join(format!("{sha}.dcm")),
            b"changed",
        )
        .unwrap();
        assert!(matches!(
            local.get(&sha).await,
            Err(StorageError::Corrupt(_))
        ));
        assert!(BucketStore::from_url("gopher://nowhere").is_err());
    }
}
