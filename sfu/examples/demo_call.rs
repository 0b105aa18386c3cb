//! A demo call on this machine: an SFU node on loopback and three bots that
//! publish SFrame-encrypted audio and simulcast video and decrypt each other.
//!
//! ```text
//! cargo run --release -p sfu --example demo_call -- [seconds]
//! ```
//!
//! Every few seconds it prints, per bot, how many frames from each other bot
//! it decrypted and how many failed; the SFU's metrics are on a printed URL.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use veil_client::ClientConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let metrics: std::net::SocketAddr = "127.0.0.1:9464".parse()?;
    let exporter = metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(metrics)
        .install();
    let sfu = common::start_sfu();
    println!("Veil demo: SFU on udp://{}", sfu.udp_addr());
    if exporter.is_ok() {
        println!("SFU metrics: http://{metrics}/metrics");
    }
    let room = "demo";
    println!("Deriving the room key from the passphrase (PBKDF2, 100k rounds)...");
    let key = common::secret(room, "demo passphrase");
    println!("Fingerprint to compare aloud: {}", key.fingerprint());
    let names = ["ada", "grace", "linus"];
    let mut bots = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut config = ClientConfig::new(name, room, key.clone());
        config.record_digests = false;
        config.audio_level = 30 + 20 * i as u8;
        bots.push(common::join(&sfu, config).await);
    }
    println!("Three bots joined room {room:?}; running {seconds} s. Ctrl-C to stop.");
    let mut elapsed = 0;
    while elapsed < seconds {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        elapsed += 5;
        for (name, bot) in names.iter().zip(&bots) {
            let line = bot.with_stats(|s| {
                let mut parts: Vec<String> = s
                    .remote
                    .iter()
                    .map(|((who, kind), r)| {
                        format!(
                            "{who}/{kind}: {} decrypted, {} failed",
                            r.frames_decrypted, r.decrypt_failures
                        )
                    })
                    .collect();
                parts.sort();
                format!("speakers {:?}; {}", s.active_speakers, parts.join("; "))
            });
            println!("[{elapsed:>3}s] {name}: {line}");
        }
    }
    Ok(())
}
