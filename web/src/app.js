// Veil in the browser: join a room, send SFrame-encrypted audio and
// simulcast video, show everyone else's. The passphrase stays in this page
// (it comes from the URL fragment, which browsers never send to a server);
// keys are derived here and handed only to the encoded-transform worker.

import { fingerprint, roomSecret } from './crypto/keys.js';
import { Sha256 } from './crypto/sha256.js';
import { inviteLink, passphraseFromHash } from './invite.js';
import { msidToken } from './msid.js';

const DD_URI = 'https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension';
const $ = (id) => document.getElementById(id);

const call = {
  room: null,
  identity: null,
  pc: null,
  ws: null,
  worker: null,
  peers: new Map(), // identity -> { tile, video, label, state }
  plainPeers: new Set(), // WHIP publishers: media not end-to-end encrypted
  e2ee: { decrypted: {}, failed: {}, plain: {}, encrypted: 0 },
  serverErrors: [], // codes of non-fatal errors the server reported
  names: new Map(), // identity → display name from its token
  fingerprint: '',
  epoch: 0, // our sending key's epoch
  rotations: 0,
  channel: null,
  chat: [], // { from, text, at }
  messageFailures: 0,
  pending: new Map(), // worker request id -> resolve
  nextId: 1,
  dataChain: Promise.resolve(), // incoming data messages, in order
};

