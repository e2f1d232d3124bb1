//! iai-server: a self-hosted server that speaks Tencent Cloud's face recognition API (IAI 2018-03-01).
//!
//! Layers, lowest first (README, "Layout", says what each owns; `tools/check_layers.py` checks that each
//! imports only those below it and that no two modules import each other):
//! - `admission`: the gates that bound memory and CPU work in flight;
//! - `api`: the API models (IAI's and CAM's, generated), the service traits, error codes;
//! - `face`: images, detection, alignment, embeddings and scores with ONNX models;
//! - `config`: the configuration, as plain data;
//! - `store`: persistence behind one interface (SQLite, PostgreSQL) and the ordered change log;
//! - `index`: the in-memory search index, a follower of the change log;
//! - `jobs`: background work persisted in the store (model moves, duplicate checks, result files);
//! - `audit`: the audit trail, written in batches off the request path;
//! - `wire`: HTTP, signatures, parameter parsing, limits, the envelope, and the interfaces it calls;
//! - `cam`: Tencent's CAM API and the access control the wire asks;
//! - `actions`: the `Iai` implementation, with the service's rules and error codes;
//! - `check_index`: the operator tool that compares a running server's index with its database.
//!
//! This file and `main.rs` assemble them.

pub mod actions;
pub mod admission;
pub mod api;
pub mod audit;
pub mod cam;
pub mod check_index;
pub mod config;
pub mod face;
pub mod index;
pub mod jobs;
pub mod store;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use wire::server::{AppState, WireConfig};

