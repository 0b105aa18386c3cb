//! The `signalling token` command prints tokens the server accepts, and
//! refuses bad input with a clear message.

use std::process::Command;

use signalling::auth::Authenticator;

const SECRET: &str = "cli-test-secret-0123456789abcdef0123";

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_signalling"))
        .args(args)
        .env("VEIL_API_KEY", "cli-key")
        .env("VEIL_API_SECRET", SECRET)
        .output()
        .expect("binary runs")
}

#[test]
fn token_prints_a_verifiable_token() {
    let out = run(&[
        "token",
        "--room",
        "standup",
        "--identity",
        "alice",
        "--name",
        "Alice",
        "--ttl",
        "120",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let auth = Authenticator::new([("cli-key", SECRET)]).unwrap();
    let claims = auth.verify(token.trim(), Some("standup")).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.name.as_deref(), Some("Alice"));
    assert!(claims.grants.publish && !claims.grants.admin);
    assert!(claims.exp - claims.iat == 120);
}

#[test]
fn bad_arguments_get_clear_errors() {
    let out = run(&["token", "--identity", "alice"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--room is required"));

    let out = run(&[
        "token",
        "--room",
        "r",
        "--identity",
        "a",
        "--grants",
        "join,teleport",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown grant \"teleport\""));

    let out = Command::new(env!("CARGO_BIN_EXE_signalling"))
        .args([
            "token",
            "--room",
            "r",
            "--identity",
            "a",
            "--api-key",
            "k",
            "--api-secret",
            "short",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("shorter than 32 bytes"));
}

/// `signalling` with no arguments (README's first command, here on free
/// ports): prints where it serves and working dev credentials, serves the
/// page, metrics and the API, and stops cleanly on SIGTERM.
#[test]
fn the_one_command_server_prints_what_a_newcomer_needs_and_serves_it() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_signalling"))
        .env("VEIL_LISTEN", "127.0.0.1:0")
        .env("VEIL_SFU_UDP", "127.0.0.1:0")
        .env("VEIL_SFU_TCP", "127.0.0.1:0")
        .env_remove("VEIL_API_KEY")
        .env_remove("VEIL_API_SECRET")
        .env_remove("VEIL_REDIS_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("binary runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("Open http://");
        printed.push(line);
        if done || printed.len() > 30 {
            break;
        }
    }
    let text = printed.join("\n");
    let find = |prefix: &str| {
        printed
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{text}"))
            .to_string()
    };
    let base = find("Veil signalling on ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let page = format!(
        "http://{}",
        find("Open http://").split_whitespace().next().unwrap()
    );
    assert_eq!(page, format!("{base}/"), "{text}");
    let creds = find("Dev mode. API key: ");
    let (key, secret) = creds.split_once("  API secret: ").expect("key and secret");
    assert!(text.contains("Open rooms are on"), "{text}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let index = http.get(&page).send().await.unwrap();
        assert_eq!(index.status(), 200);
        assert!(index.text().await.unwrap().contains("<html"));
        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(metrics.status(), 200);
        let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        // The printed credentials administer this server.
        let admin = signalling::auth::Authenticator::new([(key, secret)])
            .unwrap()
            .mint(
                key,
                signalling::auth::TokenRequest {
                    identity: "ops".into(),
                    name: None,
                    room: None,
                    grants: signalling::auth::Grants {
                        admin: true,
                        ..Default::default()
                    },
                },
                60,
            )
            .unwrap();
        let rooms = http
            .get(format!("{base}/api/rooms"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        assert_eq!(rooms.status(), 200);
    });

    let pid = child.id().to_string();
    let term = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(term.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "a clean exit on SIGTERM: {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server stops on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
