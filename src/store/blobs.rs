//! Content-addressed files (avatars) under the data dir: the name is the SHA-256 of the
//! bytes, so a file never changes once written and can be cached forever.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A folder of immutable files named by their hash.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

/// Whether `name` is a well-formed content address (64 lower-case hex digits).
pub fn is_hash(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Blobs {
    /// Files live in `dir`, created on first write.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Blobs { dir: dir.into() }
    }

    fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(&hash[..2]).join(hash)
    }

    /// Stores `bytes` durably and returns their hash (writing the same bytes twice is free).
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let hash = hex(&Sha256::digest(bytes));
        let path = self.path(&hash);
        if path.exists() {
            return Ok(hash);
        }
        let folder = path.parent().expect("blob paths have a folder");
        std::fs::create_dir_all(folder)?;
        // Write aside and rename, so a reader never sees half a file.
        let tmp = folder.join(format!(".{hash}.{}", std::process::id()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        sync_dir(folder);
        Ok(hash)
    }

    /// The bytes stored under `hash`.
    pub fn get(&self, hash: &str) -> std::io::Result<Vec<u8>> {
        if !is_hash(hash) {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        std::fs::read(self.path(hash))
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_back_under_their_hash_and_bad_names_are_refused() {
        let dir = std::env::temp_dir().join(format!("webim-blobs-{}", std::process::id()));
        let blobs = Blobs::new(&dir);
        let hash = blobs.put(b"picture").unwrap();
        assert!(is_hash(&hash));
        assert_eq!(blobs.put(b"picture").unwrap(), hash);
        assert_eq!(blobs.get(&hash).unwrap(), b"picture");
        assert!(blobs.get("../../etc/passwd").is_err());
        assert!(!is_hash(&hash.to_uppercase()));
        std::fs::remove_dir_all(dir).ok();
    }
}
