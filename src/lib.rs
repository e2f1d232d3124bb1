//! iai-server: a self-hosted server that speaks Tencent Cloud's face recognition API (IAI 2018-03-01).
//!
//! Layers, outside in:
//! - `wire`: HTTP, signatures, parameter parsing, the response envelope;
//! - `api`: the API model generated from the specification and the `Iai` trait (one method per action);
//! - `actions`: the `Iai` implementation, with the service's rules and error codes;
//! - `store`: SQLite persistence;
//! - `index`: the in-memory search index, rebuilt from the store at start and following every write;
//! - `face`: images, detection, alignment, embeddings and scores with ONNX models.

pub mod actions;
pub mod api;
pub mod config;
pub mod face;
pub mod index;
pub mod store;
pub mod wire;

use std::sync::Arc;

use anyhow::Context;

/// Open the store and serve until the process is stopped.
pub async fn run(config: config::Config) -> anyhow::Result<()> {
    let keys = config.key_ring()?;
    if keys.is_none() {
        tracing::warn!("SIGNATURE CHECKING IS OFF: every call is accepted without authentication");
    }
    let store = store::Store::open(&config.data_dir)?;
    tracing::info!(database = %store.path().display(), "store ready");
    let started = std::time::Instant::now();
    let indexes = Arc::new(
        store
            .read(|conn| index::Indexes::load(conn).map_err(anyhow::Error::from))
            .await?,
    );
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "search index rebuilt from the store"
    );
    let pipeline_config = face::PipelineConfig {
        intra_threads: config.inference_threads,
        max_concurrent: config.max_concurrent_inference,
    };
    let faces = Arc::new(face::FacePipeline::load(
        &config.models_dir,
        &pipeline_config,
    )?);
    tracing::info!(models = %config.models_dir.display(), "face models loaded");
    let downloader = face::download::Downloader::new(config.url_policy());
    let service = Arc::new(actions::IaiService::new(store, indexes, faces, downloader));
    let app = wire::server::router(
        service,
        wire::server::WireConfig {
            keys,
            max_body_bytes: config.max_body_bytes,
        },
    );
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "iai-server listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
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
