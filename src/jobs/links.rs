//! Result files of jobs (the faces an upgrade could not move, the persons a duplicate check found), handed
//! out as links that expire, as Tencent's COS links do: the link carries its expiry and an HMAC-SHA256 of
//! name and expiry under a key, so the files need no other credentials and a link cannot be extended or
//! pointed at another file.
//!
//! A SQLite server keeps the files in `<data dir>/files/` and the key in `<data dir>/url.key`. Replicas of a
//! shared database keep both in the database (`Links::shared`), so any replica serves any link; each also
//! writes the key to its own `url.key`.
//!
//! The same key yields the operator token (`operator_token`) that `GET /index/digest` requires: whoever can
//! read `url.key` (the server's user: it is created 0600, in a 0700 data directory) can compute it, as
//! `iai-server check-index --data-dir D` does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::store::Store;
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub struct Links {
    key: Vec<u8>,
    files: Files,
}

/// Where the result files are kept.
enum Files {
    Dir(PathBuf),
    Database(Store),
}

/// Why a link was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link has expired")]
    Expired,
    #[error("the link is not valid")]
    Invalid,
    #[error("the file no longer exists")]
    Gone,
}

impl Links {
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let dir = data_dir.join("files");
        crate::store::private_dir(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let key_path = data_dir.join(KEY_FILE);
        let key = match std::fs::read(&key_path) {
            Ok(key) if key.len() >= 32 => {
                crate::store::private_file(&key_path)
                    .with_context(|| format!("cannot secure {}", key_path.display()))?;
                key
            }
            _ => {
                let key = fresh_key();
                write_private(&key_path, &key)
                    .with_context(|| format!("cannot write {}", key_path.display()))?;
                key
            }
        };
        Ok(Self {
            key,
            files: Files::Dir(dir),
        })
    }

    /// Links of replicas sharing `store`'s database: the files and the key are kept there (the first
    /// replica to start makes the key); the key is also written to `data_dir`'s `url.key`, for
    /// `check-index` on this machine.
    pub async fn shared(data_dir: &Path, store: Store) -> anyhow::Result<Self> {
        let key = store.file_or_insert(KEY_FILE.into(), fresh_key()).await?;
        anyhow::ensure!(key.len() >= 32, "the database's link key is not a key");
        let key_path = data_dir.join(KEY_FILE);
        if std::fs::read(&key_path).ok().as_deref() != Some(&key[..]) {
            let _ = std::fs::remove_file(&key_path);
            write_private(&key_path, &key)
                .with_context(|| format!("cannot write {}", key_path.display()))?;
        }
        Ok(Self {
            key,
            files: Files::Database(store),
        })
    }

    /// The operator token (`GET /index/digest` requires it as `Authorization: Bearer <token>`).
    pub fn operator_token(&self) -> String {
        operator_token_of(&self.key)
    }

    /// Whether `presented` is the operator token (compared in constant time).
    pub fn is_operator_token(&self, presented: &str) -> bool {
        bool::from(
            self.operator_token()
                .as_bytes()
                .ct_eq(presented.trim().as_bytes()),
        )
    }

