//! AEAD implementation using the ring library.

use super::Aead;
use crate::{
    CipherSuite,
    crypto::{
        aead::{AeadDecrypt, AeadEncrypt},
        buffer::{DecryptionBufferView, EncryptionBufferView},
        secret::Secret,
    },
    error::{Result, SframeError},
    header::Counter,
};

use std::sync::OnceLock;

use ring::aead::{LessSafeKey, Nonce};
use zeroize::Zeroize;

/// A secret's AES-GCM key, expanded once (Veil patch 1).
///
/// Building a ring key expands the AES key schedule and the GHASH table:
/// for a 100-byte audio frame that was about half of the decryption's
/// cost. A [`Secret`] keeps the expanded key here after its first use.
///
/// A clone starts empty and expands on its own first use, so clones never
/// share state. Zeroizing drops the expanded key (ring does not wipe it;
/// neither did the key that every frame used to build and drop).
#[derive(Default)]
pub(crate) struct KeySchedule(OnceLock<LessSafeKey>);

impl KeySchedule {
    /// Runs `f` with the expanded key for `secret` under `cipher_suite`.
    fn with_key<T>(
        &self,
        cipher_suite: CipherSuite,
        secret: &Secret,
        f: impl FnOnce(&LessSafeKey) -> Result<T>,
    ) -> Result<T> {
        let algorithm: &'static ring::aead::Algorithm = cipher_suite.into();
        if let Some(key) = self.0.get().filter(|k| k.algorithm() == algorithm) {
            return f(key);
        }
        let key = LessSafeKey::new(unbound_encryption_key(cipher_suite, secret)?);
        match self.0.get() {
            // The first use fixed another suite (key derivation never does
            // that): this call gets a key of its own, as before the patch.
            Some(_) => f(&key),
            None => f(self.0.get_or_init(|| key)),
        }
    }
}

impl Clone for KeySchedule {
    fn clone(&self) -> Self {
        KeySchedule::default()
    }
}

impl Zeroize for KeySchedule {
    fn zeroize(&mut self) {
        self.0.take();
    }
}

/// The expanded key is derived from the secret's key: secrets compare by
/// their key material alone.
#[cfg(test)]
impl PartialEq for KeySchedule {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[cfg(test)]
impl Eq for KeySchedule {}

impl From<CipherSuite> for &'static ring::aead::Algorithm {
    fn from(cipher_suite: CipherSuite) -> Self {
        use CipherSuite::*;
        match cipher_suite {
            AesGcm128Sha256 => &ring::aead::AES_128_GCM,
            AesGcm256Sha512 => &ring::aead::AES_256_GCM,
        }
    }
}

fn unbound_encryption_key(
    cipher_suite: CipherSuite,
    secret: &Secret,
) -> Result<ring::aead::UnboundKey> {
    let algorithm = cipher_suite.into();
    ring::aead::UnboundKey::new(algorithm, secret.key())
        .map_err(|_| SframeError::KeyDerivationFailure)
}

impl AeadEncrypt for Aead {
    type Secret = Secret;

    fn encrypt<'a, B>(&self, secret: &Secret, buffer: B, counter: Counter) -> Result<()>
    where
        B: Into<EncryptionBufferView<'a>>,
    {
        let buffer_view: EncryptionBufferView = buffer.into();
        let nonce = Nonce::assume_unique_for_key(secret.create_nonce(counter));
        let aad = ring::aead::Aad::from(buffer_view.aad);
        let auth_tag = secret
            .key_schedule
            .with_key(self.cipher_suite, secret, |key| {
                key.seal_in_place_separate_tag(nonce, aad, buffer_view.data)
                    .map_err(|_| SframeError::EncryptionFailure)
            })?;

        buffer_view.tag.copy_from_slice(auth_tag.as_ref());

        Ok(())
    }
}

impl AeadDecrypt for Aead {
    type Secret = Secret;

