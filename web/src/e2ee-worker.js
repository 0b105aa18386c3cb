// The encoded-transform worker: SFrame-encrypts every outgoing audio and
// video frame with this sender's key, and decrypts every incoming frame with
// the key its KID names. Whole frames are encrypted (pure RFC 9605): the
// SFU and the receivers' depacketizers learn frame boundaries and keyframes
// from the Dependency Descriptor header extension, which stays in the clear.
//
// Messages from the page:
//   { type: 'keys', secret: Uint8Array, identity, epoch, peers: [identity] }
//   { type: 'peers', peers: [identity] }        (new participants)
//   { type: 'epoch', epoch }                    (our key rotates)
//   { type: 'plain', identity }                 (a WHIP publisher: not E2EE)
//   { type: 'seal', id, plaintext }             (a data message to send)
//   { type: 'open', id, bytes }                 (a data message received)
// Messages to the page:
//   { type: 'stats', decrypted: {identity: n}, epochs: {identity: key epoch of its latest frame}, failed: {identity|'unknown': n}, plain: {identity: n}, encrypted, relabelled,
//     errors: {count, last}, pipes: [{operation, sender, in, out, ended}] }
//   { type: 'sealed', id, bytes } / { type: 'opened', id, owner, plaintext } / { type: 'opened', id, error }

import { senderKey, keyId } from './crypto/keys.js';
import { decrypt, decodeHeader, encrypt } from './crypto/sframe.js';
import { sameParticipant } from './msid.js';
import { pipeFrames } from './frame-pipe.js';

const state = {
  secret: null,
  identity: null,
  epoch: 0,
  ownKey: null,
  // Frame counter: starts at the wall clock in microseconds, so a reload
  // under the same identity and key never reuses a counter (a nonce).
  counter: BigInt(Date.now()) * 1000n,
  peers: new Set(),
  keys: new Map(), // kid (BigInt) -> SframeKey
  owners: new Map(), // kid -> identity
  // Senders the server says publish without end-to-end encryption (WHIP
  // tools cannot SFrame-encrypt). Their frames pass as they are and the
  // page labels them; everyone else's must decrypt or they are dropped.
  plain: new Set(),
  decrypted: {},
  // The key epoch of the latest frame that decrypted, per sender.
  epochs: {},
  failed: {},
  plainFrames: {},
  encrypted: 0,
  // Genuine frames that arrived on another participant's track.
  relabelled: 0,
  // Frames a transform threw on (dropped and counted: one bad frame must
  // not end the track's pipe).
  errors: { count: 0, last: null },
  // Per transform attached: frames in and out, and why its pipe ended.
  pipes: [],
};

async function learnPeer(identity) {
  if (!state.secret) return;
  state.peers.add(identity);
  // The current epoch and the next, so a rotation does not drop frames.
  for (const epoch of [state.epoch, state.epoch + 1]) {
    const kid = await keyId(identity, epoch);
    if (state.keys.has(kid)) continue;
    state.keys.set(kid, await senderKey(state.secret, identity, epoch));
    state.owners.set(kid, identity);
  }
}

async function keyFor(kid) {
  let key = state.keys.get(kid);
  if (key) return key;
  // A known sender at an epoch we have not derived yet (its low byte).
  const epoch = Number(kid & 0xffn);
  for (const identity of state.peers) {
    if ((await keyId(identity, epoch)) === kid) {
      key = await senderKey(state.secret, identity, epoch);
      state.keys.set(kid, key);
      state.owners.set(kid, identity);
      return key;
    }
  }
  return null;
}

async function setKeys(message) {
  state.secret = message.secret;
  state.identity = message.identity;
  state.epoch = message.epoch || 0;
  state.ownKey = await senderKey(state.secret, state.identity, state.epoch);
  for (const p of message.peers || []) await learnPeer(p);
}

const count = (table, who) => {
  table[who] = (table[who] || 0) + 1;
};

