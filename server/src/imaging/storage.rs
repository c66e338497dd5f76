//! Where stored objects live, by the SHA-256 of their bytes. One interface,
//! so that an object store can replace the file system for multi-site
//! installations; the file system under the data directory is the default.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored object {0} is not what was written (hash differs)")]
    Corrupt(String),
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
