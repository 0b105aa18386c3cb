//! The browser client, served from the binary itself (no build step, nothing
//! to install): `/` and `/r/{room}` give the page, `/app/…` its modules.
//! The files live in `web/src` and are compiled in.
//!
//! For work on the page itself, set `VEIL_WEB_DIR=web/src`: the files are
//! then read from that folder on every request, so a reload shows an edit
//! without rebuilding the server. Only the known file names are served.

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
        "frame-pipe.js",
        "text/javascript",
        include_str!("../../web/src/frame-pipe.js"),
    ),
    (
        "invite.js",
        "text/javascript",
        include_str!("../../web/src/invite.js"),
    ),
    (
        "msid.js",
        "text/javascript",
        include_str!("../../web/src/msid.js"),
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
        "crypto/sha256.js",
        "text/javascript",
        include_str!("../../web/src/crypto/sha256.js"),
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

/// The folder that overrides the compiled-in files, if any.
fn web_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("VEIL_WEB_DIR").map(std::path::PathBuf::from)
}

/// A file's current contents: from `VEIL_WEB_DIR` when set, else compiled in.
fn contents(name: &str, compiled: &'static str) -> std::borrow::Cow<'static, str> {
    web_dir()
        .and_then(|dir| std::fs::read_to_string(dir.join(name)).ok())
        .map_or(
            std::borrow::Cow::Borrowed(compiled),
            std::borrow::Cow::Owned,
        )
}

fn html(body: std::borrow::Cow<'static, str>) -> Response {
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
    html(contents("index.html", INDEX))
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((name, content_type, body)) => (
            [(header::CONTENT_TYPE, *content_type)],
            contents(name, body),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
