//! Whole objects and folders between local disk and object storage: the
//! demo's bronze upload (large files in multipart uploads through
//! object_store's `BufWriter`, aborted on failure) and small markers.

use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use std::path::Path;
use url::Url;

use super::{StorageError, store_for};
use crate::config::Settings;

/// Whether any object exists under the URL's prefix.
pub async fn has_objects(url: &Url, settings: &Settings) -> Result<bool, StorageError> {
    use futures::StreamExt;
    let store = store_for(url, settings)?;
    let prefix = ObjPath::from_url_path(url.path()).map_err(|e| StorageError::remote(url, e))?;
    match store.list(Some(&prefix)).next().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(e)) => Err(StorageError::remote(url, e)),
    }
}

/// Whether the object at the URL exists.
pub async fn object_exists(url: &Url, settings: &Settings) -> Result<bool, StorageError> {
    let store = store_for(url, settings)?;
    let key = ObjPath::from_url_path(url.path()).map_err(|e| StorageError::remote(url, e))?;
    match store.head(&key).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(StorageError::remote(url, e)),
    }
}

/// Writes one object (a single PUT: atomic).
pub async fn put_bytes(url: &Url, settings: &Settings, bytes: Vec<u8>) -> Result<(), StorageError> {
    let store = store_for(url, settings)?;
    let key = ObjPath::from_url_path(url.path()).map_err(|e| StorageError::remote(url, e))?;
    store.put(&key, PutPayload::from(bytes)).await.map_err(|e| StorageError::remote(url, e))?;
    Ok(())
}

/// Uploads a local folder's files under `dest` (an `s3://` URL), large
/// files in multipart uploads; returns the number of files.
pub async fn upload_dir(src: &Path, dest: &Url, settings: &Settings) -> Result<usize, StorageError> {
    let store = store_for(dest, settings)?;
    let base = ObjPath::from_url_path(dest.path()).map_err(|e| StorageError::remote(dest, e))?;
    let mut n = 0;
    for e in walkdir::WalkDir::new(src).into_iter().flatten().filter(|e| e.file_type().is_file()) {
        let rel = e.path().strip_prefix(src).expect("walkdir stays under its root");
        let mut key = base.clone();
        for c in rel.components() {
            key = key.join(c.as_os_str().to_string_lossy().as_ref());
        }
        let label = format!("{}/{}", dest.as_str().trim_end_matches('/'), rel.display());
        let mut w = object_store::buffered::BufWriter::new(store.clone(), key);
        let mut f = tokio::fs::File::open(e.path()).await.map_err(|source| StorageError::Local { location: e.path().display().to_string(), source })?;
        let r = async {
            tokio::io::copy(&mut f, &mut w).await?;
            tokio::io::AsyncWriteExt::shutdown(&mut w).await
        }
        .await;
        if let Err(err) = r {
            let _ = w.abort().await;
            return Err(StorageError::remote(label, err));
        }
        n += 1;
    }
    Ok(n)
}
