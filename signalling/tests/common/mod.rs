//! Test harness: the signalling server in-process with a real SFU node, and
//! Rust clients speaking the WebSocket protocol over loopback.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sfu::{Sfu, SfuConfig, SfuNode};
use signalling::auth::{Authenticator, Grants, TokenRequest};
use signalling::client::{ConnectError, ConnectOptions, Connection};
use signalling::server::{AppState, router};
use veil_client::ClientConfig;

pub const KEY: &str = "test";
pub const SECRET: &str = "ws-test-secret-0123456789abcdef012345";

pub fn auth() -> Authenticator {
    Authenticator::new([(KEY, SECRET)]).unwrap()
}

pub fn token(identity: &str, room: &str, grants: Grants, ttl: u64) -> String {
    auth()
        .mint(KEY, TokenRequest::new(identity, room, grants), ttl)
        .unwrap()
}

pub async fn start_server() -> SocketAddr {
    start_server_with(false).await
}

/// With `open_rooms`, `POST /token` mints tokens with the test key.
pub async fn start_server_with(open_rooms: bool) -> SocketAddr {
    start_server_opts(open_rooms, signalling::server::DEFAULT_RESUME_GRACE).await
}

/// Full control: open rooms, and the resume grace period.
pub async fn start_server_opts(open_rooms: bool, grace: Duration) -> SocketAddr {
    start_server_state(|s| {
        let s = s.with_resume_grace(grace);
        if open_rooms {
            s.with_open_rooms("test")
        } else {
            s
        }
    })
    .await
}

/// Serves `state` on a free loopback port, with the production listener
/// limits.
pub async fn serve(state: AppState) -> SocketAddr {
    signalling::listener::spawn(([127, 0, 0, 1], 0).into(), router(state))
        .await
        .unwrap()
}

/// A server whose state `configure` adjusts.
pub async fn start_server_state(configure: impl FnOnce(AppState) -> AppState) -> SocketAddr {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let sfu = Sfu::start(SfuConfig::default()).unwrap();
    let state = configure(AppState::new(auth(), SfuNode::from(&sfu), None));
    // The node lives as long as the test's runtime.
    tokio::spawn(async move {
        let _sfu = sfu;
        std::future::pending::<()>().await
    });
    serve(state).await
}

/// An admin token for every room (`None`) or for one.
pub fn admin_token(room: Option<&str>) -> String {
    let request = TokenRequest {
        identity: "ops".into(),
        name: None,
        room: room.map(String::from),
        grants: Grants {
            admin: true,
            ..Grants::default()
        },
    };
    auth().mint(KEY, request, 600).unwrap()
}

/// `who` with audio only and the room's passphrase "p".
pub fn audio_only(who: &str, room: &str) -> ClientConfig {
    let mut c = ClientConfig::new(
        who,
        room,
        veil_client::RoomSecret::from_passphrase(room, "p"),
    );
    c.video = None;
    c
}

/// [`audio_only`] `who`, joined to `room` with a participant token.
pub async fn join_audio(addr: SocketAddr, room: &str, who: &str) -> Connection {
    join(
        addr,
        Some(token(who, room, Grants::participant(), 600)),
        audio_only(who, room),
    )
    .await
    .unwrap_or_else(|e| panic!("{who} joins {room}: {e}"))
}

/// A Rust participant speaking the signalling protocol (the SDK in
/// `signalling::client`). `Err(code)` when the join is refused.
pub async fn join(
    addr: SocketAddr,
    token: Option<String>,
    config: ClientConfig,
) -> Result<Connection, String> {
    let servers = vec![format!("ws://{addr}/ws")];
    let options = ConnectOptions::new(servers, token.unwrap_or_default(), config);
    match Connection::connect(options).await {
        Ok(connection) => Ok(connection),
        Err(ConnectError::Refused { code, .. }) => Err(code),
        Err(e) => Err(e.to_string()),
    }
}

/// Audio frames `c` decrypted from `from` in its current media session.
pub fn heard(c: &Connection, from: &str) -> u64 {
    c.with_stats(|s| {
        s.remote
            .get(&(from.to_string(), "audio"))
            .map_or(0, |r| r.frames_decrypted)
    })
}

pub async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// `web/`, where the browser test scripts live, with playwright-core
/// installed (`npm ci --prefix web`; `bash .ci/run` does it).
pub fn web_dir() -> PathBuf {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web");
    assert!(
        web.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run `npm ci --prefix web` (bash .ci/run does)"
    );
    web
}

/// Runs `node tests/<script> <args>` in [`web_dir`] with `env` and returns
/// the JSON object it printed last (the scripts' `runScript` prints it).
pub async fn browser_script(
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> serde_json::Value {
    let output = tokio::process::Command::new("node")
        .arg(format!("tests/{script}"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(web_dir())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(timeout, output)
        .await
        .expect("the browser script finishes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| {
            panic!(
                "no JSON from the browser script\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}
