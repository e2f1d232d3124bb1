//! ONNX Runtime, loaded at start from `models/lib/libonnxruntime.so` (the PyPI wheel onnxruntime==1.31.1),
//! and the model files of `models/manifest.json`, each checked against its pinned sha256 before use.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ort::environment::Environment;
use ort::logging::LogLevel;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

const FIX: &str = "run `python3 tools/fetch_models.py` to fetch the pinned files";

/// The pinned files, read from `models/manifest.json`.
pub struct Manifest {
    dir: PathBuf,
    /// (file, accepted sha256s): the pinned hash, and for a fingerprinted file the hash of a local rebuild.
    entries: Vec<(String, Vec<String>)>,
    runtime: (String, Vec<String>),
}

impl Manifest {
    pub fn load(models_dir: &Path) -> anyhow::Result<Self> {
        let path = models_dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}: is --models-dir right?", path.display()))?;
        let doc: serde_json::Value =
            serde_json::from_str(&text).context("models/manifest.json is not valid JSON")?;
        // Files rebuilt here from upstream whose fingerprint matched the pinned one (tools/fetch_models.py):
        // converters name nodes differently on every run, so their bytes have their own sha256.
        let rebuilt: serde_json::Value = std::fs::read_to_string(models_dir.join("rebuilt.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let pair = |v: &serde_json::Value| -> Option<(String, Vec<String>)> {
            let file = v["file"].as_str()?.to_owned();
            let mut hashes = vec![v["sha256"].as_str()?.to_owned()];
            if v.get("fingerprint").is_some() {
                hashes.extend(rebuilt[&file].as_str().map(str::to_owned));
            }
            Some((file, hashes))
        };
        let runtime = pair(&doc["onnxruntime"]).context("manifest: onnxruntime entry")?;
        let entries = doc["models"]
            .as_array()
            .context("manifest: models list")?
            .iter()
            .map(|m| pair(m).context("manifest: model entry without file/sha256"))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            dir: models_dir.to_owned(),
            entries,
            runtime,
        })
    }

    /// The verified path of a pinned file.
    pub fn verified(&self, file: &str) -> anyhow::Result<PathBuf> {
        let (name, hashes) = std::iter::once(&self.runtime)
            .chain(&self.entries)
            .find(|(name, _)| name == file)
            .with_context(|| format!("{file} is not in models/manifest.json"))?;
        let path = self.dir.join(name);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("{} is missing: {FIX}", path.display()))?;
        let got = hex::encode(Sha256::digest(&bytes));
        if !hashes.contains(&got) {
            bail!(
                "{} has sha256 {got}, but the manifest pins {}: {FIX}",
                path.display(),
                hashes.join(" or ")
            );
        }
        Ok(path)
    }

    /// Load ONNX Runtime itself; must happen once, before any session is made.
    pub fn init_runtime(&self) -> anyhow::Result<Environment> {
        let path = self.verified(&self.runtime.0)?;
        let env = ort::init_from(&path)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot load ONNX Runtime from {}: {e}: {FIX}",
                    path.display()
                )
            })?
            .with_name("iai-server")
            .with_logger(std::sync::Arc::new(ort_log))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start ONNX Runtime: {e}"))?;
        Ok(env)
    }
}

/// ONNX Runtime's own log lines, one level down: its INFO lines (a couple of thousand at start, one per
/// graph transformation) are debug detail here; warnings and errors stay what they are.
fn ort_log(level: LogLevel, category: &str, _id: &str, location: &str, message: &str) {
    match level {
        LogLevel::Verbose => tracing::trace!(target: "ort", category, location, "{message}"),
        LogLevel::Info => tracing::debug!(target: "ort", category, location, "{message}"),
        LogLevel::Warning => tracing::warn!(target: "ort", category, location, "{message}"),
        LogLevel::Error | LogLevel::Fatal => {
            tracing::error!(target: "ort", category, location, "{message}")
        }
    }
}