/// Connect to the shared PostgreSQL database, retrying until it answers (in a deployment the database
/// may start after the replicas). Meanwhile `listener` answers `/health`, `/ready` (503, with the last
/// error) and every call `ServiceUnavailable`. `None` when the server is stopped first.
async fn connect_store(
    url: &str,
    config: &config::Config,
    listener: Arc<tokio::net::TcpListener>,
    limits: wire::listener::ConnectionLimits,
    metrics: wire::telemetry::Metrics,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> Option<store::Store> {
    let replica = store::postgres::follow::Replica {
        id: config.replica_name(),
        address: config.advertised(),
    };
    let waiting = wire::waiting::Waiting::default();
    let (connected, mut answered) = tokio::sync::watch::channel(false);
    let mut stopped = stopping.clone();
    let serving = tokio::spawn(wire::listener::serve(
        listener,
        wire::waiting::router(waiting.clone(), metrics),
        limits,
        async move {
            tokio::select! {
                _ = answered.wait_for(|up| *up) => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
        },
    ));
    let mut wait = Duration::from_millis(500);
    let store = loop {
        match store::Store::connect(url, replica.clone()).await {
            Ok(store) => break Some(store),
            Err(e) => {
                let why = format!("{e:#}");
                tracing::warn!(error = %why, retry_in_ms = wait.as_millis() as u64, "cannot open the PostgreSQL database; retrying");
                waiting.set(why);
                let mut stopping = stopping.clone();
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stopping.wait_for(|stop| *stop) => break None,
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    };
    // The waiting answers end (calls in progress finish) before the service's own take the listener.
    let _ = connected.send(true);
    let _ = serving.await;
    store
}

pub use check_index::SERVER_FILE;

/// Listen, load the store, the index and the models, and serve until the process is stopped. The server
/// listens before it has loaded, so that `/health` and `/ready` answer during a long index rebuild; calls
/// made before then are answered `ServiceUnavailable`.
pub async fn run(config: config::Config) -> anyhow::Result<()> {
    let keys = config
        .signing_keys()?
        .map(|keys| wire::auth::KeyRing::new(keys, config.max_clock_skew_secs));
    if keys.is_none() {
        tracing::warn!("SIGNATURE CHECKING IS OFF: every call is accepted without authentication");
    }
    // First, so that the gates made below report to it.
    let metrics = wire::telemetry::Metrics::install();
    wire::telemetry::set_replica(config.replica_name());
    let listener = Arc::new(
        tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?,
    );
    let address = listener.local_addr()?;
    let limits = wire::listener::ConnectionLimits {
        max_connections: config.max_connections,
        header_timeout: Duration::from_secs(config.header_timeout_secs),
        drain_timeout: Duration::from_secs(30),
    };
    // One signal stops the waiting for the database, the listener and, when it comes first, the loading.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let store = match &config.database_url {
        Some(url) => {
            // Still this replica's own: its address file and `url.key` copy.
            store::private_dir(&config.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    config.data_dir.display()
                )
            })?;
            tracing::info!(%address, "iai-server listening (connecting to the database)");
            let connecting = connect_store(
                url,
                &config,
                listener.clone(),
                limits.clone(),
                metrics.clone(),
                stopping.clone(),
            );
            match connecting.await {
                Some(store) => store,
                None => {
                    tracing::info!("stopped while connecting to the database");
                    return Ok(());
                }
            }
        }
        None => {
            let data_dir = config.data_dir.clone();
            tokio::task::spawn_blocking(move || store::Store::open(&data_dir)).await??
        }
    };
    tracing::info!(database = %store.location(), "store ready");

    let audit = if config.audit_enabled {
        Some(audit::Trail::open(
            store.audit_location(&config.data_dir, &config.replica_name())?,
            config.audit_retention_days,
        )?)
    } else {
        None
    };
    // CAM needs signatures: with checking off there is no caller to authorise.
    let (keys, cam) = match keys {
        Some(keys) => {
            let cam = Arc::new(
                cam::CamService::open(store.clone(), config.owner_uin, keys.configured_ids())
                    .await?,
            );
            (Some(keys.with_stored_keys(cam.clone())), Some(cam))
        }
        None => (None, None),
    };
    let state = AppState::<actions::IaiService>::new(
        WireConfig {
            keys,
            max_body_bytes: config.max_body_bytes,
            body_budget_bytes: config.body_budget(),
            body_timeout: Duration::from_secs(config.body_timeout_secs),
            body_idle_timeout: Duration::from_secs(config.body_idle_timeout_secs),
            qps: config.qps.clone(),
            qps_share: {
                let store = store.clone();
                Arc::new(move || store.sharing_replicas())
            },
            replay_protection: config.replay_protection.mode()?,
            auth_failures_per_second: config.auth_failures_per_second,
        },
        metrics,
        cam.clone()
            .map(|cam| -> Arc<dyn wire::server::CamBackend> { cam }),
        audit.clone(),
    );
    tracing::info!(%address, "iai-server listening (loading the index and models)");
    let server_file = ServerFile::write(&config.data_dir, address);
    let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let serving = tokio::spawn(wire::listener::serve(
        listener,
        wire::server::router(state.clone()),
        limits,
        stopped(stopping.clone()),
    ));

    let started = std::time::Instant::now();
    // Groups whose network is no longer their version's current one start moving to it; the retired
    // networks they still serve are loaded for their searches meanwhile.
    let retired_models = jobs::plan_network_changes(&store).await?;
    let links = Arc::new(if store.is_shared() {
        jobs::links::Links::shared(&config.data_dir, store.clone()).await?
    } else {
        jobs::links::Links::open(&config.data_dir)?
    });
    let pipeline_config = face::PipelineConfig {
        intra_threads: config.inference_threads,
        max_concurrent: config.max_concurrent_inference,
        decode_budget_bytes: config.decode_budget(),
        retired_models,
    };
    let models_dir = config.models_dir.clone();
    let loading = async {
        tokio::join!(
            store.follow(index::Indexes::load),
            tokio::task::spawn_blocking(move || face::FacePipeline::load(
                &models_dir,
                &pipeline_config
            )),
        )
    };
    let (indexes, faces) = tokio::select! {
        loaded = loading => loaded,
        () = stopped(stopping) => {
            tracing::info!("stopped while loading");
            serving.await?;
            store.leave(&config.replica_name()).await;
            return Ok(());
        }
    };
    let indexes = indexes?;
    let faces = Arc::new(faces??);
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        models = %config.models_dir.display(),
        decode_budget_bytes = config.decode_budget(),
        body_budget_bytes = config.body_budget(),
        "search index rebuilt from the store and face models loaded: ready"
    );
    let downloader = face::download::Downloader::new(config.url_policy());
    jobs::similar::set_throttle(config.similar_max_pairs_per_second);
    let jobs = jobs::Jobs::new(
        store.clone(),
        indexes.clone(),
        faces.clone(),
        links,
        jobs::Pace {
            batch_persons: config.reembed_batch_persons.max(1),
            pause: std::time::Duration::from_millis(config.reembed_pause_ms),
        },
        config.replica_name(),
    );
    jobs.start();
    let console = actions::ConsoleContext {
        audit,
        qps: config.qps.clone(),
        directory: cam.as_ref().map(|c| c.directory().clone()),
    };
    let leaving = store.clone();
    state.set_service(Arc::new(
        actions::IaiService::new(store, indexes, faces, downloader, jobs, console)
            .with_max_staleness(Duration::from_millis(config.max_staleness_ms)),
    ));
    serving.await?;
    leaving.leave(&config.replica_name()).await;
    drop(server_file);
    Ok(())
}

/// `server.json` in the data directory while the server runs: its address and process id.
struct ServerFile(PathBuf);

impl ServerFile {
    fn write(data_dir: &Path, address: std::net::SocketAddr) -> Option<Self> {
        let path = data_dir.join(SERVER_FILE);
        let text = serde_json::json!({"address": address.to_string(), "pid": std::process::id()});
        match std::fs::write(&path, text.to_string()) {
            Ok(()) => Some(Self(path)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot record the server address");
                None
            }
        }
    }
}

impl Drop for ServerFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
