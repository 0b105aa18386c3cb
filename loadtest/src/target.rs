//! What the load goes against: a server at a URL, or one started in this
//! process (`--embedded`); how participants get tokens; and how the SFU's
//! own figures are read.

use std::net::SocketAddr;
use std::sync::Mutex;

use anyhow::{Context, bail};
use metrics_exporter_prometheus::PrometheusHandle;
use sfu::{Sfu, SfuConfig, SfuNode};
use signalling::auth::{Authenticator, Grants, TokenRequest, random_secret};
use signalling::server::{AppState, router};

/// One reading of the SFU's counters (totals since it started).
#[derive(Debug, Clone, Default)]
pub struct SfuSample {
    /// RTP packets received.
    pub packets_in: f64,
    /// RTP packets forwarded.
    pub packets_out: f64,
    /// RTP bytes received.
    pub bytes_in: f64,
    /// RTP bytes forwarded.
    pub bytes_out: f64,
    /// NACKs received.
    pub nacks: f64,
    /// CPU seconds the SFU used.
    pub cpu_seconds: Option<f64>,
    /// Resident memory, bytes.
    pub resident_bytes: Option<f64>,
    /// The transit-time histogram's cumulative buckets
    /// (`sfu::telemetry::buckets_in`), summed over nodes.
    pub transit: Vec<(f64, f64)>,
}

enum Tokens {
    /// Minted here with the server's API key and secret.
    Mint { auth: Authenticator, key: String },
    /// Asked of the server (open-room mode, dev servers).
    Open { base: String, http: reqwest::Client },
}

enum Metrics {
    /// The SFU runs in this process: its counters are in our recorder and
    /// its CPU is that of its `sfu-` threads.
    Embedded(PrometheusHandle),
    /// Scraped from these `/metrics` URLs (one per SFU node).
    Remote(Vec<String>, reqwest::Client),
    /// Not available.
    None,
}

/// Where the participants go.
pub struct Target {
    /// Signalling WebSocket URLs; participants spread over them.
    pub servers: Vec<String>,
    /// The SFU's UDP address, for the impairment proxies.
    pub media_addr: Option<SocketAddr>,
    tokens: Tokens,
    metrics: Metrics,
    _sfu: Option<Sfu>,
}

/// The process-wide metrics recorder (installed once, on first use).
fn recorder() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut slot = HANDLE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = slot.as_ref() {
        return Ok(h.clone());
    }
    let handle =
        sfu::telemetry::with_buckets(metrics_exporter_prometheus::PrometheusBuilder::new())?
            .install_recorder()
            .context("installing the metrics recorder")?;
    *slot = Some(handle.clone());
    Ok(handle)
}

impl Target {
    /// Starts signalling and an SFU in this process on loopback.
    pub async fn embedded() -> anyhow::Result<Target> {
        let handle = recorder()?;
        let sfu = Sfu::start(SfuConfig {
            tcp_bind: None,
            max_participants_per_room: 10_000,
            // Forward every voice, so audio loss is measured on every stream.
            loudest_audio_threshold: usize::MAX,
            ..SfuConfig::default()
        })
        .context("starting the embedded SFU")?;
        let media_addr = Some(sfu.udp_addr());
        let node = SfuNode::from(&sfu);
        let mut target = Self::signalling_for(node, Metrics::Embedded(handle)).await?;
        target.media_addr = media_addr;
        target._sfu = Some(sfu);
        Ok(target)
    }

    /// Starts signalling in this process in front of an SFU node that runs
    /// elsewhere (its own process, reached through its control API), reading
    /// the node's figures from `metrics_urls`. Benchmarks use this so the
    /// SFU's CPU is the SFU's alone.
    pub async fn in_front_of(node: SfuNode, metrics_urls: Vec<String>) -> anyhow::Result<Target> {
        let metrics = Metrics::Remote(metrics_urls, http_client()?);
        Self::signalling_for(node, metrics).await
    }

    async fn signalling_for(node: SfuNode, metrics: Metrics) -> anyhow::Result<Target> {
        let key = "loadtest".to_string();
        let secret = random_secret();
        let auth = Authenticator::new([(key.as_str(), secret.as_str())])?;
        let state = AppState::new(
            Authenticator::new([(key.as_str(), secret.as_str())])?,
            node,
            None,
        )
        .with_max_connections_per_ip(1_000_000);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        // Every simulated participant comes from one address: lift the
        // per-IP caps that would meet a real crowd behind one NAT.
        let limits = signalling::listener::Limits {
            max_connections_per_ip: 1_000_000,
            ..Default::default()
        };
        tokio::spawn(signalling::listener::serve(
            listener,
            router(state),
            limits,
            std::future::pending(),
        ));
        Ok(Target {
            servers: vec![format!("ws://{addr}/ws")],
            media_addr: None,
            tokens: Tokens::Mint { auth, key },
            metrics,
            _sfu: None,
        })
    }

