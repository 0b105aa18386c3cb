// Veil's key derivation, the same as client/src/keys.rs (see its docs):
//
//   room_secret = PBKDF2-HMAC-SHA256(passphrase, "veil/v1/room:" + room, 100000, 32 bytes)
//   base_key    = HKDF-SHA256(salt = "veil/v1/epoch:" + epoch, ikm = room_secret,
//                             info = "veil/v1/sender:" + identity, 16 bytes)
//   kid         = first 4 bytes of SHA-256(identity) << 8 | (epoch mod 256)
//   SFrame (AES_128_GCM_SHA256_128) derives the AEAD key and salt from base_key and kid.
//
// The passphrase never leaves the browser; the server only ever sees KIDs.

import { SUITES, SframeKey } from './sframe.js';

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();

export const PBKDF2_ITERATIONS = 100_000;
export const SUITE = SUITES.AES_128_GCM_SHA256_128;

/** The room secret (32 bytes), slow on purpose. */
export async function roomSecret(room, passphrase) {
  const material = await subtle.importKey('raw', encoder.encode(passphrase), 'PBKDF2', false, ['deriveBits']);
  const bits = await subtle.deriveBits(
    { name: 'PBKDF2', hash: 'SHA-256', salt: encoder.encode(`veil/v1/room:${room}`), iterations: PBKDF2_ITERATIONS },
    material,
    256,
  );
  return new Uint8Array(bits);
}

/** One sender's SFrame base key for an epoch (16 bytes). */
export async function senderBaseKey(secret, identity, epoch) {
  const ikm = await subtle.importKey('raw', secret, 'HKDF', false, ['deriveBits']);
  const bits = await subtle.deriveBits(
    {
      name: 'HKDF',
      hash: 'SHA-256',
      // Epochs count modulo 256, like the key id's epoch byte (docs/e2ee.md).
      salt: encoder.encode(`veil/v1/epoch:${epoch % 256}`),
      info: encoder.encode(`veil/v1/sender:${identity}`),
    },
    ikm,
    128,
  );
  return new Uint8Array(bits);
}

/** The SFrame key id of a sender in an epoch, as BigInt (at most 40 bits). */
export async function keyId(identity, epoch) {
  const digest = new Uint8Array(await subtle.digest('SHA-256', encoder.encode(identity)));
  const prefix = (BigInt(digest[0]) << 24n) | (BigInt(digest[1]) << 16n) | (BigInt(digest[2]) << 8n) | BigInt(digest[3]);
  return (prefix << 8n) | (BigInt(epoch) & 0xffn);
}

/** The SFrame key of `identity` at `epoch` (for its own sends or to decrypt it). */
export async function senderKey(secret, identity, epoch) {
  const [base, kid] = await Promise.all([senderBaseKey(secret, identity, epoch), keyId(identity, epoch)]);
  return SframeKey.derive(SUITE, kid, base);
}

/** The safety number participants compare aloud: five groups of five digits. */
export async function fingerprint(secret) {
  const input = new Uint8Array([...encoder.encode('veil/v1/fingerprint:'), ...secret]);
  const d = new DataView(await subtle.digest('SHA-256', input));
  const groups = [];
  for (let i = 0; i < 5; i++) groups.push(String(d.getUint32(i * 4) % 100000).padStart(5, '0'));
  return groups.join(' ');
}

/** Hex helpers for tests and logs. */
export const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
export const fromHex = (hex) => new Uint8Array(hex.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