/** Asks the worker to seal or open a data message. */
function workerCall(message, transfer = []) {
  const id = call.nextId++;
  return new Promise((resolve) => {
    call.pending.set(id, resolve);
    call.worker.postMessage({ ...message, id }, transfer);
  });
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Sends an end-to-end encrypted chat message to the room. */
async function sendChat(text) {
  if (!call.channel || call.channel.readyState !== 'open') throw new Error('not connected yet');
  const plaintext = textEncoder.encode(JSON.stringify({ type: 'chat', text, at: Date.now() }));
  const sealed = await workerCall({ type: 'seal', plaintext }, [plaintext.buffer]);
  if (sealed.error) throw new Error(sealed.error);
  call.channel.send(sealed.bytes);
  addChat(call.identity, text, true);
}

function addChat(from, text, mine = false) {
  call.chat.push({ from, text, at: Date.now() });
  const li = document.createElement('li');
  const who = document.createElement('strong');
  who.textContent = mine ? 'you' : from.replace(/#[0-9a-f]{6}$/, '');
  li.append(who, document.createTextNode(` ${text}`));
  $('messages').append(li);
  li.scrollIntoView({ block: 'end' });
}

// File transfer: an offer (JSON), binary chunks in order, then an end
// (JSON) with the SHA-256 of the whole file; each message sealed like any
// other. Chunk plaintext: [0x01][16-byte file id][u32 index][bytes].
// Both sides hash as the chunks pass, so neither holds the file twice: the
// sender reads it slice by slice, the receiver keeps it as Blobs (which the
// browser may page out to disk) until it is saved.
const CHUNK = 16 * 1024;
const READ = 64 * CHUNK; // bytes read from the file at once
const HIGH_WATER = 1024 * 1024;
const BLOB_EVERY = 256; // chunks gathered into one Blob on receipt
// Flow control, end to end: receivers acknowledge every ACK_EVERY chunks
// (sealed like any message) and a sender stays within WINDOW chunks of its
// slowest receiver. The SFU relays to each receiver at that receiver's
// pace, and its per-receiver backlog is bounded (16 MiB): without this, a
// slow receiver (a busy laptop) would lose chunks of a large file.
const WINDOW = 512; // chunks (8 MiB)
const ACK_EVERY = 64; // chunks (1 MiB)
const STALL_MS = 30000; // a receiver that acknowledges nothing for this long stops holding the sender
const files = new Map(); // id (hex) -> receive state, see onFileOffer
const outgoing = new Map(); // id (hex) -> { acks: Map(owner -> { next, at }), wake, ackMessages, maxAhead }
call.files = files;

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

async function sealAndSend(plaintext) {
  const sealed = await workerCall({ type: 'seal', plaintext }, [plaintext.buffer]);
  if (sealed.error) throw new Error(sealed.error);
  // Backpressure: wait while the channel holds more than HIGH_WATER.
  while (call.channel.bufferedAmount > HIGH_WATER) {
    if (call.channel.readyState !== 'open') throw new Error('the connection closed');
    await new Promise((resolve) => {
      call.channel.bufferedAmountLowThreshold = HIGH_WATER / 2;
      call.channel.addEventListener('bufferedamountlow', resolve, { once: true });
      call.channel.addEventListener('close', resolve, { once: true });
    });
  }
  if (call.channel.readyState !== 'open') throw new Error('the connection closed');
  call.channel.send(sealed.bytes);
}

const sealJson = (message) => sealAndSend(textEncoder.encode(JSON.stringify(message)));

/** Sends a file to the room, end-to-end encrypted, with its SHA-256. */
async function sendFile(file, onProgress = () => {}) {
  if (!call.channel || call.channel.readyState !== 'open') throw new Error('not connected yet');
  const id = crypto.getRandomValues(new Uint8Array(16));
  const chunks = Math.ceil(file.size / CHUNK);
  const transfer = { acks: new Map(), wake: null, ackMessages: 0, maxAhead: 0 };
  outgoing.set(hex(id), transfer);
  try {
    await sealJson({ type: 'file-offer', id: hex(id), name: file.name, size: file.size, chunks });
    const hash = new Sha256();
    let index = 0;
    for (let at = 0; at < file.size; at += READ) {
      const slice = new Uint8Array(await file.slice(at, Math.min(file.size, at + READ)).arrayBuffer());
      hash.update(slice);
      for (let o = 0; o < slice.length; o += CHUNK, index++) {
        await windowOpen(transfer, index);
        const part = slice.subarray(o, Math.min(slice.length, o + CHUNK));
        const plaintext = new Uint8Array(1 + 16 + 4 + part.length);
        plaintext[0] = 1;
        plaintext.set(id, 1);
        new DataView(plaintext.buffer).setUint32(17, index);
        plaintext.set(part, 21);
        await sealAndSend(plaintext);
        onProgress((index + 1) / chunks);
      }
    }
    const sha256 = hash.hexDigest();
    await sealJson({ type: 'file-end', id: hex(id), sha256 });
    addChat(call.identity, `sent ${file.name} (${file.size} bytes)`, true);
    return { sha256, size: file.size, ack_messages: transfer.ackMessages, max_ahead: transfer.maxAhead };
  } finally {
    outgoing.delete(hex(id));
  }
}

/**
 * Waits until chunk `index` is within WINDOW of the slowest receiver that
 * acknowledges. Receivers that left, or went silent for STALL_MS, no longer
 * count; with none acknowledging (nobody else here yet) the sender goes on.
 */
async function windowOpen(transfer, index) {
  for (;;) {
    const now = Date.now();
    let slowest = Infinity;
    for (const [owner, ack] of transfer.acks) {
      if (now - ack.at > STALL_MS) transfer.acks.delete(owner);
      else slowest = Math.min(slowest, ack.next);
    }
    if (index < slowest + WINDOW) {
      if (slowest !== Infinity) transfer.maxAhead = Math.max(transfer.maxAhead, index - slowest);
      return;
    }
    await new Promise((resolve) => {
      transfer.wake = resolve;
      setTimeout(resolve, 1000);
    });
  }
}

/** A receiver's progress on one of our transfers: `next` chunks handled. */
function onFileAck(owner, message) {
  const transfer = outgoing.get(message.id);
  if (!transfer || !Number.isSafeInteger(message.next) || message.next < 0) return;
  transfer.ackMessages++;
  const ack = transfer.acks.get(owner);
  transfer.acks.set(owner, { next: Math.max(message.next, ack?.next ?? 0), at: Date.now() });
  transfer.wake?.();
}

/** Tells the sender how far we got (never awaited: the data chain goes on). */
function ackFile(id, next) {
  sealJson({ type: 'file-ack', id, next }).catch(() => {});
}

function fileRow(entry) {
  if (entry.row) return entry.row;
  const li = document.createElement('li');
  const name = document.createElement('span');
  name.textContent = `${entry.from.replace(/#[0-9a-f]{6}$/, '')}: ${entry.name} `;
  const progress = document.createElement('progress');
  progress.max = entry.size || 1;
  li.append(name, progress);
  $('messages').append(li);
  entry.row = li;
  entry.progress = progress;
  return li;
}

function onFileOffer(owner, message) {
  const valid =
    /^[0-9a-f]{32}$/.test(message.id) &&
    Number.isSafeInteger(message.size) &&
    message.size >= 0 &&
    message.chunks === Math.ceil(message.size / CHUNK);
  if (!valid || files.has(message.id)) return;
  const entry = {
    from: owner,
    name: String(message.name).slice(0, 200),
    size: message.size,
    chunks: message.chunks,
    next: 0, // index of the chunk expected next (the channel is ordered)
    received: 0,
    hash: new Sha256(),
    parts: [], // chunks not yet gathered into a Blob
    blobs: [],
    sha256: null, // what the sender says, from the file-end message
    done: false,
    verified: false,
    error: null,
  };
  files.set(message.id, entry);
  fileRow(entry);
  ackFile(message.id, 0);
}

function onFileChunk(owner, bytes) {
  const id = hex(bytes.subarray(1, 17));
  const entry = files.get(id);
  if (!entry || entry.from !== owner || entry.error || entry.done) return;
  const index = new DataView(bytes.buffer, bytes.byteOffset).getUint32(17);
  const part = bytes.subarray(21);
  if (index !== entry.next || entry.received + part.length > entry.size) {
    entry.error = 'chunks arrived out of order or too long';
    return;
  }
  entry.next++;
  if (entry.next % ACK_EVERY === 0) ackFile(id, entry.next);
  entry.received += part.length;
  entry.hash.update(part);
  entry.parts.push(part);
  if (entry.parts.length >= BLOB_EVERY) {
    entry.blobs.push(new Blob(entry.parts));
    entry.parts = [];
  }
  entry.progress.value = entry.received;
}

function onFileEnd(owner, message) {
  const entry = files.get(message.id);
  if (!entry || entry.from !== owner || entry.done || typeof message.sha256 !== 'string') return;
  entry.sha256 = message.sha256;
  entry.done = true;
  const whole = !entry.error && entry.next === entry.chunks && entry.received === entry.size;
  entry.verified = whole && entry.hash.hexDigest() === message.sha256;
  const blob = new Blob([...entry.blobs, ...entry.parts]);
  entry.blobs = [];
  entry.parts = [];
  const link = document.createElement('a');
  if (entry.verified) {
    link.href = URL.createObjectURL(blob);
    link.download = entry.name;
    link.textContent = ' save (integrity verified)';
  } else {
    link.textContent = ` integrity check FAILED${entry.error ? `: ${entry.error}` : ''}`;
  }
  entry.row.append(link);
}

/**
 * A relayed data message: `[label length][label][SFrame ciphertext]`.
 * Messages are opened in parallel by the worker but handled strictly in
 * arrival order (file chunks depend on it).
 */
function onData(data) {
  const opened = openData(data);
  call.dataChain = call.dataChain.then(() => opened).then(onOpened, () => call.messageFailures++);
}

async function openData(data) {
  const bytes = new Uint8Array(data);
  const len = bytes[0];
  if (bytes.length < 1 + len) return null;
  const label = textDecoder.decode(bytes.subarray(1, 1 + len));
  const ciphertext = bytes.slice(1 + len);
  const opened = await workerCall({ type: 'open', bytes: ciphertext }, [ciphertext.buffer]);
  // The SFU's label must match the owner of the key that opened it.
  return opened.error || opened.owner !== label ? null : opened;
}

function onOpened(opened) {
  if (!opened) {
    call.messageFailures++;
    return;
  }
  if (opened.plaintext[0] === 1) return onFileChunk(opened.owner, opened.plaintext);
  try {
    const message = JSON.parse(textDecoder.decode(opened.plaintext));
    if (message.type === 'chat' && typeof message.text === 'string') addChat(opened.owner, message.text);
    if (message.type === 'file-offer') onFileOffer(opened.owner, message);
    if (message.type === 'file-end') onFileEnd(opened.owner, message);
    if (message.type === 'file-ack') onFileAck(opened.owner, message);
  } catch {
    call.messageFailures++;
  }
}

function roomFromPath() {
  const m = location.pathname.match(/^\/r\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : '';
}

function status(text) {
  $('status').textContent = text;
}

/** The name a tile shows: the token's display name, else the identity. */
function displayName(identity) {
  const [who, screen] = identity.split(' (screen)');
  const name = call.names.get(who) || who.replace(/#[0-9a-f]{6}$/, '');
  return screen === undefined ? name : `${name} (screen)`;
}

function tileFor(identity) {
  let peer = call.peers.get(identity);
  if (peer) return peer;
  const tile = document.createElement('div');
  tile.className = 'tile';
  tile.dataset.identity = identity;
  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  const label = document.createElement('div');
  label.className = 'label';
  label.textContent = displayName(identity);
  const state = document.createElement('div');
  state.className = 'state';
  tile.append(video, label, state);
  $('grid').append(tile);
  tileSizes.observe(tile);
  peer = { tile, video, label, state, audio: null };
  call.peers.set(identity, peer);
  return peer;
}

function identityOfStream(streamId) {
  for (const identity of call.peers.keys()) if (msidToken(identity) === streamId) return identity;
  return streamId;
}

function send(message) {
  if (call.ws?.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify(message));
}

/** `sender`: for a receiver, whose frames it carries. */
function attachTransform(target, operation, sender = null) {
  call.transformApi = 'RTCRtpScriptTransform' in window ? 'script-transform' : 'encoded-streams';
  if ('RTCRtpScriptTransform' in window) {
    target.transform = new RTCRtpScriptTransform(call.worker, { operation, sender });
  } else {
    // Chrome's older API: hand the streams to the worker.
    const { readable, writable } = target.createEncodedStreams();
    call.worker.postMessage({ type: 'transform', operation, sender, readable, writable }, [readable, writable]);
  }
}

function negotiateDependencyDescriptor(transceiver) {
  if (!transceiver.getHeaderExtensionsToNegotiate) return;
  const extensions = transceiver.getHeaderExtensionsToNegotiate().map((e) =>
    e.uri === DD_URI ? { ...e, direction: 'sendrecv' } : e,
  );
  transceiver.setHeaderExtensionsToNegotiate(extensions);
}

async function onEvent(event) {
  switch (event.type) {
    case 'offer': {
      await call.pc.setRemoteDescription(event.offer);
      const answer = await call.pc.createAnswer();
      await call.pc.setLocalDescription(answer);
      send({ type: 'answer', answer: { type: 'answer', sdp: answer.sdp } });
      break;
    }
    case 'participant_joined':
      if (event.name) call.names.set(event.participant, event.name);
      tileFor(event.participant).label.textContent = displayName(event.participant);
      call.worker.postMessage({ type: 'peers', peers: [event.participant] });
      if (event.e2ee === false) {
        // A WHIP publisher (OBS, ffmpeg…): its media cannot be end-to-end
        // encrypted. Play it, but say so on its tile.
        call.plainPeers.add(event.participant);
        call.worker.postMessage({ type: 'plain', identity: event.participant });
        showE2eeState();
      }
      break;
    case 'participant_left': {
      const peer = call.peers.get(event.participant);
      peer?.tile.remove();
      call.peers.delete(event.participant);
      // A leaver no longer holds back our file transfers.
      for (const transfer of outgoing.values()) {
        transfer.acks.delete(event.participant);
        transfer.wake?.();
      }
      // From now on we encrypt under a key the leaver never received. (With
      // a passphrase they could derive it again; see docs/e2ee.md.)
      rotateKey();
      break;
    }
    case 'active_speakers':
      for (const [identity, peer] of call.peers) {
        const speaking = event.speakers.includes(identity);
        peer.tile.classList.toggle('speaking', speaking);
        if (speaking) peer.spoke = true;
      }
      break;
    case 'connection_quality': {
      const peer = call.peers.get(event.participant);
      if (peer) peer.tile.dataset.quality = event.quality;
      break;
    }
    case 'track_muted': {
      const peer = call.peers.get(event.participant);
      if (peer) peer.tile.classList.toggle(`muted-${event.kind}`, event.muted);
      break;
    }
    case 'node_draining':
    case 'node_lost':
      rejoin('The media server is moving; reconnecting…');
      break;
    case 'disconnected':
      // The server ended this media session; there is nothing to resume.
      // Lost (a failed connection): join again. Ended on purpose (a
      // moderator, the room closing): stop, and say why.
      call.ended = event.reason;
      if (event.rejoin) {
        rejoin(`The media session was lost (${event.reason}); rejoining…`);
        break;
      }
      call.leaving = true;
      call.pc.close();
      for (const track of [call.audioTrack, call.videoTrack, call.screen?.track]) track?.stop();
      status(`The call ended: ${event.reason}.`);
      break;
    default:
  }
}

/**
 * A new media session: the page reloads into the same room (name and
 * passphrase stay in the URL, the passphrase in the fragment only). The
 * frame counter starts at the wall clock, so no nonce repeats.
 */
function rejoin(reason) {
  if (call.leaving) return;
  status(reason);
  call.leaving = true;
  setTimeout(() => location.reload(), 500);
}

/**
 * Moves our sending key to the next epoch. Receivers need no message: they
 * read the epoch from the KID of our next frame and derive the key.
 */
function rotateKey() {
  call.epoch = (call.epoch + 1) % 256;
  call.rotations++;
  call.worker.postMessage({ type: 'epoch', epoch: call.epoch });
  $('epoch').textContent = `key epoch ${call.epoch}`;
}

/** Mutes or unmutes our microphone or camera, and tells the room. */
function setMuted(kind, muted) {
  const track = kind === 'audio' ? call.audioTrack : call.videoTrack;
  if (track) track.enabled = !muted;
  send({ type: 'mute', kind, muted });
  $(`mute-${kind}`).textContent = `${muted ? 'Unmute' : 'Mute'} ${kind === 'audio' ? 'mic' : 'camera'}`;
  $(`mute-${kind}`).dataset.muted = muted;
}

/** Shares the screen as a second, end-to-end encrypted video track. */
async function shareScreen() {
  if (call.screen) return;
  const display = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 } });
  const [track] = display.getVideoTracks();
  const transceiver = call.pc.addTransceiver(track, { direction: 'sendonly', streams: [call.media] });
  negotiateDependencyDescriptor(transceiver);
  attachTransform(transceiver.sender, 'encrypt');
  call.screen = { track, transceiver };
  track.addEventListener('ended', () => stopScreen());
  await renegotiate();
  $('share').textContent = 'Stop sharing';
}

async function stopScreen() {
  if (!call.screen) return;
  call.screen.track.stop();
  call.screen.transceiver.stop();
  call.screen = null;
  await renegotiate();
  $('share').textContent = 'Share screen';
}

/** Our own offer (publish/unpublish); the server answers with `answer`. */
async function renegotiate() {
  const offer = await call.pc.createOffer();
  await call.pc.setLocalDescription(offer);
  send({ type: 'offer', offer: { type: 'offer', sdp: offer.sdp } });
}

/** Asks for the simulcast layer a tile's size needs (0 = smallest). */
function setLayer(identity, maxLayer) {
  const peer = call.peers.get(identity);
  if (!peer || peer.layer === maxLayer) return;
  peer.layer = maxLayer;
  send({ type: 'layer', participant: identity, max_layer: maxLayer });
}

const tileSizes = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const identity = entry.target.dataset.identity;
    const width = entry.contentRect.width;
    // A screen share's tile is not a participant: layers follow the camera tile.
    if (identity && !entry.target.dataset.screen) setLayer(identity, width < 240 ? 0 : width < 480 ? 1 : 2);
  }
});