async function encryptFrame(frame, controller) {
  if (!state.ownKey) return; // no key yet: send nothing rather than plaintext
  const ctr = state.counter++;
  const sealed = await encrypt(state.ownKey, ctr, new Uint8Array(frame.data));
  frame.data = sealed.buffer;
  state.encrypted++;
  controller.enqueue(frame);
}

async function decryptFrame(frame, controller, sender) {
  if (state.plain.has(sender)) {
    count(state.plainFrames, sender);
    controller.enqueue(frame);
    return;
  }
  const bytes = new Uint8Array(frame.data);
  let kid;
  try {
    kid = decodeHeader(bytes).kid;
  } catch {
    count(state.failed, 'unknown');
    return;
  }
  const key = await keyFor(kid);
  const who = state.owners.get(kid) || 'unknown';
  if (!key) {
    count(state.failed, who);
    return;
  }
  try {
    const { plaintext } = await decrypt(new Map([[kid, key]]), bytes);
    if (sender && !sameParticipant(who, sender)) {
      // The frame is genuine but someone else's: the server put it on the
      // wrong tile. Never show one person's media under another's name.
      count(state.failed, sender);
      state.relabelled++;
      return;
    }
    frame.data = plaintext.buffer;
    count(state.decrypted, who);
    state.epochs[who] = Number(kid & 0xffn);
    controller.enqueue(frame);
  } catch {
    // Wrong passphrase or tampering: drop the frame, never show garbage.
    count(state.failed, who);
  }
}

/** `sender`: whose frames a decrypting transform receives (from the msid). */
function pipe(readable, writable, operation, sender) {
  const step = operation === 'encrypt' ? encryptFrame : (f, c) => decryptFrame(f, c, sender);
  const record = pipeFrames(readable, writable, step, state.errors, `${operation}: `);
  state.pipes.push(Object.assign(record, { operation, sender: sender ?? null }));
}

self.onrtctransform = (event) => {
  const { readable, writable, options } = event.transformer;
  pipe(readable, writable, options.operation, options.sender);
};

self.onmessage = async (event) => {
  const m = event.data;
  if (m.type === 'keys') await setKeys(m);
  else if (m.type === 'peers') for (const p of m.peers) await learnPeer(p);
  else if (m.type === 'plain') state.plain.add(m.identity);
  else if (m.type === 'epoch') {
    state.epoch = m.epoch;
    state.ownKey = await senderKey(state.secret, state.identity, state.epoch);
    for (const p of state.peers) await learnPeer(p);
  } else if (m.type === 'seal') {
    // Messages share the media key and counter, so no nonce ever repeats.
    if (!state.ownKey) return self.postMessage({ type: 'sealed', id: m.id, error: 'no key yet' });
    const bytes = await encrypt(state.ownKey, state.counter++, m.plaintext);
    self.postMessage({ type: 'sealed', id: m.id, bytes }, [bytes.buffer]);
  } else if (m.type === 'open') {
    try {
      const { kid } = decodeHeader(m.bytes);
      const key = await keyFor(kid);
      if (!key) throw new Error('unknown sender key');
      const { plaintext } = await decrypt(new Map([[kid, key]]), m.bytes);
      self.postMessage({ type: 'opened', id: m.id, owner: state.owners.get(kid), plaintext }, [plaintext.buffer]);
    } catch (e) {
      self.postMessage({ type: 'opened', id: m.id, error: String(e.message || e) });
    }
  } else if (m.type === 'transform') {
    // Chrome's createEncodedStreams fallback: streams are handed over.
    pipe(m.readable, m.writable, m.operation, m.sender);
  }
};

setInterval(() => {
  const { decrypted, epochs, failed, plainFrames: plain, encrypted, relabelled, errors, pipes } = state;
  self.postMessage({ type: 'stats', decrypted, epochs, failed, plain, encrypted, relabelled, errors, pipes });
}, 500);
