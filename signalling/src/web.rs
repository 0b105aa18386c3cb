//! The browser client, served from the binary itself (no build step, nothing
//! to install): `/` and `/r/{room}` give the page, `/app/…` its modules.
//! The files live in `web/src` and are compiled in.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::server::AppState;

const INDEX: &str = include_str!("../../web/src/index.html");

/// (path under `/app/`, content type, contents)
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript",
        include_str!("../../web/src/app.js"),
    ),
    (
        "e2ee-worker.js",
        "text/javascript",
        include_str!("../../web/src/e2ee-worker.js"),
    ),
    (
        "crypto/keys.js",
        "text/javascript",
        include_str!("../../web/src/crypto/keys.js"),
    ),
    (
        "crypto/sframe.js",
        "text/javascript",
        include_str!("../../web/src/crypto/sframe.js"),
    ),
    (
        "style.css",
        "text/css",
        include_str!("../../web/src/style.css"),
    ),
];

/// The page and its assets.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/r/{room}", get(page))
        .route("/app/{*path}", get(asset))
}

fn html(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Keys live in this page: no third-party script may run in it.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; media-src 'self' blob: mediastream:; img-src 'self' data:; connect-src 'self' ws: wss:",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    html(INDEX)
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, content_type, body)) => {
            ([(header::CONTENT_TYPE, *content_type)], *body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