function showE2eeState() {
  for (const [identity, peer] of call.peers) {
    const ok = call.e2ee.decrypted[identity] || 0;
    const bad = call.e2ee.failed[identity] || 0;
    const plain = call.plainPeers.has(identity);
    const undecryptable = !plain && bad > 0 && ok === 0;
    peer.tile.classList.toggle('undecryptable', undecryptable);
    peer.tile.classList.toggle('plain', plain);
    peer.state.textContent = plain
      ? 'not end-to-end encrypted (broadcast ingest)'
      : undecryptable
        ? 'cannot decrypt (different passphrase?)'
        : '';
  }
  // The footer's lock: always on screen, unlike the status line.
  const unreadable = [...call.peers.values()].filter((p) => p.tile.classList.contains('undecryptable')).length;
  const plain = call.plainPeers.size;
  const badge = $('e2ee');
  badge.dataset.state = call.e2ee.encrypted > 0 ? (unreadable || plain ? 'partial' : 'on') : 'starting';
  badge.textContent = call.e2ee.encrypted === 0
    ? 'Setting up end-to-end encryption…'
    : ['End-to-end encrypted',
        unreadable ? `${unreadable} cannot decrypt` : '',
        plain ? `${plain} not encrypted (broadcast)` : ''].filter(Boolean).join(' · ');
}

