//! Configuration: built-in defaults, then an optional TOML file (`--config` / `IAI_CONFIG`), then
//! `IAI_*` environment variables, then command-line flags; later sources win.
//!
//! The basics need no file: `IAI_LISTEN`, `IAI_DATA_DIR`, `IAI_SECRET_ID` + `IAI_SECRET_KEY` (one key pair),
//! `IAI_DISABLE_SIGNATURE_CHECK=true`. The file adds more keys (with optional session tokens) and limits:
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! data_dir = "/var/lib/iai"
//! database_url = "postgres://iai@db/iai"  # several replicas on one PostgreSQL (default: SQLite in data_dir)
//! max_staleness_ms = 1000          # a replica further behind the database than this refuses searches
//! replica_id = "a"                 # this replica's name in logs, heartbeats and job leases (default: host:port)
//! advertise_address = "iai-a:8080"  # where other replicas and check-index reach it (default: listen)
//! max_body_bytes = 10485760
//! max_clock_skew_secs = 300
//! max_connections = 512
//! header_timeout_secs = 30
//! body_timeout_secs = 60
//! body_idle_timeout_secs = 10
//! decode_budget_bytes = 268435456   # default: sized from the machine's cores and memory
//! body_budget_bytes = 536870912     # default: sized from the machine's memory
//! inference_threads = 1             # threads inside one model call
//! max_concurrent_inference = 2      # model calls at once; default: one per core
//! reembed_batch_persons = 16        # background re-embedding: persons per batch
//! reembed_pause_ms = 0              # background re-embedding: pause between batches
//! similar_max_pairs_per_second = 1e7  # duplicate-person checks: scan rate cap (default: none)
//! audit_enabled = true             # the audit trail (audit.sqlite3): every call, for the console and export
//! audit_retention_days = 30
//! replay_protection = "writes"     # refuse a reused signature for a write; "strict": also another action; false
//! auth_failures_per_second = 20     # failed-authentication calls per client address (0 = no limit)
//! owner_uin = 100000000001          # the main account's uin in CAM resources (qcs::iai::uin/<owner_uin>:...)
//! url_proxy = "http://proxy:3128"   # `Url` images go through this proxy (default: none, whatever HTTP_PROXY says)
//! [[keys]]
//! secret_id = "AKID..."
//! secret_key = "..."
//! token = "..."        # optional: calls must then carry this X-TC-Token
//! [qps]                # calls a second per principal and interface group (default 50; 0 = off)
//! search = 50
//! upgrade_group_face_model_version = 10
//! [qps.users.alice]    # one sub-user's own limits
//! search = 5
//! ```

use std::path::PathBuf;

