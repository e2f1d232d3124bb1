//! Configuration: built-in defaults, then an optional TOML file (`--config` / `IAI_CONFIG`), then
//! `IAI_*` environment variables, then command-line flags; later sources win.
//!
//! The basics need no file: `IAI_LISTEN`, `IAI_DATA_DIR`, `IAI_SECRET_ID` + `IAI_SECRET_KEY` (one key pair),
//! `IAI_DISABLE_SIGNATURE_CHECK=true`. The file adds more keys (with optional session tokens) and limits:
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! data_dir = "/var/lib/iai"
//! max_body_bytes = 10485760
//! max_clock_skew_secs = 300
//! [[keys]]
//! secret_id = "AKID..."
//! secret_key = "..."
//! token = "..."        # optional: calls must then carry this X-TC-Token
//! ```

use std::path::PathBuf;

use anyhow::bail;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::wire::auth::{ApiKey, KeyRing};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Folder of the SQLite database (created if missing).
    pub data_dir: PathBuf,
    /// One key pair from the environment (`IAI_SECRET_ID`, `IAI_SECRET_KEY`, optional `IAI_SECRET_TOKEN`).
    pub secret_id: Option<String>,
    pub secret_key: Option<String>,
    pub secret_token: Option<String>,
    /// More key pairs, from the file.
    pub keys: Vec<ApiKey>,
    /// Accept unsigned calls. Off unless set explicitly; logged loudly at start.
    pub disable_signature_check: bool,
    pub max_clock_skew_secs: i64,
    /// Largest request body (TC3 POST carries up to a 5 MB base64 image; Tencent allows 10 MB).
    pub max_body_bytes: usize,
    /// Folder of `manifest.json`, the model files and `lib/libonnxruntime.so` (tools/fetch_models.py).
    pub models_dir: PathBuf,
    /// Threads ONNX Runtime uses inside one model call.
    pub inference_threads: usize,
    /// Model calls running at once.
    pub max_concurrent_inference: usize,
    /// `Url` images: fetch from private, loopback and link-local addresses too (off: public hosts only).
    pub url_allow_private: bool,
    /// `Url` images: when not empty, the only host names that may be fetched.
    pub url_allowed_hosts: Vec<String>,
    /// `Url` images: whole-download time limit (Tencent's backend gives up after 5 s).
    pub url_timeout_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: "./data".into(),
            secret_id: None,
            secret_key: None,
            secret_token: None,
            keys: Vec::new(),
            disable_signature_check: false,
            max_clock_skew_secs: 300,
            max_body_bytes: 10 * 1024 * 1024,
            models_dir: "./models".into(),
            inference_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_concurrent_inference: 1,
            url_allow_private: false,
            url_allowed_hosts: Vec::new(),
            url_timeout_secs: 5,
        }
    }
}

/// Command-line flags; each overrides the setting of the same name.
#[derive(Debug, clap::Parser, Serialize)]
#[command(
    name = "iai-server",
    version,
    about = "A self-hosted server for Tencent Cloud's IAI face API"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "IAI_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// Accept calls without checking their signatures (for trusted test set-ups only).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disable_signature_check: bool,
}

impl Config {
    pub fn load(cli: &Cli) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = &cli.config {
            if !path.exists() {
                bail!("the configuration file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = figment
            .merge(Env::prefixed("IAI_").ignore(&["CONFIG", "KEYS", "URL_ALLOWED_HOSTS"]))
            .merge(Serialized::defaults(cli))
            .extract()?;
        Ok(config)
    }

    pub fn url_policy(&self) -> crate::face::download::UrlPolicy {
        crate::face::download::UrlPolicy {
            allow_private: self.url_allow_private,
            allowed_hosts: self.url_allowed_hosts.clone(),
            timeout: std::time::Duration::from_secs(self.url_timeout_secs),
            max_bytes: crate::face::image_input::MAX_BASE64_BYTES / 4 * 3,
        }
    }

    /// The keys that sign calls, or `None` when signature checking is off.
    pub fn key_ring(&self) -> anyhow::Result<Option<KeyRing>> {
        if self.disable_signature_check {
            return Ok(None);
        }
        let mut keys = self.keys.clone();
        match (&self.secret_id, &self.secret_key) {
            (Some(id), Some(key)) => keys.push(ApiKey {
                secret_id: id.clone(),
                secret_key: key.clone(),
                token: self.secret_token.clone(),
            }),
            (None, None) => {}
            _ => bail!("IAI_SECRET_ID and IAI_SECRET_KEY must be set together"),
        }
        if keys.is_empty() {
            bail!(
                "no API key is configured: set IAI_SECRET_ID and IAI_SECRET_KEY, add [[keys]] to the \
                 configuration file, or turn signature checking off with IAI_DISABLE_SIGNATURE_CHECK=true"
            );
        }
        Ok(Some(KeyRing::new(keys, self.max_clock_skew_secs)))
    }
}