    /// A running deployment: `urls` are its signalling base URLs
    /// (`http://host:port`). With an API key and secret tokens are minted
    /// here; without, they are asked of the server's `POST /token`.
    pub fn remote(
        urls: &[String],
        credentials: Option<(String, String)>,
        media_addr: Option<SocketAddr>,
        metrics_urls: Vec<String>,
    ) -> anyhow::Result<Target> {
        if urls.is_empty() {
            bail!("give --url (one or more) or --embedded");
        }
        let http = http_client()?;
        let servers = urls
            .iter()
            .map(|u| {
                let base = u.trim_end_matches('/');
                let ws = base
                    .replacen("https://", "wss://", 1)
                    .replacen("http://", "ws://", 1);
                format!("{ws}/ws")
            })
            .collect();
        let tokens = match credentials {
            Some((key, secret)) => Tokens::Mint {
                auth: Authenticator::new([(key.as_str(), secret.as_str())])?,
                key,
            },
            None => Tokens::Open {
                base: urls[0].trim_end_matches('/').to_string(),
                http: http.clone(),
            },
        };
        let metrics = if metrics_urls.is_empty() {
            Metrics::None
        } else {
            Metrics::Remote(metrics_urls, http)
        };
        Ok(Target {
            servers,
            media_addr,
            tokens,
            metrics,
            _sfu: None,
        })
    }

    /// Whether the SFU runs in this process (`--embedded`).
    pub fn is_embedded(&self) -> bool {
        matches!(self.metrics, Metrics::Embedded(_))
    }

    /// Where the SFU figures come from, for the report.
    pub fn metrics_source(&self) -> String {
        match &self.metrics {
            Metrics::Embedded(_) => "embedded".into(),
            Metrics::Remote(urls, _) => urls.join(" "),
            Metrics::None => "none (give --sfu-metrics)".into(),
        }
    }

    /// A token for `identity` in `room`, and the identity it names (an
    /// open-room server picks the identity itself).
    pub async fn token(&self, room: &str, identity: &str) -> anyhow::Result<(String, String)> {
        match &self.tokens {
            Tokens::Mint { auth, key } => {
                let request = TokenRequest::new(identity, room, Grants::participant());
                Ok((auth.mint(key, request, 24 * 3600)?, identity.to_string()))
            }
            Tokens::Open { base, http } => {
                // The server budgets requests per address (all simulated
                // participants share one): wait as it asks and try again.
                let mut attempts = 0;
                let response = loop {
                    let response = http
                        .post(format!("{base}/token"))
                        .json(&serde_json::json!({ "room": room, "name": identity }))
                        .send()
                        .await?;
                    if response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS || attempts >= 30
                    {
                        break response;
                    }
                    attempts += 1;
                    let wait = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .unwrap_or(1);
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                };
                let reply: serde_json::Value = response
                    .error_for_status()
                    .context(
                        "the server does not hand out tokens; give --api-key and --api-secret",
                    )?
                    .json()
                    .await?;
                let token = reply["token"].as_str().context("no token in reply")?;
                let id = reply["identity"].as_str().context("no identity in reply")?;
                Ok((token.to_string(), id.to_string()))
            }
        }
    }

    /// The SFU's counters now.
    pub async fn sfu_sample(&self) -> SfuSample {
        match &self.metrics {
            Metrics::Embedded(handle) => {
                let mut s = parse_metrics(&handle.render());
                s.cpu_seconds = sfu::process::threads_cpu_seconds("sfu-");
                s.resident_bytes = sfu::process::resident_bytes().map(|b| b as f64);
                s
            }
            Metrics::Remote(urls, http) => {
                let mut total = SfuSample::default();
                let mut texts = String::new();
                for url in urls {
                    let Ok(text) = async { http.get(url).send().await?.text().await }.await else {
                        continue;
                    };
                    let s = parse_metrics(&text);
                    texts.push_str(&text);
                    texts.push('\n');
                    total.packets_in += s.packets_in;
                    total.packets_out += s.packets_out;
                    total.bytes_in += s.bytes_in;
                    total.bytes_out += s.bytes_out;
                    total.nacks += s.nacks;
                    total.cpu_seconds = add(total.cpu_seconds, s.cpu_seconds);
                    total.resident_bytes = add(total.resident_bytes, s.resident_bytes);
                }
                // One parse of all nodes' text sums their buckets.
                total.transit = sfu::telemetry::buckets_in(&texts, sfu::telemetry::TRANSIT_SECONDS);
                total
            }
            Metrics::None => SfuSample::default(),
        }
    }
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x + y),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Sums every series of the metrics we use from Prometheus text.
pub fn parse_metrics(text: &str) -> SfuSample {
    let mut s = SfuSample::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        match name {
            "veil_sfu_rtp_in_total" => s.packets_in += value,
            "veil_sfu_rtp_forwarded_total" => s.packets_out += value,
            "veil_sfu_rtp_bytes_in_total" => s.bytes_in += value,
            "veil_sfu_rtp_bytes_out_total" => s.bytes_out += value,
            "veil_sfu_nacks_total" => s.nacks += value,
            "veil_sfu_process_cpu_seconds" => s.cpu_seconds = Some(value),
            "veil_sfu_process_resident_bytes" => s.resident_bytes = Some(value),
            _ => {}
        }
    }
    s.transit = sfu::telemetry::buckets_in(text, sfu::telemetry::TRANSIT_SECONDS);
    s
}

/// HTTP for tokens and metrics: a server that stops answering must not
/// stall the run, whose loop waits for each scrape.
fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(5))
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_is_summed_over_labels() {
        let text = "# TYPE veil_sfu_nacks_total counter\n\
                    veil_sfu_nacks_total{direction=\"in\"} 3\n\
                    veil_sfu_nacks_total{direction=\"out\"} 4\n\
                    veil_sfu_rtp_forwarded_total 1000\n\
                    veil_sfu_process_cpu_seconds 2.5\n\
                    garbage line\n";
        let s = parse_metrics(text);
        assert_eq!(
            (s.nacks, s.packets_out, s.cpu_seconds),
            (7.0, 1000.0, Some(2.5))
        );
    }
}