use anyhow::bail;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::api::access::InterfaceGroup;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Folder of the SQLite database (created if missing), and of this server's own files.
    pub data_dir: PathBuf,
    /// A PostgreSQL database shared by several replicas instead of the SQLite file
    /// (`IAI_DATABASE_URL`, `--database-url`).
    pub database_url: Option<String>,
    /// How far behind the shared database a replica may be before it refuses searches and reports not
    /// ready (PostgreSQL only: with SQLite the server is never behind).
    pub max_staleness_ms: u64,
    /// This replica's name (logs, heartbeats, job leases); default: the host name and listening port.
    pub replica_id: Option<String>,
    /// Where other replicas and `check-index` reach this one (`IAI_ADVERTISE_ADDRESS`); default: `listen`,
    /// with an unspecified host (0.0.0.0, [::]) replaced by the host name (a container's name in compose).
    pub advertise_address: Option<String>,
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
    /// Threads ONNX Runtime uses inside one model call. One: the face networks are small, so a second thread
    /// in the same call gains little, where a second call on the other core doubles throughput
    /// (README, "Benchmarks": SearchFaces at concurrency 8).
    pub inference_threads: usize,
    /// Model calls running at once (one per core by default).
    pub max_concurrent_inference: usize,
    /// `Url` images: fetch from private, loopback and link-local addresses too (off: public hosts only).
    pub url_allow_private: bool,
    /// `Url` images: when not empty, the only host names that may be fetched.
    pub url_allowed_hosts: Vec<String>,
    /// `Url` images: whole-download time limit (Tencent's backend gives up after 5 s).
    pub url_timeout_secs: u64,
    /// `Url` images: the proxy to fetch them through (`IAI_URL_PROXY`). Unset: no proxy, whatever
    /// `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` say (a proxy resolves the host again, past the address check).
    pub url_proxy: Option<String>,
    /// Client connections open at once; beyond it new clients wait in the listen backlog.
    pub max_connections: usize,
    /// A request head must arrive within this of the connection opening or going idle (so idle kept-alive
    /// connections are also closed after it).
    pub header_timeout_secs: u64,
    /// A request body must arrive whole within this.
    pub body_timeout_secs: u64,
    /// A request body may not stall (no bytes) for longer than this.
    pub body_idle_timeout_secs: u64,
    /// Memory for decoded images in flight; `None`: `default_decode_budget()`.
    pub decode_budget_bytes: Option<u64>,
    /// Memory for request bodies in flight; `None`: `default_body_budget()`.
    pub body_budget_bytes: Option<u64>,
    /// Background re-embedding (model changes, upgrades): persons per batch (each with up to 5 faces).
    /// Each batch takes one inference permit, so requests get their turn between batches.
    pub reembed_batch_persons: usize,
    /// Background re-embedding: pause between batches, to leave more of the machine to requests.
    pub reembed_pause_ms: u64,
    /// Duplicate-person checks: at most this many pairs compared per second (none when unset).
    pub similar_max_pairs_per_second: Option<f64>,
    /// The main account's uin, as CAM resources name it.
    pub owner_uin: u64,
    /// QPS limits per interface group and principal.
    pub qps: QpsConfig,
    /// Record every call in the audit trail (`audit.sqlite3` in the data directory).
    pub audit_enabled: bool,
    /// Days the audit trail keeps.
    pub audit_retention_days: u32,
    /// Refuse a second use of a signature (`wire::replay`; a difference from Tencent, whose clients do not
    /// sign the action): `true` or `"writes"` for a write, `"strict"` also for another action, `false` or
    /// `"off"` never.
    pub replay_protection: ReplaySetting,
    /// Calls from one client address that fail authentication (no key, unknown key, bad signature), per
    /// second, with a burst of five seconds' worth; past it the address's calls are refused unread for a
    /// while. 0 turns the limit off.
    pub auth_failures_per_second: u32,
}

const MIB: u64 = 1024 * 1024;

/// 128 MiB of decoded pixels per core (decoding is CPU-bound: more in flight only queues), at least 256 MiB
/// (one 64-megapixel photo and its conversion) and at most 1/8 of the memory.
pub fn default_decode_budget() -> u64 {
    let memory = crate::admission::total_memory_bytes().unwrap_or(8 * 1024 * MIB);
    (crate::admission::cores() as u64 * 128 * MIB)
        .min(memory / 8)
        .max(256 * MIB)
}

/// 1/32 of the memory for request bodies, between 64 MiB and 512 MiB (50 bodies of the 10 MB limit).
pub fn default_body_budget() -> u64 {
    let memory = crate::admission::total_memory_bytes().unwrap_or(8 * 1024 * MIB);
    (memory / 32).clamp(64 * MIB, 512 * MIB)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: "./data".into(),
            database_url: None,
            max_staleness_ms: 1000,
            replica_id: None,
            advertise_address: None,
            secret_id: None,
            secret_key: None,
            secret_token: None,
            keys: Vec::new(),
            disable_signature_check: false,
            max_clock_skew_secs: 300,
            max_body_bytes: 10 * 1024 * 1024,
            models_dir: "./models".into(),
            inference_threads: 1,
            max_concurrent_inference: std::thread::available_parallelism().map_or(1, |n| n.get()),
            url_allow_private: false,
            url_allowed_hosts: Vec::new(),
            url_timeout_secs: 5,
            url_proxy: None,
            max_connections: 512,
            header_timeout_secs: 30,
            body_timeout_secs: 60,
            body_idle_timeout_secs: 10,
            decode_budget_bytes: None,
            body_budget_bytes: None,
            reembed_batch_persons: 16,
            reembed_pause_ms: 0,
            similar_max_pairs_per_second: None,
            owner_uin: 100_000_000_001,
            qps: QpsConfig::default(),
            audit_enabled: true,
            audit_retention_days: 30,
            replay_protection: ReplaySetting::Switch(true),
            auth_failures_per_second: 20,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Every recorded call from `--since` (to `--until`), oldest first, one JSON object per line on stdout.
    Export {
        #[arg(long, env = "IAI_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// RFC 3339 (2026-11-25T00:00:00Z) or unix seconds.
        #[arg(long)]
        since: String,
        /// RFC 3339 or unix seconds; default: now.
        #[arg(long)]
        until: Option<String>,
        /// The shared PostgreSQL database of several replicas (every replica's calls; default: the
        /// SQLite trail in the data directory).
        #[arg(long, env = "IAI_DATABASE_URL")]
        database_url: Option<String>,
    },
}

