//! Key derivation shared by every Veil client (Rust and browser).
//!
//! Keys come from the participants, never from a server:
//!
//! 1. `room_secret = PBKDF2-HMAC-SHA256(passphrase, "veil/v1/room:" + room, 100_000, 32 bytes)`.
//!    The slow KDF makes guessing a passphrase from a recorded call costly.
//! 2. For each sender and key epoch (counted modulo 256),
//!    `base_key = HKDF-SHA256(salt = "veil/v1/epoch:" + epoch, ikm = room_secret,
//!    info = "veil/v1/sender:" + identity, 16 bytes)`: each sender encrypts with
//!    its own key, so a receiver knows who sent a frame.
//! 3. `kid = (first 4 bytes of SHA-256(identity)) << 8 | (epoch mod 256)`:
//!    the SFrame key id names the sender and epoch; the SFU may read it,
//!    learning nothing it could not see from the SSRC anyway. 40 bits keep it
//!    an exact JavaScript number.
//! 4. SFrame (RFC 9605) derives the AEAD key and salt from `base_key` and `kid`,
//!    cipher suite `AES_128_GCM_SHA256_128`.
//!
//! The browser client implements the same steps with WebCrypto; both test
//! suites check `testdata/key-derivation-vectors.json`.

use hkdf::Hkdf;
use sframe::CipherSuite;
use sframe::crypto::{Aead, Kdf};
use sframe::header::KeyId;
use sframe::key::{DecryptionKey, EncryptionKey, KeyLookup};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

/// PBKDF2 iterations for the room secret.
pub const PBKDF2_ITERATIONS: u32 = 100_000;

/// The SFrame cipher suite Veil uses.
pub const CIPHER_SUITE: CipherSuite = CipherSuite::AesGcm128Sha256;

/// The secret all participants of a room derive from its passphrase.
#[derive(Clone, PartialEq, Eq)]
pub struct RoomSecret([u8; 32]);

impl std::fmt::Debug for RoomSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomSecret(..)")
    }
}

impl RoomSecret {
    /// Step 1: the slow derivation from the passphrase.
    pub fn from_passphrase(room: &str, passphrase: &str) -> Self {
        let salt = format!("veil/v1/room:{room}");
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(
            passphrase.as_bytes(),
            salt.as_bytes(),
            PBKDF2_ITERATIONS,
            &mut out,
        );
        RoomSecret(out)
    }

    /// Step 2: one sender's SFrame base key for an epoch.
    pub fn sender_base_key(&self, identity: &str, epoch: u64) -> [u8; 16] {
        // Epochs count modulo 256, like the key id's epoch byte, so that a
        // receiver can always tell the epoch from the key id. A key comes
        // back after 256 rotations; its nonces do not, since each sender's
        // SFrame counter only ever grows.
        let salt = format!("veil/v1/epoch:{}", epoch % 256);
        let info = format!("veil/v1/sender:{identity}");
        let hk = Hkdf::<Sha256>::new(Some(salt.as_bytes()), &self.0);
        let mut out = [0u8; 16];
        // 16 bytes is far below HKDF-SHA256's 8160-byte limit.
        hk.expand(info.as_bytes(), &mut out)
            .expect("16 bytes is a valid HKDF length");
        out
    }

    /// A short fingerprint ("safety number") participants can compare aloud:
    /// five groups of five digits from SHA-256 over the room secret.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest([b"veil/v1/fingerprint:".as_slice(), &self.0].concat());
        digest
            .chunks(4)
            .take(5)
            .map(|c| {
                format!(
                    "{:05}",
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]]) % 100_000
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Step 3: the SFrame key id of a sender in an epoch.
pub fn key_id(identity: &str, epoch: u64) -> u64 {
    let digest = Sha256::digest(identity.as_bytes());
    let prefix = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) as u64;
    prefix << 8 | (epoch & 0xff)
}

