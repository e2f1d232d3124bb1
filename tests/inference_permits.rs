//! The inference permit belongs to the model call, not to the request: a request dropped while its model
//! call runs must not let another call start beside it (which would oversubscribe the cores the permits
//! exist to protect). Runs on the real pipeline (the pinned models in `models/`).

use std::sync::Arc;
use std::time::Duration;

use iai_server::face::{FaceError, FacePipeline, PipelineConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_keeps_its_permit_until_the_model_call_returns() {
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let pipeline = Arc::new(
        FacePipeline::load(
            &models,
            &PipelineConfig {
                intra_threads: 1,
                max_concurrent: 1,
                decode_budget_bytes: 1 << 28,
                retired_models: Vec::new(),
            },
        )
        .expect("models: run `python3 tools/fetch_models.py`"),
    );
    let gate = pipeline.inference_gate().clone();
    let running = tokio::spawn({
        let pipeline = pipeline.clone();
        async move {
            pipeline
                .run(|_| {
                    // Stands for a long model call.
                    std::thread::sleep(Duration::from_millis(600));
                    Ok::<_, FaceError>(())
                })
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(gate.in_use(), 1);
    // The client goes away: the request's future is dropped while the call still runs.
    running.abort();
    let _ = running.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        gate.in_use(),
        1,
        "the permit was freed while the model call still ran"
    );
    let next = tokio::time::timeout(Duration::from_millis(100), gate.enter()).await;
    assert!(
        next.is_err(),
        "a second call started beside the running one"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        gate.in_use(),
        0,
        "the permit came back when the call returned"
    );
}
