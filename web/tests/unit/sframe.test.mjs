// The JS SFrame against the RFC 9605 test vectors (sframe-wg/sframe), and
// its refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { SUITES, SframeKey, SframeError, decodeHeader, decrypt, encodeHeader, encrypt } from '../../src/crypto/sframe.js';
import { fromHex, toHex } from '../../src/crypto/keys.js';

// KIDs and counters go up to 2^64: keep them as strings for BigInt, since
// JSON numbers lose precision past 2^53.
const text = readFileSync(new URL('../../../testdata/rfc9605-test-vectors.json', import.meta.url), 'utf8');
const vectors = JSON.parse(text.replace(/"(kid|ctr)":\s*(\d+)/g, '"$1":"$2"'));
const bySuiteId = Object.fromEntries(Object.values(SUITES).map((s) => [s.id, s]));

test('headers encode and decode as the RFC vectors say', () => {
  assert.ok(vectors.header.length > 10);
  for (const v of vectors.header) {
    const encoded = encodeHeader(BigInt(v.kid), BigInt(v.ctr));
    assert.equal(toHex(encoded), v.encoded, `kid ${v.kid} ctr ${v.ctr}`);
    const decoded = decodeHeader(fromHex(v.encoded));
    assert.equal(decoded.kid, BigInt(v.kid));
    assert.equal(decoded.ctr, BigInt(v.ctr));
    assert.equal(decoded.length, encoded.length);
  }
});

test('AES-GCM suites encrypt and decrypt exactly as the RFC vectors say', async () => {
  const gcm = vectors.sframe.filter((v) => bySuiteId[v.cipher_suite]);
  assert.equal(gcm.length, 2, 'both AES-GCM suites have a vector');
  for (const v of gcm) {
    const suite = bySuiteId[v.cipher_suite];
    const key = await SframeKey.derive(suite, BigInt(v.kid), fromHex(v.base_key));
    assert.equal(toHex(key.salt), v.sframe_salt);
    assert.equal(toHex(key.nonce(BigInt(v.ctr))), v.nonce);
    const ct = await encrypt(key, BigInt(v.ctr), fromHex(v.pt), fromHex(v.metadata));
    assert.equal(toHex(ct), v.ct, `suite ${v.cipher_suite}`);
    const keys = new Map([[key.kid, key]]);
    const opened = await decrypt(keys, fromHex(v.ct), fromHex(v.metadata));
    assert.equal(toHex(opened.plaintext), v.pt);
    assert.equal(opened.ctr, BigInt(v.ctr));
  }
});

test('tampering, wrong metadata, unknown KIDs and garbage are refused', async () => {
  const v = vectors.sframe.find((x) => x.cipher_suite === 4);
  const key = await SframeKey.derive(SUITES.AES_128_GCM_SHA256_128, BigInt(v.kid), fromHex(v.base_key));
  const keys = new Map([[key.kid, key]]);
  const ct = fromHex(v.ct);
  const flipped = ct.slice();
  flipped[flipped.length - 1] ^= 1;
  await assert.rejects(decrypt(keys, flipped, fromHex(v.metadata)), SframeError);
  await assert.rejects(decrypt(keys, ct, new Uint8Array([1])), SframeError, 'metadata is authenticated');
  await assert.rejects(decrypt(new Map(), ct, fromHex(v.metadata)), /no key for KID/);
  for (const garbage of [new Uint8Array(0), new Uint8Array([0xff]), new Uint8Array([0x00, 1, 2])]) {
    await assert.rejects(decrypt(keys, garbage), SframeError);
  }
  assert.throws(() => encodeHeader(-1n, 0n), RangeError);
});
