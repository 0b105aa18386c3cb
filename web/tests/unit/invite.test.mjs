import assert from 'node:assert/strict';
import { test } from 'node:test';

import { inviteLink, passphraseFromHash } from '../../src/invite.js';

test('an invite names the room and carries the passphrase in the fragment, never a name', () => {
  const link = inviteLink('http://127.0.0.1:8080', 'team sync', 'correct horse #1');
  assert.equal(link, 'http://127.0.0.1:8080/r/team%20sync#correct%20horse%20%231');
  const url = new URL(link);
  assert.equal(url.search, '', 'no ?name=: the invitee picks a name');
  assert.equal(passphraseFromHash(url.hash), 'correct horse #1');
});

test('a malformed escape in the fragment is taken as typed, not thrown', () => {
  assert.equal(passphraseFromHash('#100%'), '100%');
  assert.equal(passphraseFromHash(''), '');
});