async function join(room, name, passphrase, audioOnly) {
  status('Deriving the room key…');
  const secret = await roomSecret(room, passphrase);
  call.fingerprint = await fingerprint(secret);
  $('fingerprint').textContent = call.fingerprint;
  status('Getting a token…');
  const tokenReply = await fetch('/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ room, name }),
  });
  if (!tokenReply.ok) throw new Error(`the server refused a token (${tokenReply.status})`);
  const { token, identity } = await tokenReply.json();
  call.room = room;
  call.identity = identity;

  call.worker = new Worker('/app/e2ee-worker.js', { type: 'module' });
  call.worker.onmessage = (e) => {
    if (e.data.type === 'stats') {
      call.e2ee = e.data;
      showE2eeState();
    } else if (e.data.id && call.pending.has(e.data.id)) {
      call.pending.get(e.data.id)(e.data);
      call.pending.delete(e.data.id);
    }
  };
  call.worker.postMessage({ type: 'keys', secret, identity, epoch: 0, peers: [] });

  // Audio only: no camera, and the server sends us no one's video (nor
  // spends bandwidth estimation on us). Screen sharing needs video, so it
  // goes too.
  status(audioOnly ? 'Starting the microphone…' : 'Starting camera and microphone…');
  const camera = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
  const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: audioOnly ? false : camera });
  $('self').srcObject = media;
  for (const id of ['mute-video', 'share']) $(id).hidden = audioOnly;
  const pc = new RTCPeerConnection({ encodedInsertableStreams: !('RTCRtpScriptTransform' in window) });
  call.pc = pc;
  const [audioTrack] = media.getAudioTracks();
  const [videoTrack] = media.getVideoTracks();
  call.audioTrack = audioTrack;
  call.videoTrack = videoTrack;
  call.media = media;
  const audio = pc.addTransceiver(audioTrack, { direction: 'sendonly', streams: [media] });
  attachTransform(audio.sender, 'encrypt');
  if (videoTrack) {
    const video = pc.addTransceiver(videoTrack, {
      direction: 'sendonly',
      streams: [media],
      sendEncodings: [
        { rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
        { rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
        { rid: 'h', maxBitrate: 1_500_000 },
      ],
    });
    negotiateDependencyDescriptor(video);
    attachTransform(video.sender, 'encrypt');
  }
  // The media path died (network change, long outage): join again. Only on
  // "failed": a "disconnected" blip heals by itself (Chrome declares
  // "failed" after about 30 s without consent), and a page reloading on a
  // blip under CPU load would leave the call for nothing.
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed') rejoin('Media connection lost; reconnecting…');
  };
  const channel = pc.createDataChannel('veil');
  channel.binaryType = 'arraybuffer';
  channel.onmessage = (e) => onData(e.data);
  call.channel = channel;
  pc.ontrack = (e) => {
    const identity = identityOfStream(e.streams[0]?.id || '');
    attachTransform(e.receiver, 'decrypt', identity);
    negotiateDependencyDescriptor(e.transceiver);
    let peer = tileFor(identity);
    if (e.track.kind === 'video' && peer.video.srcObject) {
      // A second video track from the same person: their screen.
      peer = tileFor(`${identity} (screen)`);
      peer.tile.dataset.screen = 'true';
      peer.tile.classList.add('screen');
    }
    if (e.track.kind === 'video') {
      peer.video.srcObject = new MediaStream([e.track]);
    } else {
      peer.audio = peer.audio || new Audio();
      peer.audio.autoplay = true;
      peer.audio.srcObject = new MediaStream([e.track]);
      peer.tile.append(peer.audio);
    }
    peer.receivers = [...(peer.receivers || []), e.receiver];
  };

  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  status('Joining…');
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  // One socket after another: the first joins, later ones resume the same
  // media session (media never stopped) until the server forgets it.
  const connect = (first) => {
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    call.ws = ws;
    ws.onopen = () =>
      send(first
        ? { type: 'join', v: 1, token, offer: { type: 'offer', sdp: offer.sdp }, audio_only: audioOnly }
        : { type: 'resume', v: 1, token, resume: call.resume });
    ws.onmessage = async (m) => {
      const message = JSON.parse(m.data);
      if (message.type === 'joined') {
        call.resume = message.resume;
        await pc.setRemoteDescription(message.answer);
        status(`In ${room} as ${name}. End-to-end encrypted; compare the safety number.`);
      } else if (message.type === 'resumed') {
        call.resumes = (call.resumes || 0) + 1;
        status(`Back in ${room}.`);
      } else if (message.type === 'event') {
        await onEvent(message.event);
      } else if (message.type === 'answer') {
        await pc.setRemoteDescription(message.answer);
      } else if (message.type === 'error') {
        if (['node_lost', 'resume_failed'].includes(message.code)) rejoin('Reconnecting…');
        else {
          call.serverErrors.push(message.code);
          status(`Error: ${message.message}`);
        }
      }
    };
    ws.onclose = () => {
      if (call.ended) return;
      if (call.leaving || !call.resume) return status('Disconnected from the server.');
      status('Connection lost; reconnecting…');
      setTimeout(() => connect(false), 1000);
    };
  };
  connect(true);
  setInterval(() => send({ type: 'ping' }), 15000);
}