    fn signature(&self, name: &str, expires: i64) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("{name}\n{expires}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Keep a result file under `name` (letters, digits, `_`, `-`, `.`).
    pub async fn write(&self, name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        anyhow::ensure!(safe_name(name), "bad result file name {name}");
        match &self.files {
            Files::Dir(dir) => {
                let path = dir.join(name);
                let partial = dir.join(format!("{name}.partial"));
                tokio::task::spawn_blocking(move || {
                    std::fs::write(&partial, bytes)?;
                    std::fs::rename(&partial, &path)
                })
                .await??;
            }
            Files::Database(store) => store.put_file(name.to_owned(), bytes).await?,
        }
        Ok(())
    }

    /// The file `name` for the server's own use (a job's checkpoint; `read` after checking a link): no
    /// link, no signature. `None` when there is none.
    pub async fn load(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        anyhow::ensure!(safe_name(name), "bad result file name {name}");
        match &self.files {
            Files::Dir(dir) => {
                let path = dir.join(name);
                // A checkpoint can be tens of MB: off the async workers, as `write` does.
                Ok(
                    tokio::task::spawn_blocking(move || match std::fs::read(path) {
                        Ok(bytes) => Ok(Some(bytes)),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                        Err(e) => Err(e),
                    })
                    .await??,
                )
            }
            Files::Database(store) => Ok(store.file(name.to_owned()).await?),
        }
    }

    /// Delete the file `name` (none is no error).
    pub async fn remove(&self, name: &str) -> anyhow::Result<()> {
        anyhow::ensure!(safe_name(name), "bad result file name {name}");
        match &self.files {
            Files::Dir(dir) => {
                let path = dir.join(name);
                tokio::task::spawn_blocking(move || match std::fs::remove_file(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                })
                .await??;
            }
            Files::Database(store) => store.delete_file(name.to_owned()).await?,
        }
        Ok(())
    }

    pub async fn exists(&self, name: &str) -> bool {
        if !safe_name(name) {
            return false;
        }
        match &self.files {
            Files::Dir(dir) => dir.join(name).exists(),
            Files::Database(store) => store.file_exists(name.to_owned()).await.unwrap_or(false),
        }
    }

    /// A link to `name` on `host` (as the client reached this server), valid for `valid` from `now`.
    pub fn url(&self, host: &str, name: &str, now: i64, valid: Duration) -> String {
        let expires = now + valid.as_secs() as i64;
        format!(
            "http://{host}/files/{name}?Expires={expires}&Signature={}",
            self.signature(name, expires)
        )
    }

    /// A link valid from now, on the host the request reached (its `Host` header; 127.0.0.1 without one).
    pub fn url_for_request(&self, host: Option<&str>, name: &str, valid: Duration) -> String {
        let host = host.map(bare_host).unwrap_or("127.0.0.1");
        self.url(host, name, crate::store::now_ms() / 1000, valid)
    }

    /// The file behind a link, if the link is genuine and not expired.
    pub async fn read(
        &self,
        name: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<Vec<u8>, LinkError> {
        if !safe_name(name) {
            return Err(LinkError::Invalid);
        }
        let expected = self.signature(name, expires);
        if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            return Err(LinkError::Invalid);
        }
        if now > expires {
            return Err(LinkError::Expired);
        }
        match self.load(name).await {
            Ok(Some(body)) => Ok(body),
            _ => Err(LinkError::Gone),
        }
    }

    /// Delete result files older than `age`.
    pub async fn purge(&self, age: Duration) {
        let dir = match &self.files {
            Files::Dir(dir) => dir.clone(),
            Files::Database(store) => {
                // Result files, and the checkpoints of checks that never finished.
                let checkpoints = super::similar::progress::SUFFIXES;
                for suffix in std::iter::once(".json").chain(checkpoints) {
                    if let Err(e) = store.purge_files(suffix, age).await {
                        tracing::warn!(error = %e, "cannot purge old result files");
                    }
                }
                return;
            }
        };
        let _ = tokio::task::spawn_blocking(move || purge_dir(&dir, age)).await;
    }
}

/// Delete the files of `dir` older than `age`.
fn purge_dir(dir: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|elapsed| elapsed > age);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A new link key: 32 random bytes.
fn fresh_key() -> Vec<u8> {
    (0..2)
        .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
        .collect()
}

/// The key file in the data directory.
pub const KEY_FILE: &str = "url.key";

/// The operator token of the server whose data directory is `data_dir` (read from its key file).
pub fn operator_token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(KEY_FILE);
    let key = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {} (the operator token is derived from it; run as the server's user)",
            path.display()
        )
    })?;
    anyhow::ensure!(key.len() >= 32, "{} is not a key", path.display());
    Ok(operator_token_of(&key))
}

/// HMAC of a fixed label under the link key: a secret apart from the link signatures (which sign
/// `name\nexpires`, never this label).
pub fn operator_token_of(key: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(b"iai-server operator token v1");
    hex::encode(mac.finalize().into_bytes())
}

/// Write a new file readable by this user only (0600), through a temporary name so that a crash leaves
/// either no key or a whole one.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&partial)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `host` as a client sent it, without a scheme (tccli sends `http://127.0.0.1:PORT` as its Host).
pub fn bare_host(host: &str) -> &str {
    host.trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn links_expire_and_cannot_be_forged() {
        let dir = tempfile::tempdir().unwrap();
        let links = Links::open(dir.path()).unwrap();
        links.write("job_1.json", b"[]".to_vec()).await.unwrap();
        let url = links.url("h:1", "job_1.json", 1000, Duration::from_secs(60));
        let query = url.split_once('?').unwrap().1;
        let (expires, signature) = query.split_once("&Signature=").unwrap();
        let expires: i64 = expires.trim_start_matches("Expires=").parse().unwrap();
        assert_eq!(expires, 1060);
        assert_eq!(
            links
                .read("job_1.json", expires, signature, 1050)
                .await
                .unwrap(),
            b"[]"
        );
        assert_eq!(
            links.read("job_1.json", expires, signature, 1061).await,
            Err(LinkError::Expired)
        );
        assert_eq!(
            links
                .read("job_1.json", expires + 600, signature, 1050)
                .await,
            Err(LinkError::Invalid)
        );
        assert_eq!(
            links.read("../url.key", expires, signature, 1050).await,
            Err(LinkError::Invalid)
        );
        // The key survives a restart: old links stay valid.
        let again = Links::open(dir.path()).unwrap();
        assert!(
            again
                .read("job_1.json", expires, signature, 1050)
                .await
                .is_ok()
        );
        assert_eq!(bare_host("http://127.0.0.1:8080"), "127.0.0.1:8080");
    }

    #[test]
    fn the_operator_token_is_read_from_the_key_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(operator_token(dir.path()).is_err(), "no key yet");
        let links = Links::open(dir.path()).unwrap();
        let token = operator_token(dir.path()).unwrap();
        assert_eq!(token, links.operator_token());
        assert_eq!(token.len(), 64);
        assert!(links.is_operator_token(&token));
        assert!(!links.is_operator_token(""));
        assert!(!links.is_operator_token(&token[..63]));
        assert!(!links.is_operator_token(&token.replace(&token[..1], "x")));
        let other = tempfile::tempdir().unwrap();
        assert_ne!(Links::open(other.path()).unwrap().operator_token(), token);
    }

    #[cfg(unix)]
    #[test]
    fn the_key_is_private_and_a_loose_one_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let key = dir.path().join(KEY_FILE);
        Links::open(dir.path()).unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&dir.path().join("files")), 0o700);
        let token = operator_token(dir.path()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let again = Links::open(dir.path()).unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(again.operator_token(), token, "the key itself is kept");
    }
}