/// Errors from SFrame key setup.
#[derive(Debug, thiserror::Error)]
#[error("SFrame key derivation failed: {0}")]
pub struct KeyError(String);

/// Step 4: the SFrame encryption key of our own sends.
pub fn encryption_key(
    secret: &RoomSecret,
    identity: &str,
    epoch: u64,
) -> Result<EncryptionKey, KeyError> {
    let base = secret.sender_base_key(identity, epoch);
    EncryptionKey::derive_from(CIPHER_SUITE, key_id(identity, epoch), base)
        .map_err(|e| KeyError(e.to_string()))
}

/// Step 4 for a remote sender.
pub fn decryption_key(
    secret: &RoomSecret,
    identity: &str,
    epoch: u64,
) -> Result<DecryptionKey, KeyError> {
    let base = secret.sender_base_key(identity, epoch);
    DecryptionKey::derive_from(CIPHER_SUITE, key_id(identity, epoch), base)
        .map_err(|e| KeyError(e.to_string()))
}

/// Step 4 for a remote sender, shared: every session in this process that
/// holds this sender's key for this epoch gets the same one.
///
/// Why: a load generator runs thousands of sessions in one process, and in
/// a room of ten, nine of them decrypt each sender's frames. A key is
/// several cache lines (salt, expanded AES key, GHASH table), and each
/// session's own copy was cold by the time its next frame came: in a
/// profile at 2,000 audio participants those misses were most of the
/// generator's SFrame decryption. One shared copy stays in cache. An app
/// with one session per room derives exactly what [`decryption_key`] does.
///
/// The table keeps weak references only, so a key lives as long as some
/// session holds it, and it is indexed by a digest of the base key, never
/// by key material.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use veil_client::keys::{RoomSecret, shared_decryption_key};
///
/// let secret = RoomSecret::from_passphrase("standup", "correct horse battery staple");
/// let first = shared_decryption_key(&secret, "alice", 0).unwrap();
/// let second = shared_decryption_key(&secret, "alice", 0).unwrap();
/// assert!(Arc::ptr_eq(&first, &second));
/// ```
pub fn shared_decryption_key(
    secret: &RoomSecret,
    identity: &str,
    epoch: u64,
) -> Result<Arc<DecryptionKey>, KeyError> {
    let base = secret.sender_base_key(identity, epoch);
    let kid = key_id(identity, epoch);
    let digest: [u8; 32] = Sha256::new()
        .chain_update(b"veil/v1/shared-key:")
        .chain_update(kid.to_be_bytes())
        .chain_update(base)
        .finalize()
        .into();
    let mut table = SHARED_KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(key) = table.by_digest.get(&digest).and_then(Weak::upgrade) {
        return Ok(key);
    }
    let key = Arc::new(
        DecryptionKey::derive_from(CIPHER_SUITE, kid, base).map_err(|e| KeyError(e.to_string()))?,
    );
    table.insert(digest, &key);
    Ok(key)
}

/// The keys [`shared_decryption_key`] handed out, by digest.
struct SharedKeys {
    by_digest: HashMap<[u8; 32], Weak<DecryptionKey>>,
    /// Entries whose keys were all dropped are swept when the table reaches
    /// this size, which then doubles the live count: amortised O(1), and the
    /// table never holds more than twice the live keys (plus a floor).
    sweep_at: usize,
}

impl SharedKeys {
    const SWEEP_FLOOR: usize = 64;

    fn insert(&mut self, digest: [u8; 32], key: &Arc<DecryptionKey>) {
        if self.by_digest.len() >= self.sweep_at {
            self.by_digest.retain(|_, key| key.strong_count() > 0);
            self.sweep_at = (2 * self.by_digest.len()).max(Self::SWEEP_FLOOR);
        }
        self.by_digest.insert(digest, Arc::downgrade(key));
    }
}