/// One loaded model: `copies` sessions of it, because an ONNX Runtime session runs with `&mut self`. With one
/// session per admitted model call (the inference gate's size), concurrent requests never queue behind each
/// other on the same model; each call uses `intra_threads` threads. The networks are small (the largest,
/// dlib's, holds 23 MB of weights), so the copies cost little memory.
pub struct Model {
    sessions: Vec<Mutex<Session>>,
    next: std::sync::atomic::AtomicUsize,
    pub name: String,
}

impl Model {
    pub fn load(
        env: &Environment,
        manifest: &Manifest,
        file: &str,
        intra_threads: usize,
    ) -> anyhow::Result<Self> {
        Self::load_copies(env, manifest, file, intra_threads, 1)
    }

    pub fn load_copies(
        env: &Environment,
        manifest: &Manifest,
        file: &str,
        intra_threads: usize,
        copies: usize,
    ) -> anyhow::Result<Self> {
        let path = manifest.verified(file)?;
        let sessions = (0..copies.max(1))
            .map(|_| {
                Session::builder(env)
                    .and_then(|b| {
                        b.with_optimization_level(GraphOptimizationLevel::Level3)
                            .map_err(Into::into)
                    })
                    .and_then(|b| b.with_intra_threads(intra_threads).map_err(Into::into))
                    .and_then(|mut b| b.commit_from_file(&path))
                    .map(Mutex::new)
                    .map_err(|e| anyhow::anyhow!("cannot load the model {}: {e}", path.display()))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            sessions,
            next: std::sync::atomic::AtomicUsize::new(0),
            name: file.to_owned(),
        })
    }

    /// A free session, or (all busy: more callers than copies) the next one in turn.
    fn session(&self) -> parking_lot::MutexGuard<'_, Session> {
        if let Some(free) = self.sessions.iter().find_map(|s| s.try_lock()) {
            return free;
        }
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.sessions[turn % self.sessions.len()].lock()
    }

    /// Run with one float input; returns every output as (shape, data), in the model's output order.
    pub fn run(
        &self,
        input: (Vec<usize>, Vec<f32>),
    ) -> anyhow::Result<Vec<(Vec<usize>, Vec<f32>)>> {
        let tensor = ort::value::Tensor::from_array(input)?;
        let mut session = self.session();
        let started = std::time::Instant::now();
        let outputs = session.run(ort::inputs![tensor])?;
        metrics::histogram!("iai_inference_duration_seconds", "model" => self.name.clone())
            .record(started.elapsed().as_secs_f64());
        let mut out = Vec::with_capacity(outputs.len());
        for (_, value) in outputs.iter() {
            let (shape, data) = value.try_extract_tensor::<f32>()?;
            out.push((shape.iter().map(|&d| d as usize).collect(), data.to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprinted_file_may_have_the_hash_of_a_local_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = b"rebuilt model bytes";
        let local = hex::encode(Sha256::digest(bytes));
        std::fs::write(dir.path().join("m.onnx"), bytes).unwrap();
        let manifest = serde_json::json!({
            "onnxruntime": {"file": "lib.so", "sha256": "00"},
            "models": [
                {"file": "m.onnx", "sha256": "11", "fingerprint": "ff"},
                {"file": "plain.onnx", "sha256": "22"}
            ]
        });
        std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();
        let refused = Manifest::load(dir.path()).unwrap().verified("m.onnx");
        assert!(refused.unwrap_err().to_string().contains("pins 11"));
        let rebuilt = serde_json::json!({"m.onnx": local, "plain.onnx": local});
        std::fs::write(dir.path().join("rebuilt.json"), rebuilt.to_string()).unwrap();
        assert!(
            Manifest::load(dir.path())
                .unwrap()
                .verified("m.onnx")
                .is_ok()
        );
        // Only fingerprinted entries accept a local rebuild.
        std::fs::write(dir.path().join("plain.onnx"), bytes).unwrap();
        assert!(
            Manifest::load(dir.path())
                .unwrap()
                .verified("plain.onnx")
                .is_err()
        );
    }
}
