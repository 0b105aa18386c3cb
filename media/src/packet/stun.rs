//! Just enough STUN (RFC 8489) to demultiplex ICE traffic on one UDP port.
//!
//! All participants of a node share one UDP port. The first packet from a new
//! remote address is a STUN binding request whose `USERNAME` attribute is
//! `"<server ufrag>:<client ufrag>"`; the server ufrag identifies the
//! participant. After that the remote address alone is enough.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;
const HEADER_LEN: usize = 20;

/// Returns the local (server-side) ufrag from a STUN request, if the datagram
/// is a STUN message carrying a well-formed `USERNAME` attribute.
///
/// ```
/// # use veil_media::packet::stun::server_ufrag;
/// let mut msg = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xA4, 0x42];
/// msg.extend_from_slice(&[0u8; 12]); // transaction id
/// msg.extend_from_slice(&[0x00, 0x06, 0x00, 0x07]);
/// msg.extend_from_slice(b"abc:xyz\0");
/// assert_eq!(server_ufrag(&msg), Some("abc"));
/// ```
pub fn server_ufrag(datagram: &[u8]) -> Option<&str> {
    if datagram.len() < HEADER_LEN || datagram[0] & 0xC0 != 0 || datagram[4..8] != MAGIC_COOKIE {
        return None;
    }
    let body_len = u16::from_be_bytes([datagram[2], datagram[3]]) as usize;
    let body = datagram.get(HEADER_LEN..HEADER_LEN + body_len)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let value = rest.get(4..4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next().filter(|u| !u.is_empty());
        }
        let padded = (len + 3) & !3;
        rest = rest.get(4 + padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(username: &[u8]) -> Vec<u8> {
        let padded = (username.len() + 3) & !3;
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        m.extend_from_slice(&(username.len() as u16).to_be_bytes());
        m.extend_from_slice(username);
        m.resize(m.len() + padded - username.len(), 0);
        m
    }

    #[test]
    fn finds_server_ufrag_after_other_attributes() {
        let mut m = request(b"srv1:cli2");
        // Prepend a PRIORITY attribute to the body.
        let prio = [0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4];
        m.splice(20..20, prio);
        let len = (m.len() - 20) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(server_ufrag(&m), Some("srv1"));
    }

    #[test]
    fn rejects_non_stun_and_truncated_input() {
        assert_eq!(server_ufrag(&[]), None);
        assert_eq!(server_ufrag(&[0x80; 40]), None, "RTP is not STUN");
        let m = request(b"srv:cli");
        for cut in 0..m.len() {
            // Must never panic; a cut message has no complete username.
            let _ = server_ufrag(&m[..cut]);
        }
        let mut lying = request(b"srv:cli");
        lying[2] = 0xff; // body length longer than the datagram
        assert_eq!(server_ufrag(&lying), None);
    }

    #[test]
    fn rejects_empty_or_non_utf8_username() {
        assert_eq!(server_ufrag(&request(b":cli")), None);
        assert_eq!(server_ufrag(&request(&[0xff, 0xfe, b':', b'a'])), None);
    }
}
