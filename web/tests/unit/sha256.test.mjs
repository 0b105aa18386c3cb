// The incremental SHA-256 used by file transfer, against Node's own, for the
// FIPS 180-4 examples and for random inputs fed in random pieces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

import { Sha256 } from '../../src/crypto/sha256.js';

const hex = (b) => Buffer.from(b).toString('hex');

test('FIPS 180-4 examples', () => {
  assert.equal(new Sha256().hexDigest(), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(new Sha256().update(Buffer.from('abc')).hexDigest(), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const two = Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq');
  assert.equal(new Sha256().update(two).hexDigest(), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
});

test('random inputs in random pieces match node:crypto', () => {
  for (let round = 0; round < 200; round++) {
    const data = randomBytes(Math.floor(Math.random() * 5000));
    const ours = new Sha256();
    for (let at = 0; at < data.length; ) {
      const n = Math.min(data.length - at, Math.floor(Math.random() * 200));
      ours.update(new Uint8Array(data.buffer, data.byteOffset + at, n));
      at += n;
    }
    assert.equal(ours.hexDigest(), hex(createHash('sha256').update(data).digest()), `length ${data.length}`);
  }
});

test('every length around the padding boundary', () => {
  for (let n = 0; n < 200; n++) {
    const data = randomBytes(n);
    assert.equal(new Sha256().update(data).hexDigest(), hex(createHash('sha256').update(data).digest()), `length ${n}`);
  }
});

test('a digest ends the hasher', () => {
  const h = new Sha256();
  h.digest();
  assert.throws(() => h.update(new Uint8Array(1)), /after digest/);
  assert.equal(hex(h.digest()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});
