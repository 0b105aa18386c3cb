// Chromium (libwebrtc, a WebRTC stack independent of ours) publishes its fake
// camera and microphone over WHIP and plays them back over WHEP, the way a
// browser-based broadcaster and viewer would.
//
// Usage: node tests/whip-whep.mjs <base-url> <room> <publisher-token> <viewer-token> [passphrase]
// With a passphrase (and open rooms on the server), a participant on the
// real page joins too and must see the WHIP publisher labelled.
// Prints one JSON object with what happened; the Rust test asserts on it.

import { runScript } from './browser.mjs';

const [base, room, publisherToken, viewerToken, openRoomPassphrase] = process.argv.slice(2);
if (!viewerToken) {
  console.error('usage: whip-whep.mjs <base-url> <room> <publisher-token> <viewer-token>');
  process.exit(2);
}

const result = {};
await runScript(100_000, result, async (context) => {
  const page = await context.newPage();
  // Any page of the server gives the scripts its origin (a secure context
  // on 127.0.0.1, same-origin fetches).
  await page.goto(`${base}/healthz`);

  Object.assign(result, await page.evaluate(async ({ room, token }) => {
    const gathered = (pc) => new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') resolve();
      });
      setTimeout(resolve, 3000);
    });
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: true,
      video: { width: 320, height: 240, frameRate: 15 },
    });
    const pc = new RTCPeerConnection();
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const res = await fetch(`/whip/${encodeURIComponent(room)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
      body: pc.localDescription.sdp,
    });
    const out = {
      whip_status: res.status,
      whip_content_type: res.headers.get('content-type'),
      whip_location: res.headers.get('location'),
    };
    if (res.status !== 201) return { ...out, whip_body: await res.text() };
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    window.publisher = pc;
    return out;
  }, { room, token: publisherToken }));
  if (result.whip_status !== 201) throw new Error(`WHIP refused: ${result.whip_status}`);

  const viewer = await context.newPage();
  await viewer.goto(`${base}/healthz`);
  Object.assign(result, await viewer.evaluate(async ({ room, token, publisher }) => {
    const pc = new RTCPeerConnection();
    // Received audio is only decoded when something plays it.
    pc.addEventListener('track', (e) => {
      const el = document.createElement(e.track.kind);
      el.autoplay = true;
      el.srcObject = new MediaStream([e.track]);
      document.body.appendChild(el);
    });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(`/whep/${encodeURIComponent(room)}/${encodeURIComponent(publisher)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
      body: pc.localDescription.sdp,
    });
    const out = { whep_status: res.status, whep_location: res.headers.get('location') };
    if (res.status !== 201) return { ...out, whep_body: await res.text() };
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    window.viewer = pc;
    return out;
  }, { room, token: viewerToken, publisher: 'chromium-encoder' }));
  if (result.whep_status !== 201) throw new Error(`WHEP refused: ${result.whep_status}`);

  // Wait until the viewer decodes video and audio (up to 30 s).
  const stats = async () => viewer.evaluate(async () => {
    const s = {
      frames_decoded: 0, audio_samples: 0, concealed_samples: 0, audio_level: 0, width: 0,
      audio_packets: 0, video_packets: 0,
    };
    for (const r of (await window.viewer.getStats()).values()) {
      if (r.type !== 'inbound-rtp') continue;
      if (r.kind === 'video') {
        s.frames_decoded = r.framesDecoded || 0;
        s.video_packets = r.packetsReceived || 0;
        s.width = r.frameWidth || 0;
      } else {
        s.audio_samples = r.totalSamplesReceived || 0;
        s.audio_packets = r.packetsReceived || 0;
        s.concealed_samples = r.concealedSamples || 0;
        s.audio_level = r.audioLevel || 0;
      }
    }
    return s;
  });
  let last = await stats();
  for (let i = 0; i < 60 && (last.frames_decoded < 30 || last.audio_samples < 48000); i++) {
    await new Promise((r) => setTimeout(r, 500));
    last = await stats();
  }
  Object.assign(result, last);

  // A participant on the real page sees the WHIP publisher's video, played
  // as it comes and labelled "not end-to-end encrypted" (OBS and friends
  // cannot SFrame-encrypt), rather than a "cannot decrypt" tile.
  if (openRoomPassphrase) {
    const member = await context.newPage();
    member.on('pageerror', (e) => (result.page_errors ??= []).push(`member: ${e.message}`));
    await member.goto(`${base}/r/${encodeURIComponent(room)}?name=member#${encodeURIComponent(openRoomPassphrase)}`);
    let seen;
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const s = await member.evaluate(() => window.veil.stats());
      seen = s.remotes['chromium-encoder'];
      if (seen?.framesDecoded > 10 && seen?.notE2ee) break;
    }
    result.member_sees_publisher = seen || null;
    result.member_text = await member.evaluate(() => document.body.innerText);
  }

  // End both sessions with DELETE, as a WHIP/WHEP client does.
  result.delete_statuses = await page.evaluate(async ({ base, locations, tokens }) => {
    const statuses = [];
    for (let i = 0; i < locations.length; i++) {
      const res = await fetch(base + locations[i], {
        method: 'DELETE',
        headers: { authorization: `Bearer ${tokens[i]}` },
      });
      statuses.push(res.status);
    }
    return statuses;
  }, {
    base,
    locations: [result.whep_location, result.whip_location],
    tokens: [viewerToken, publisherToken],
  });
});
