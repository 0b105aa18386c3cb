//! ICE-TCP for the client: one TCP connection to the server's passive
//! candidate, carrying RFC 4571 frames (16-bit length + datagram).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// An open ICE-TCP connection.
pub(crate) struct TcpLink {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    writer: OwnedWriteHalf,
    frames: mpsc::Receiver<Vec<u8>>,
    reader: JoinHandle<()>,
}

impl TcpLink {
    pub async fn connect(remote: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(remote).await?;
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        let (mut reader, writer) = stream.into_split();
        let (tx, frames) = mpsc::channel(1024);
        let reader = tokio::spawn(async move {
            loop {
                let Ok(len) = reader.read_u16().await else {
                    return;
                };
                let mut frame = vec![0; len as usize];
                if reader.read_exact(&mut frame).await.is_err() || tx.send(frame).await.is_err() {
                    return;
                }
            }
        });
        Ok(TcpLink {
            local,
            remote,
            writer,
            frames,
            reader,
        })
    }

    pub async fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        let len =
            u16::try_from(frame.len()).map_err(|_| std::io::Error::other("frame too long"))?;
        let mut framed = Vec::with_capacity(frame.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(frame);
        self.writer.write_all(&framed).await
    }

    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.frames.recv().await
    }
}

impl Drop for TcpLink {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The first passive TCP host candidate in an SDP.
pub(crate) fn passive_tcp_candidate(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|line| {
        let fields: Vec<&str> = line
            .strip_prefix("a=candidate:")?
            .split_whitespace()
            .collect();
        let is_tcp = fields.get(2)?.eq_ignore_ascii_case("tcp");
        let passive = fields
            .windows(2)
            .any(|w| w[0] == "tcptype" && w[1] == "passive");
        if !is_tcp || !passive {
            return None;
        }
        format!("{}:{}", fields.get(4)?, fields.get(5)?)
            .parse()
            .ok()
            .or_else(|| {
                format!("[{}]:{}", fields.get(4)?, fields.get(5)?)
                    .parse()
                    .ok()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_passive_tcp_candidate() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706175 127.0.0.1 5000 typ host\r\n\
                   a=candidate:2 1 tcp 1010827775 127.0.0.1 5001 typ host tcptype passive\r\n";
        assert_eq!(
            passive_tcp_candidate(sdp),
            Some("127.0.0.1:5001".parse().unwrap())
        );
        assert_eq!(
            passive_tcp_candidate("a=candidate:1 1 udp 1 127.0.0.1 5000 typ host"),
            None
        );
        assert_eq!(
            passive_tcp_candidate("a=candidate:2 1 TCP 1 ::1 5001 typ host tcptype passive"),
            Some("[::1]:5001".parse().unwrap())
        );
    }
}
