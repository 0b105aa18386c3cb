import { test } from 'node:test';
import assert from 'node:assert/strict';
import { msidToken, sameParticipant } from '../../src/msid.js';

test('identities reduce to RFC 8830 token characters as the SFU reduces them', () => {
  assert.equal(msidToken('alice'), 'alice');
  assert.equal(msidToken('Zoë Smith#a1b2c3'), 'ZoSmith#a1b2c3');
  assert.equal(msidToken('x'.repeat(80)).length, 64);
});

test('a frame shows only on the tile of the key that opened it', () => {
  // The worker's label is the identity, or the msid token when the page
  // did not know the participant yet.
  assert.ok(sameParticipant('alice', 'alice'));
  assert.ok(sameParticipant('Zoë Smith#a1b2c3', 'ZoSmith#a1b2c3'));
  // The server put bob's frames on alice's track: refused.
  assert.ok(!sameParticipant('bob', 'alice'));
  // A key with no known owner never passes.
  assert.ok(!sameParticipant(undefined, 'alice'));
  assert.ok(!sameParticipant('', ''));
});
