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