/** What tests read: per remote identity, decoded frames and E2EE counts. */
async function stats() {
  const remotes = {};
  for (const [identity, peer] of call.peers) {
    const r = {
      framesDecoded: 0,
      audioSamples: 0,
      // Samples alone prove nothing (garbage also "decodes"): what the
      // decoder had to invent, and whether anything audible came out.
      concealedSamples: 0,
      audioEnergy: 0,
      decrypted: call.e2ee.decrypted[identity] || 0,
      epoch: call.e2ee.epochs?.[identity] ?? null, // key epoch of its latest frame
      failed: call.e2ee.failed[identity] || 0,
      plain: call.e2ee.plain[identity] || 0,
    };
    for (const receiver of peer.receivers || []) {
      for (const s of (await receiver.getStats()).values()) {
        if (s.type !== 'inbound-rtp') continue;
        if (s.kind === 'video') {
          r.framesDecoded += s.framesDecoded || 0;
          r.frameWidth = s.frameWidth || 0;
        }
        else {
          r.audioSamples += s.totalSamplesReceived || 0;
          r.concealedSamples += s.concealedSamples || 0;
          r.audioEnergy += s.totalAudioEnergy || 0;
        }
      }
    }
    r.undecryptable = peer.tile.classList.contains('undecryptable');
    r.spoke = Boolean(peer.spoke); // highlighted as an active speaker at some point
    r.quality = peer.tile.dataset.quality || null;
    r.label = peer.label.textContent;
    r.notE2ee = peer.tile.classList.contains('plain');
    r.mutedAudio = peer.tile.classList.contains('muted-audio');
    r.mutedVideo = peer.tile.classList.contains('muted-video');
    remotes[identity] = r;
  }
  // What we send per simulcast layer: the encoder may scale a layer down
  // (CPU or bandwidth), so a layer's width is not fixed.
  const outbound = [];
  for (const s of call.pc ? (await call.pc.getStats()).values() : []) {
    if (s.type === 'outbound-rtp' && s.kind === 'video') {
      outbound.push({
        mid: s.mid ?? null,
        rid: s.rid || null,
        frameWidth: s.frameWidth || 0,
        framesEncoded: s.framesEncoded || 0,
        packetsSent: s.packetsSent || 0,
        limitation: s.qualityLimitationReason || 'none',
      });
    }
  }
  return {
    identity: call.identity,
    fingerprint: call.fingerprint,
    signalingState: call.pc?.signalingState ?? null,
    epoch: call.epoch,
    rotations: call.rotations,
    outbound,
    encrypted: call.e2ee.encrypted,
    transformErrors: call.e2ee.errors ?? null,
    pipes: call.e2ee.pipes ?? null,
    e2eeBadge: $('e2ee').textContent,
    serverErrors: call.serverErrors,
    remotes,
    chat: call.chat,
    messageFailures: call.messageFailures,
    channelOpen: call.channel?.readyState === 'open',
    resumes: call.resumes || 0,
    ended: call.ended ?? null,
    files: [...files.values()].map(({ from, name, size, received, done, verified, sha256, error }) => ({
      from, name, size, received, done, verified, sha256, error,
    })),
  };
}

