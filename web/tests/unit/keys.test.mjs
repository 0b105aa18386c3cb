// Veil's key derivation in JS against the repo's vectors (shared with the
// Rust client's tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { fingerprint, keyId, roomSecret, senderBaseKey, senderKey, toHex } from '../../src/crypto/keys.js';
import { decrypt, encrypt } from '../../src/crypto/sframe.js';

const { vectors } = JSON.parse(readFileSync(new URL('../../../testdata/key-derivation-vectors.json', import.meta.url)));

test('room secret, sender base key, KID and fingerprint match the vectors', async () => {
  assert.ok(vectors.length >= 3);
  for (const v of vectors) {
    const secret = await roomSecret(v.room, v.passphrase);
    assert.equal(toHex(secret), v.room_secret, v.room);
    assert.equal(toHex(await senderBaseKey(secret, v.identity, v.epoch)), v.base_key);
    assert.equal(await keyId(v.identity, v.epoch), BigInt(v.kid));
    assert.equal(await fingerprint(secret), v.fingerprint);
  }
});

test('each sender has its own key: one cannot open the other', async () => {
  const secret = await roomSecret('room', 'pass');
  const alice = await senderKey(secret, 'alice', 0);
  const bob = await senderKey(secret, 'bob', 0);
  const frame = await encrypt(alice, 7n, new TextEncoder().encode('hello'));
  const opened = await decrypt(new Map([[alice.kid, alice]]), frame);
  assert.equal(new TextDecoder().decode(opened.plaintext), 'hello');
  // Bob's key under Alice's KID: authentication fails.
  await assert.rejects(decrypt(new Map([[alice.kid, bob]]), frame), /authentication failed/);
});
