//! The web console's files (`console/`, embedded at build time by rust-embed: no CDN, no Node.js, works
//! air-gapped), served at `/console/`. The console signs its calls in the browser and sends them to `/`
//! like any client, so it holds no privilege of its own.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "console/"]
struct Assets;

/// `/console` → `/console/` (relative asset paths then resolve under it).
pub async fn root() -> Redirect {
    Redirect::permanent("/console/")
}

pub async fn index() -> Response {
    serve("index.html")
}

pub async fn asset(Path(path): Path<String>) -> Response {
    serve(if path.is_empty() { "index.html" } else { &path })
}

fn serve(path: &str) -> Response {
    match Assets::get(path) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, file.metadata.mimetype().to_owned()),
                // Always revalidated, so an upgraded server never runs a stale console.
                (header::CACHE_CONTROL, "no-cache".to_owned()),
                (
                    header::ETAG,
                    format!("\"{}\"", hex::encode(file.metadata.sha256_hash())),
                ),
                (
                    header::HeaderName::from_static("x-content-type-options"),
                    "nosniff".to_owned(),
                ),
                // The console loads nothing from elsewhere and talks only to this origin.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
                     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
                     form-action 'none'"
                        .to_owned(),
                ),
                (header::REFERRER_POLICY, "no-referrer".to_owned()),
            ],
            Body::from(file.data.into_owned()),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_is_embedded_with_its_type() {
        let index = serve("index.html");
        assert_eq!(index.status(), StatusCode::OK);
        assert!(
            index.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(serve("no/such/file").status(), StatusCode::NOT_FOUND);
    }
}