/// What to do: serve (the default), or one of the operator tools.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Compare the search index of the server running on a data directory with a rebuild from its
    /// database (or, with no server running, check that the database rebuilds cleanly). Exit status 0 when
    /// they agree, 1 when they differ, 2 when the check could not run.
    CheckIndex {
        #[arg(long, env = "IAI_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The server's address (default: the one the server recorded in the data directory; with a
        /// shared database, every live replica).
        #[arg(long)]
        server: Option<String>,
        /// The shared PostgreSQL database the replicas use (default: the SQLite file in the data directory).
        #[arg(long, env = "IAI_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// What a score means for the people of one group: the false-accept rate at each score, and the score
    /// for 1e-3 to 1e-6, over the pairs of its faces that belong to different persons (README, "Scores").
    /// Reads the stored embeddings (the server may be running). Exit status 0, or 2 when it could not run.
    Calibrate {
        /// The group (GroupId).
        #[arg(long)]
        group: String,
        #[arg(long, env = "IAI_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
        /// The shared PostgreSQL database of several replicas (default: the SQLite file in the data
        /// directory).
        #[arg(long, env = "IAI_DATABASE_URL")]
        database_url: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The audit trail: `audit export --since 2026-11-25T00:00:00Z` writes its calls as JSON lines.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Exit 0 when the server answers `/ready` with 200 (for container health checks).
    Healthcheck {
        /// Default: http://<IAI_LISTEN, with 0.0.0.0 as 127.0.0.1>/ready.
        #[arg(long)]
        url: Option<String>,
    },
}

/// Command-line flags; each overrides the setting of the same name.
#[derive(Debug, clap::Parser, Serialize)]
#[command(
    name = "iai-server",
    version,
    about = "A self-hosted server for Tencent Cloud's IAI face API"
)]
pub struct Cli {
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,
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
    /// PostgreSQL for several replicas (`postgres://user@host/db`); default: SQLite in the data directory.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
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
        config.qps.validate().map_err(anyhow::Error::msg)?;
        config.replay_protection.mode()?;
        Ok(config)
    }

    /// Where other replicas and tools reach this one: `advertise_address`, else `listen` with an
    /// unspecified host replaced by the host name.
    pub fn advertised(&self) -> String {
        if let Some(address) = self.advertise_address.as_ref().filter(|a| !a.is_empty()) {
            return address.clone();
        }
        match self.listen.rsplit_once(':') {
            Some(("0.0.0.0" | "[::]" | "", port)) => format!("{}:{port}", host_name()),
            _ => self.listen.clone(),
        }
    }

    /// This replica's name: `replica_id`, else the host name and the listening port.
    pub fn replica_name(&self) -> String {
        if let Some(id) = self.replica_id.as_ref().filter(|id| !id.is_empty()) {
            return id.clone();
        }
        let port = self.listen.rsplit(':').next().unwrap_or_default();
        format!("{}:{port}", host_name())
    }

    pub fn decode_budget(&self) -> u64 {
        self.decode_budget_bytes
            .unwrap_or_else(default_decode_budget)
    }

    pub fn body_budget(&self) -> u64 {
        self.body_budget_bytes.unwrap_or_else(default_body_budget)
    }

    pub fn url_policy(&self) -> crate::face::download::UrlPolicy {
        crate::face::download::UrlPolicy {
            allow_private: self.url_allow_private,
            allowed_hosts: self.url_allowed_hosts.clone(),
            timeout: std::time::Duration::from_secs(self.url_timeout_secs),
            max_bytes: crate::face::image_input::MAX_BASE64_BYTES / 4 * 3,
            proxy: self.url_proxy.clone().filter(|p| !p.is_empty()),
        }
    }

    /// The keys that sign calls (`[[keys]]` and the environment's), or `None` when signature checking is
    /// off.
    pub fn signing_keys(&self) -> anyhow::Result<Option<Vec<ApiKey>>> {
        if self.disable_signature_check {
            return Ok(None);
        }
        let mut keys = self.keys.clone();
        // An empty variable (compose passes an unset `${IAI_SECRET_ID}` as empty) is no key.
        let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        match (given(&self.secret_id), given(&self.secret_key)) {
            (Some(id), Some(key)) => keys.push(ApiKey {
                secret_id: id,
                secret_key: key,
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
        Ok(Some(keys))
    }
}

/// This machine's (or container's) host name; `localhost` when it cannot be read.
fn host_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    if host.is_empty() {
        "localhost".into()
    } else {
        host
    }
}

/// One API key pair. A key with a `token` only accepts calls that carry that token (temporary credentials).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ApiKey {
    pub secret_id: String,
    pub secret_key: String,
    #[serde(default)]
    pub token: Option<String>,
}