    fn decrypt<'a, B>(&self, secret: &Secret, buffer: B, counter: Counter) -> Result<()>
    where
        B: Into<DecryptionBufferView<'a>>,
    {
        let buffer_view: DecryptionBufferView = buffer.into();
        let nonce = Nonce::assume_unique_for_key(secret.create_nonce(counter));
        let aad = ring::aead::Aad::from(buffer_view.aad);
        secret
            .key_schedule
            .with_key(self.cipher_suite, secret, |key| {
                key.open_in_place(nonce, aad, buffer_view.data)
                    .map(|_| ())
                    .map_err(|_| SframeError::DecryptionFailure)
            })
    }
}

/// Veil patch 1: the cached key schedule.
#[cfg(test)]
mod key_schedule_test {
    use super::*;
    use crate::crypto::buffer::{DecryptionBufferView, EncryptionBufferView};

    fn seal(aead: &Aead, secret: &Secret, plain: &[u8], counter: Counter) -> Result<Vec<u8>> {
        let mut aad = b"header".to_vec();
        let mut data = plain.to_vec();
        let mut tag = vec![0u8; 16];
        aead.encrypt(
            secret,
            EncryptionBufferView {
                aad: &mut aad,
                data: &mut data,
                tag: &mut tag,
            },
            counter,
        )?;
        data.extend(tag);
        Ok(data)
    }

    fn open(aead: &Aead, secret: &Secret, sealed: &[u8], counter: Counter) -> Result<Vec<u8>> {
        let mut aad = b"header".to_vec();
        let mut data = sealed.to_vec();
        aead.decrypt(
            secret,
            DecryptionBufferView {
                aad: &mut aad,
                data: &mut data,
            },
            counter,
        )?;
        data.truncate(sealed.len() - 16);
        Ok(data)
    }

    #[test]
    fn a_reused_secret_seals_and_opens_like_a_fresh_one() {
        for (suite, len) in [
            (CipherSuite::AesGcm128Sha256, 16),
            (CipherSuite::AesGcm256Sha512, 32),
        ] {
            let aead = Aead::try_from(suite).unwrap();
            let secret = Secret::aead((0..len).collect(), vec![7u8; 12]);
            for counter in 0..4u64 {
                let plain = format!("frame {counter}").into_bytes();
                let reused = seal(&aead, &secret, &plain, counter).unwrap();
                let fresh = seal(&aead, &secret.clone(), &plain, counter).unwrap();
                assert_eq!(reused, fresh);
                assert_eq!(open(&aead, &secret, &reused, counter).unwrap(), plain);
                // The nonce still follows the counter, and tampering fails.
                assert!(open(&aead, &secret, &reused, counter + 1).is_err());
                let mut tampered = reused.clone();
                tampered[0] ^= 1;
                assert!(open(&aead, &secret, &tampered, counter).is_err());
            }
            assert!(secret.key_schedule.0.get().is_some());
        }
    }

    #[test]
    fn a_secret_used_under_another_suite_is_not_served_the_cached_key() {
        let aes128 = Aead::try_from(CipherSuite::AesGcm128Sha256).unwrap();
        let aes256 = Aead::try_from(CipherSuite::AesGcm256Sha512).unwrap();
        let secret = Secret::aead(vec![1u8; 32], vec![2u8; 12]);
        // Cached under AES-256 first; AES-128 cannot use a 32-byte key,
        // before or after, and AES-256 keeps working.
        let sealed = seal(&aes256, &secret, b"audio", 9).unwrap();
        assert!(seal(&aes128, &secret, b"audio", 9).is_err());
        assert_eq!(open(&aes256, &secret, &sealed, 9).unwrap(), b"audio");
        assert!(
            seal(
                &aes128,
                &Secret::aead(vec![1u8; 32], vec![2u8; 12]),
                b"a",
                1
            )
            .is_err()
        );
    }

    #[test]
    fn zeroizing_drops_the_expanded_key() {
        let aead = Aead::try_from(CipherSuite::AesGcm128Sha256).unwrap();
        let mut secret = Secret::aead(vec![3u8; 16], vec![4u8; 12]);
        seal(&aead, &secret, b"x", 0).unwrap();
        assert!(secret.key_schedule.0.get().is_some());
        secret.key_schedule.zeroize();
        assert!(secret.key_schedule.0.get().is_none());
        // Expanded again on the next use.
        seal(&aead, &secret, b"x", 1).unwrap();
        assert!(secret.key_schedule.0.get().is_some());
    }
}