static SHARED_KEYS: LazyLock<Mutex<SharedKeys>> = LazyLock::new(|| {
    Mutex::new(SharedKeys {
        by_digest: HashMap::new(),
        sweep_at: SharedKeys::SWEEP_FLOOR,
    })
});

/// The decryption keys a session holds, by key id: one per sender and
/// epoch, so a handful, and looked up for every frame received.
///
/// The ids sit apart from the keys (each several hundred bytes with its
/// expanded AES key), so a lookup scans one short array instead of hashing
/// into a map whose buckets are cold by the time the next frame comes. The
/// keys are shared ([`shared_decryption_key`]): a receiver may keep the one
/// it decrypts with ([`KeyRing::shared`]) and skip the lookup.
///
/// # Example
///
/// ```
/// use veil_client::keys::{KeyRing, RoomSecret, decryption_key};
///
/// let secret = RoomSecret::from_passphrase("standup", "correct horse battery staple");
/// let mut ring = KeyRing::default();
/// let key = decryption_key(&secret, "alice", 0).unwrap();
/// let id = key.key_id();
/// ring.insert(key);
/// assert!(ring.contains(id));
/// ```
#[derive(Default)]
pub struct KeyRing {
    ids: Vec<u64>,
    keys: Vec<Arc<DecryptionKey>>,
}

impl KeyRing {
    /// Where the key with this id sits, if it is held.
    fn position(&self, key_id: u64) -> Option<usize> {
        self.ids.iter().position(|&id| id == key_id)
    }

    /// Whether a key with this id is held.
    pub fn contains(&self, key_id: u64) -> bool {
        self.position(key_id).is_some()
    }

    /// Adds a key (owned or shared), replacing one with the same id.
    pub fn insert(&mut self, key: impl Into<Arc<DecryptionKey>>) {
        let key = key.into();
        match self.position(key.key_id()) {
            Some(i) => self.keys[i] = key,
            None => {
                self.ids.push(key.key_id());
                self.keys.push(key);
            }
        }
    }