/// Which second uses of a signature are refused (`wire::replay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMode {
    /// For an action that changes stored state.
    Writes,
    /// Also for another read-only action.
    Strict,
}

/// `replay_protection`: a switch or a mode's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReplaySetting {
    Switch(bool),
    Mode(String),
}

impl ReplaySetting {
    /// The mode, `None` when off.
    pub fn mode(&self) -> anyhow::Result<Option<ReplayMode>> {
        Ok(match self {
            Self::Switch(false) => None,
            Self::Switch(true) => Some(ReplayMode::Writes),
            Self::Mode(m) => match m.to_ascii_lowercase().as_str() {
                "off" | "false" => None,
                "writes" | "true" | "on" => Some(ReplayMode::Writes),
                "strict" => Some(ReplayMode::Strict),
                other => bail!(
                    "replay_protection = `{other}`: use \"writes\" (the default), \"strict\" or false"
                ),
            },
        })
    }
}

/// Tencent's limit of every interface group under per-call billing.
pub const DEFAULT_GROUP_QPS: u32 = 50;
/// Tencent's limit of UpgradeGroupFaceModelVersion.
pub const DEFAULT_UPGRADE_QPS: u32 = 10;
/// The configuration key of the upgrade sub-limit.
pub const UPGRADE_KEY: &str = "upgrade_group_face_model_version";
/// The configuration key of CAM's own calls (one limit for all of them, 50 by default).
pub const CAM_KEY: &str = "cam";

/// `[qps]` in the configuration: `<group> = n` for everyone, `[qps.users.<name>]` for one sub-user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QpsConfig {
    #[serde(flatten)]
    pub groups: BTreeMap<String, u32>,
    pub users: BTreeMap<String, BTreeMap<String, u32>>,
}

impl QpsConfig {
    /// Refuse unknown keys at start, so that a misspelt limit is not silently the default.
    pub fn validate(&self) -> Result<(), String> {
        let known = |key: &str| {
            key == UPGRADE_KEY
                || key == CAM_KEY
                || InterfaceGroup::ALL.iter().any(|g| g.key() == key)
        };
        let keys = self.groups.keys().map(|k| (None, k)).chain(
            self.users
                .iter()
                .flat_map(|(user, m)| m.keys().map(move |k| (Some(user), k))),
        );
        for (user, key) in keys {
            if !known(key) {
                let place = user.map_or("[qps]".to_owned(), |u| format!("[qps.users.{u}]"));
                let names: Vec<&str> = InterfaceGroup::ALL.iter().map(|g| g.key()).collect();
                return Err(format!(
                    "{place}: unknown interface group `{key}`; the groups are {}, {UPGRADE_KEY} and {CAM_KEY}",
                    names.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The limit of `key` (an interface group's, or the upgrade sub-limit) for the main account (`user`
    /// None) or a sub-user by name.
    pub fn limit(&self, user: Option<&str>, key: &str, default: u32) -> u32 {
        user.and_then(|u| self.users.get(u))
            .and_then(|m| m.get(key))
            .or_else(|| self.groups.get(key))
            .copied()
            .unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_key_variables_are_no_key_and_say_so() {
        // Compose passes an unset `${IAI_SECRET_ID}` as set but empty.
        let config = Config {
            secret_id: Some(String::new()),
            secret_key: Some(String::new()),
            ..Config::default()
        };
        let error = config.signing_keys().expect_err("no key");
        assert!(
            error
                .to_string()
                .contains("set IAI_SECRET_ID and IAI_SECRET_KEY"),
            "{error}"
        );
        let half = Config {
            secret_id: Some("AKIDx".into()),
            secret_key: Some(String::new()),
            ..Config::default()
        };
        assert!(half.signing_keys().is_err());
    }

    #[test]
    fn the_advertised_address_names_a_reachable_host() {
        let mut config = Config {
            listen: "127.0.0.1:8081".into(),
            ..Config::default()
        };
        assert_eq!(config.advertised(), "127.0.0.1:8081");
        config.listen = "0.0.0.0:8080".into();
        assert_eq!(config.advertised(), format!("{}:8080", host_name()));
        config.listen = "[::]:8080".into();
        assert_eq!(config.advertised(), format!("{}:8080", host_name()));
        config.advertise_address = Some("iai-a:8080".into());
        assert_eq!(config.advertised(), "iai-a:8080");
    }
}
