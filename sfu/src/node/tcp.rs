//! ICE-TCP fallback (RFC 6544) for networks that block UDP.
//!
//! The node advertises a passive TCP host candidate next to its UDP one.
//! Each TCP connection carries RFC 4571 frames (a 16-bit length, then one
//! STUN/DTLS/SRTP datagram). The first frame must be a STUN request whose
//! server ufrag names a participant; from then on the connection's frames go
//! to that participant's worker, tagged with a reply channel the worker uses
//! for what str0m sends back over TCP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};
use veil_media::packet::stun;

use super::batch_io::MAX_DATAGRAM;
use super::receiver::{Datagram, Route};

/// A connection must present a known ufrag within this time (slow-loris guard).
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames queued towards one TCP peer before further ones are dropped.
const REPLY_QUEUE: usize = 512;
/// Most TCP connections open at once; more are refused.
const MAX_CONNECTIONS: usize = 4096;

type Directory = Arc<Mutex<HashMap<String, usize>>>;

pub(crate) fn run(
    listener: std::net::TcpListener,
    workers: Vec<mpsc::Sender<Datagram>>,
    routes: mpsc::UnboundedReceiver<Route>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            warn!("cannot start the ICE-TCP runtime: {e}");
            return;
        }
    };
    runtime.block_on(async move {
        let Ok(listener) = TcpListener::from_std(listener) else {
            warn!("cannot use the ICE-TCP listener");
            return;
        };
        let directory: Directory = Arc::default();
        tokio::spawn(follow_routes(routes, directory.clone()));
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        loop {
            if workers.iter().all(|w| w.is_closed()) {
                return;
            }
            let accepted =
                tokio::time::timeout(Duration::from_millis(500), listener.accept()).await;
            let Ok(Ok((stream, peer))) = accepted else {
                continue;
            };
            if open.load(std::sync::atomic::Ordering::Relaxed) >= MAX_CONNECTIONS {
                metrics::counter!("veil_sfu_dropped_total", "reason" => "tcp_connection_limit")
                    .increment(1);
                continue;
            }
            let _ = stream.set_nodelay(true);
            let (workers, directory, open) = (workers.clone(), directory.clone(), open.clone());
            open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                if let Err(e) = serve(stream, peer, &workers, &directory).await {
                    debug!(%peer, "ICE-TCP connection ended: {e}");
                }
                open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            });
        }
    });
}

async fn follow_routes(mut routes: mpsc::UnboundedReceiver<Route>, directory: Directory) {
    while let Some(route) = routes.recv().await {
        let mut d = directory.lock().unwrap_or_else(|e| e.into_inner());
        match route {
            Route::Add { ufrag, worker } => {
                d.insert(ufrag, worker);
            }
            Route::Remove { ufrag } => {
                d.remove(&ufrag);
            }
        }
    }
}

async fn read_frame(stream: &mut tokio::net::tcp::OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u16().await? as usize;
    if len == 0 || len > MAX_DATAGRAM {
        metrics::counter!("veil_sfu_dropped_total", "reason" => "tcp_bad_frame").increment(1);
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "bad RFC 4571 frame length",
        ));
    }
    let mut frame = vec![0; len];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    workers: &[mpsc::Sender<Datagram>],
    directory: &Directory,
) -> std::io::Result<()> {
    let (mut reader, mut writer) = stream.into_split();
    let first = tokio::time::timeout(FIRST_FRAME_TIMEOUT, read_frame(&mut reader))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "no STUN within the timeout")
        })??;
    let worker = stun::server_ufrag(&first)
        .and_then(|u| {
            directory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(u)
                .copied()
        })
        .ok_or_else(|| {
            metrics::counter!("veil_sfu_dropped_total", "reason" => "unknown_source").increment(1);
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "first frame names no participant",
            )
        })?;
    let Some(worker) = workers.get(worker) else {
        return Ok(());
    };
    let (reply, mut replies) = mpsc::channel::<Vec<u8>>(REPLY_QUEUE);
    let write = tokio::spawn(async move {
        while let Some(frame) = replies.recv().await {
            let Ok(len) = u16::try_from(frame.len()) else {
                continue;
            };
            if writer.write_u16(len).await.is_err() || writer.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let mut frame = first;
    loop {
        let datagram = Datagram {
            source: peer,
            data: frame,
            tcp: Some(reply.clone()),
            received_at: std::time::Instant::now(),
        };
        if worker.send(datagram).await.is_err() {
            break;
        }
        frame = match read_frame(&mut reader).await {
            Ok(frame) => frame,
            Err(_) => break,
        };
    }
    write.abort();
    Ok(())
}