    /// The key with this id, shared, if it is held.
    pub fn shared(&self, key_id: u64) -> Option<&Arc<DecryptionKey>> {
        self.keys.get(self.position(key_id)?)
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl KeyLookup<Aead, Kdf> for KeyRing {
    fn get_key<K: Into<KeyId>>(&self, key_id: K) -> Option<&DecryptionKey> {
        self.shared(key_id.into()).map(|key| &**key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_matches_the_shared_vectors() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../../testdata/key-derivation-vectors.json"))
                .unwrap();
        for v in vectors["vectors"].as_array().unwrap() {
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            let secret = RoomSecret::from_passphrase(&s("room"), &s("passphrase"));
            assert_eq!(hex::encode(secret.0), s("room_secret"));
            let epoch = v["epoch"].as_u64().unwrap();
            assert_eq!(
                hex::encode(secret.sender_base_key(&s("identity"), epoch)),
                s("base_key")
            );
            assert_eq!(key_id(&s("identity"), epoch), v["kid"].as_u64().unwrap());
            assert_eq!(secret.fingerprint(), s("fingerprint"));
        }
    }

    #[test]
    fn senders_and_epochs_get_distinct_keys() {
        let s = RoomSecret::from_passphrase("r", "correct horse");
        assert_ne!(s.sender_base_key("alice", 0), s.sender_base_key("bob", 0));
        assert_ne!(s.sender_base_key("alice", 0), s.sender_base_key("alice", 1));
        assert_ne!(key_id("alice", 0), key_id("bob", 0));
        assert_ne!(key_id("alice", 0), key_id("alice", 1));
        let other = RoomSecret::from_passphrase("r", "wrong horse");
        assert_ne!(s.fingerprint(), other.fingerprint());
        assert_ne!(
            s,
            RoomSecret::from_passphrase("other room", "correct horse")
        );
    }

    #[test]
    fn shared_keys_are_one_per_sender_and_epoch_and_go_when_dropped() {
        use sframe::frame::{EncryptedFrameView, MediaFrameView, MonotonicCounter};
        let s = RoomSecret::from_passphrase("shared-keys", "correct horse");
        let alice = shared_decryption_key(&s, "alice", 3).unwrap();
        assert!(Arc::ptr_eq(
            &alice,
            &shared_decryption_key(&s, "alice", 3).unwrap()
        ));
        let other_room = RoomSecret::from_passphrase("other room", "correct horse");
        for other in [
            shared_decryption_key(&s, "bob", 3).unwrap(),
            shared_decryption_key(&s, "alice", 4).unwrap(),
            shared_decryption_key(&other_room, "alice", 3).unwrap(),
        ] {
            assert!(!Arc::ptr_eq(&alice, &other));
        }
        // The shared key is the sender's key: it opens what alice sealed.
        let sealed = MediaFrameView::try_new(&mut MonotonicCounter::default(), b"hi")
            .unwrap()
            .encrypt(&encryption_key(&s, "alice", 3).unwrap())
            .unwrap();
        let opened = EncryptedFrameView::try_new(sealed.as_ref())
            .and_then(|f| f.decrypt(&*alice))
            .unwrap();
        assert_eq!(opened.payload(), b"hi");
        // The table holds no key alive, and dropped keys are swept.
        let weak = Arc::downgrade(&alice);
        drop(alice);
        assert!(weak.upgrade().is_none());
        for i in 0..1_000 {
            shared_decryption_key(&s, &format!("leaver-{i}"), 0).unwrap();
        }
        let held = SHARED_KEYS.lock().unwrap().by_digest.len();
        assert!(held <= 2 * SharedKeys::SWEEP_FLOOR, "{held} entries kept");
    }

    #[test]
    fn a_key_ring_hands_out_the_shared_key_it_holds() {
        let s = RoomSecret::from_passphrase("r", "correct horse");
        let mut ring = KeyRing::default();
        let shared = shared_decryption_key(&s, "carol", 0).unwrap();
        ring.insert(Arc::clone(&shared));
        ring.insert(decryption_key(&s, "dave", 0).unwrap());
        assert!(Arc::ptr_eq(
            ring.shared(key_id("carol", 0)).unwrap(),
            &shared
        ));
        assert!(ring.shared(key_id("dave", 0)).is_some());
        assert!(ring.shared(key_id("erin", 0)).is_none());
    }

    #[test]
    fn a_key_ring_finds_each_sender_by_key_id() {
        use sframe::frame::{EncryptedFrameView, MediaFrameView, MonotonicCounter};
        let s = RoomSecret::from_passphrase("r", "correct horse");
        let mut ring = KeyRing::default();
        for (who, epoch) in [("alice", 0), ("bob", 0), ("alice", 1)] {
            ring.insert(decryption_key(&s, who, epoch).unwrap());
        }
        // The same key again replaces, not adds.
        ring.insert(decryption_key(&s, "bob", 0).unwrap());
        assert_eq!(ring.len(), 3);
        assert!(ring.contains(key_id("alice", 1)));
        assert!(!ring.contains(key_id("carol", 0)));
        let mut counter = MonotonicCounter::default();
        for (who, epoch, held) in [("alice", 1, true), ("bob", 0, true), ("carol", 0, false)] {
            let enc = encryption_key(&s, who, epoch).unwrap();
            let sealed = MediaFrameView::try_new(&mut counter, b"hello")
                .unwrap()
                .encrypt(&enc)
                .unwrap();
            let opened = EncryptedFrameView::try_new(sealed.as_ref())
                .and_then(|f| f.decrypt(&ring))
                .map(|plain| plain.payload().to_vec());
            match held {
                true => assert_eq!(opened.unwrap(), b"hello"),
                false => assert!(opened.is_err()),
            }
        }
    }
}