window.veil = { stats, call, sendChat, sendFile, setMuted, setLayer, shareScreen, stopScreen, rotateKey };

function start() {
  const room = roomFromPath();
  const params = new URLSearchParams(location.search);
  const passphrase = passphraseFromHash(location.hash);
  $('room').value = room;
  $('name').value = params.get('name') || '';
  $('passphrase').value = passphrase;
  $('audio-only').checked = params.get('audio') === 'only';
  const go = (e) => {
    e?.preventDefault();
    const r = $('room').value.trim();
    const n = $('name').value.trim();
    const p = $('passphrase').value;
    const audioOnly = $('audio-only').checked;
    if (!r || !n || !p) return status('Room, name and passphrase are all needed.');
    $('join').hidden = true;
    $('call').hidden = false;
    // The address keeps the choices, so a reload (or a rejoin) makes the same call.
    const audio = audioOnly ? '&audio=only' : '';
    history.replaceState(null, '', `/r/${encodeURIComponent(r)}?name=${encodeURIComponent(n)}${audio}#${encodeURIComponent(p)}`);
    join(r, n, p, audioOnly).catch((err) => status(`Could not join: ${err.message}`));
  };
  $('join').addEventListener('submit', go);
  $('copy').addEventListener('click', async () => {
    // Not location.href: that carries this participant's ?name=.
    const link = inviteLink(location.origin, $('room').value.trim(), $('passphrase').value);
    try {
      await navigator.clipboard.writeText(link);
      status('Invite link copied. It holds the passphrase: share it only with the people you invite.');
    } catch {
      status(`Copy this invite link: ${link}`);
    }
  });
  $('rotate').addEventListener('click', () => rotateKey());
  $('share').addEventListener('click', () =>
    (call.screen ? stopScreen() : shareScreen()).catch((err) => status(`Screen share failed: ${err.message}`)),
  );
  for (const kind of ['audio', 'video']) {
    $(`mute-${kind}`).addEventListener('click', () => setMuted(kind, $(`mute-${kind}`).dataset.muted !== 'true'));
  }
  $('file').addEventListener('change', async () => {
    const file = $('file').files[0];
    if (!file) return;
    const bar = $('sending');
    bar.hidden = false;
    try {
      await sendFile(file, (p) => (bar.value = p));
    } catch (err) {
      status(`File not sent: ${err.message}`);
    }
    bar.hidden = true;
    $('file').value = '';
  });
  $('chat').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('say').value.trim();
    if (!text) return;
    sendChat(text)
      .then(() => ($('say').value = ''))
      .catch((err) => status(`Message not sent: ${err.message}`));
  });
  if (room && params.get('name') && passphrase) go();
}

start();
