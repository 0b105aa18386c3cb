// SFrame (RFC 9605) for the browser and Node, on WebCrypto.
//
// Cipher suites AES_128_GCM_SHA256_128 (0x0004) and AES_256_GCM_SHA512_128
// (0x0005). A frame is `header || AEAD(key, nonce, aad = header || metadata,
// plaintext)`; the header carries the key id (KID) and counter (CTR) in the
// clear, bound to the ciphertext as associated data. Metadata (e.g. codec
// bytes left in the clear) is authenticated too but not part of the output.
//
// Usage:
//   const key = await SframeKey.derive(suite, kid, baseKey);   // once per sender/epoch
//   const ct = await encrypt(key, counter, plaintext, metadata);
//   const { header, plaintext } = await decrypt(keys, ct, metadata); // keys: Map kid -> SframeKey

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();

/** The suites WebCrypto can do (AES-GCM ones). */
export const SUITES = {
  AES_128_GCM_SHA256_128: { id: 0x0004, hash: 'SHA-256', nk: 16, nn: 12, nt: 16 },
  AES_256_GCM_SHA512_128: { id: 0x0005, hash: 'SHA-512', nk: 32, nn: 12, nt: 16 },
};

/** Thrown for frames that cannot be decrypted (unknown KID, bad tag, garbage). */
export class SframeError extends Error {}

// KID and CTR are at most 64 bits; they are handled as BigInt inside and
// accepted as Number or BigInt outside.
const big = (v) => (typeof v === 'bigint' ? v : BigInt(v));

function minBytes(v) {
  let n = 0;
  for (let x = v; x > 0n; x >>= 8n) n++;
  return Math.max(n, 1);
}

function writeBig(out, offset, v, len) {
  for (let i = len - 1; i >= 0; i--) {
    out[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

function readBig(bytes, offset, len) {
  let v = 0n;
  for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(bytes[offset + i]);
  return v;
}

/** Encodes an SFrame header (RFC 9605 §4.3): the shortest form. */
export function encodeHeader(kid, ctr) {
  kid = big(kid);
  ctr = big(ctr);
  if (kid < 0n || ctr < 0n || kid >= 1n << 64n || ctr >= 1n << 64n) {
    throw new RangeError('KID and CTR are unsigned 64-bit values');
  }
  const kidLen = kid < 8n ? 0 : minBytes(kid);
  const ctrLen = ctr < 8n ? 0 : minBytes(ctr);
  const out = new Uint8Array(1 + kidLen + ctrLen);
  let config = 0;
  config |= kidLen === 0 ? Number(kid) << 4 : 0x80 | ((kidLen - 1) << 4);
  config |= ctrLen === 0 ? Number(ctr) : 0x08 | (ctrLen - 1);
  out[0] = config;
  if (kidLen) writeBig(out, 1, kid, kidLen);
  if (ctrLen) writeBig(out, 1 + kidLen, ctr, ctrLen);
  return out;
}

/** Reads a header: `{ kid, ctr, length }` (kid and ctr as BigInt). */
export function decodeHeader(bytes) {
  if (bytes.length < 1) throw new SframeError('empty frame');
  const config = bytes[0];
  let offset = 1;
  let kid;
  if (config & 0x80) {
    const len = ((config >> 4) & 0x07) + 1;
    if (bytes.length < offset + len) throw new SframeError('truncated KID');
    kid = readBig(bytes, offset, len);
    offset += len;
  } else {
    kid = BigInt((config >> 4) & 0x07);
  }
  let ctr;
  if (config & 0x08) {
    const len = (config & 0x07) + 1;
    if (bytes.length < offset + len) throw new SframeError('truncated CTR');
    ctr = readBig(bytes, offset, len);
    offset += len;
  } else {
    ctr = BigInt(config & 0x07);
  }
  return { kid, ctr, length: offset };
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function label(text, kid, suiteId) {
  const out = new Uint8Array(text.length + 10);
  out.set(encoder.encode(text));
  writeBig(out, text.length, big(kid), 8);
  writeBig(out, text.length + 8, BigInt(suiteId), 2);
  return out;
}

/** An SFrame key and salt for one KID (RFC 9605 §4.4.2). */
export class SframeKey {
  constructor(suite, kid, aesKey, salt) {
    this.suite = suite;
    this.kid = big(kid);
    this.aesKey = aesKey;
    this.salt = salt;
  }

  /**
   * sframe_secret = HKDF-Extract("", base_key);
   * sframe_key = HKDF-Expand(secret, "SFrame 1.0 Secret key " || KID || suite, Nk);
   * sframe_salt = HKDF-Expand(secret, "SFrame 1.0 Secret salt " || KID || suite, Nn).
   */
  static async derive(suite, kid, baseKey) {
    const ikm = await subtle.importKey('raw', baseKey, 'HKDF', false, ['deriveBits']);
    const expand = (info, bytes) =>
      subtle.deriveBits({ name: 'HKDF', hash: suite.hash, salt: new Uint8Array(0), info }, ikm, bytes * 8);
    const keyBytes = await expand(label('SFrame 1.0 Secret key ', kid, suite.id), suite.nk);
    const salt = new Uint8Array(await expand(label('SFrame 1.0 Secret salt ', kid, suite.id), suite.nn));
    const aesKey = await subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
    return new SframeKey(suite, kid, aesKey, salt);
  }

  nonce(ctr) {
    const nonce = this.salt.slice();
    const n = nonce.length;
    let c = big(ctr);
    for (let i = n - 1; i >= 0 && c > 0n; i--) {
      nonce[i] ^= Number(c & 0xffn);
      c >>= 8n;
    }
    return nonce;
  }
}

/** Encrypts one frame: `header || ciphertext || tag`. */
export async function encrypt(key, ctr, plaintext, metadata = new Uint8Array(0)) {
  const header = encodeHeader(key.kid, ctr);
  const sealed = await subtle.encrypt(
    { name: 'AES-GCM', iv: key.nonce(ctr), additionalData: concat(header, metadata), tagLength: key.suite.nt * 8 },
    key.aesKey,
    plaintext,
  );
  return concat(header, new Uint8Array(sealed));
}

/**
 * Decrypts one frame with the key its KID names. `keys` maps KID (BigInt)
 * to SframeKey. Throws SframeError when the frame cannot be opened.
 */
export async function decrypt(keys, frame, metadata = new Uint8Array(0)) {
  const header = decodeHeader(frame);
  const key = keys.get(header.kid);
  if (!key) throw new SframeError(`no key for KID ${header.kid}`);
  if (frame.length < header.length + key.suite.nt) throw new SframeError('frame too short');
  const headerBytes = frame.subarray(0, header.length);
  try {
    const plain = await subtle.decrypt(
      { name: 'AES-GCM', iv: key.nonce(header.ctr), additionalData: concat(headerBytes, metadata), tagLength: key.suite.nt * 8 },
      key.aesKey,
      frame.subarray(header.length),
    );
    return { kid: header.kid, ctr: header.ctr, plaintext: new Uint8Array(plain) };
  } catch {
    throw new SframeError('authentication failed (wrong key or tampered frame)');
  }
}
