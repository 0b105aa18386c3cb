// Browsers in one room through the real page: those with the room's
// passphrase decode each other's SFrame-encrypted video and audio; one
// with a wrong passphrase decodes nothing and is shown "cannot decrypt";
// one that joins audio-only hears the room and is sent no video.
//
// Usage: node tests/call.mjs <base-url> <room> <passphrase> <screenshot.png>
// Prints one JSON object; the Rust test (signalling/tests/browser_call.rs)
// asserts on it.

import { runScript } from './browser.mjs';

const [base, room, passphrase, screenshot] = process.argv.slice(2);
const result = { pages: {} };
await runScript(420_000, result, async (context) => {
  // `typed`: open the plain invite link and type the name into the form,
  // as a person does; otherwise the link carries ?name= and joins at once.
  const open = async (name, secret, typed = false) => {
    const page = await context.newPage();
    page.on('pageerror', (e) => (result.page_errors ??= []).push(`${name}: ${e.message}`));
    // Nobody should have to reload into the call during this test.
    page.on('load', () => (result.loads ??= {})[name] = (result.loads?.[name] || 0) + 1);
    const invite = `${base}/r/${encodeURIComponent(room)}`;
    if (typed) {
      await page.goto(`${invite}#${encodeURIComponent(secret)}`);
      await page.fill('#name', name);
      await page.click('#join button[type=submit]');
    } else {
      await page.goto(`${invite}?name=${encodeURIComponent(name)}#${encodeURIComponent(secret)}`);
    }
    return page;
  };

  const stats = (page) => page.evaluate(() => window.veil.stats());
  const remote = (s, name) => {
    const [who, rest] = name.split(' (');
    const suffix = rest ? ` (${rest}` : '';
    const match = ([id]) =>
      id === name || (id.startsWith(`${who}#`) && id.endsWith(suffix) && (suffix !== '' || !id.includes(' (')));
    return Object.entries(s.remotes).find(match)?.[1];
  };
  const rustPeer = process.env.RUST_PEER;
  // The SFU's per-participant counts (admin API), for failure messages.
  const sfuView = async () => {
    if (!process.env.ADMIN_TOKEN) return null;
    const headers = { authorization: `Bearer ${process.env.ADMIN_TOKEN}` };
    try {
      const participants = await (await fetch(`${base}/api/rooms/${encodeURIComponent(room)}/participants`, { headers })).json();
      const metrics = (await (await fetch(`${base}/metrics`)).text())
        .split('\n')
        .filter((l) => /events_dropped|event_overflows/.test(l) && !l.startsWith('#'));
      return { participants, metrics };
    } catch (e) {
      return `${e}`;
    }
  };

  const alice = await open('alice', passphrase);
  const bob = await open('bob', passphrase);
  const carol = await open('carol', passphrase, true);
  const mallory = await open('mallory', `${passphrase} (wrong)`);
  let a, b, c, m;
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 500));
    [a, b, c, m] = await Promise.all([stats(alice), stats(bob), stats(carol), stats(mallory)]);
    const trio = [[a, 'bob'], [a, 'carol'], [b, 'alice'], [b, 'carol'], [c, 'alice'], [c, 'bob']]
      .every(([s, who]) => remote(s, who)?.framesDecoded > 20);
    const ab = remote(a, 'bob');
    const ba = remote(b, 'alice');
    const am = remote(a, 'mallory');
    const rust = !rustPeer || (remote(a, rustPeer)?.decrypted > 20 && remote(b, rustPeer)?.decrypted > 20);
    if (trio && ab?.framesDecoded > 20 && ba?.framesDecoded > 20 && ab?.audioSamples > 48000 && am?.undecryptable && remote(m, 'alice')?.undecryptable && rust && a.channelOpen && b.channelOpen && m.channelOpen) break;
  }
  // Chat: end-to-end encrypted over the SFU's data channels.
  // Typed into the chat box and sent with Enter.
  await alice.fill('#say', 'hello from alice');
  await alice.press('#say', 'Enter');
  await mallory.evaluate(() => window.veil.sendChat('mallory was here'));
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 250));
    [a, b, m] = await Promise.all([stats(alice), stats(bob), stats(mallory)]);
    const rustSaid = !rustPeer || a.chat.some((c) => c.from === rustPeer);
    if (b.chat.some((c) => c.text === 'hello from alice') && m.messageFailures > 0 && a.messageFailures > 0 && rustSaid) break;
  }
  // A 20 MB file from alice: bob gets it whole and verified, mallory nothing.
  const size = 20 * 1024 * 1024;
  const started = Date.now();
  result.file_sent = await alice.evaluate(async (size) => {
    const data = new Uint8Array(size);
    for (let o = 0; o < size; o += 65536) crypto.getRandomValues(data.subarray(o, Math.min(size, o + 65536)));
    const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
    const expected = hex(await crypto.subtle.digest('SHA-256', data));
    return { ...(await window.veil.sendFile(new File([data], 'random.bin'))), expected };
  }, size);
  for (let i = 0; i < 1200; i++) {
    const f = (await stats(bob)).files.find((x) => x.name === 'random.bin');
    if (f?.done) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  result.file_ms = Date.now() - started;
  // Alice's signalling socket drops: the page resumes the same session and
  // keeps decoding bob.
  const before = remote(await stats(alice), 'bob').framesDecoded;
  await alice.evaluate(() => window.veil.call.ws.close());
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 250));
    const s = await stats(alice);
    if (s.resumes > 0 && remote(s, 'bob').framesDecoded > before + 30) break;
  }
  result.after_drop = { resumes: (await stats(alice)).resumes, decoded: remote(await stats(alice), 'bob').framesDecoded - before };
  // Alice shares her screen: bob decodes it as a second tile.
  await alice.evaluate(() => window.veil.shareScreen());
  for (let i = 0; i < 120 && !(remote(await stats(bob), 'alice (screen)')?.framesDecoded > 10); i++) {
    await new Promise((r) => setTimeout(r, 250));
  }
  result.screen = remote(await stats(bob), 'alice (screen)') || null;
  if (!(result.screen?.framesDecoded > 10)) {
    // Where did the screen's frames stop? Alice's side of it, for the report.
    const [sa, sb] = await Promise.all([stats(alice), stats(bob)]);
    result.screen_debug = {
      alice: {
        signalingState: sa.signalingState, outbound: sa.outbound, resumes: sa.resumes,
        encrypted: sa.encrypted, transformErrors: sa.transformErrors, pipes: sa.pipes,
        transceivers: await alice.evaluate(() => window.veil.call.pc.getTransceivers()
          .map((t) => `${t.mid} ${t.sender.track?.kind ?? '-'} ${t.direction} ${t.currentDirection}`)),
      },
      bob: {
        signalingState: sb.signalingState, remotes: Object.keys(sb.remotes), pipes: sb.pipes,
        inbound: await bob.evaluate(async () => [...(await window.veil.call.pc.getStats()).values()]
          .filter((s) => s.type === 'inbound-rtp' && s.kind === 'video')
          .map((s) => `${s.mid} pkts=${s.packetsReceived} lost=${s.packetsLost} frames=${s.framesReceived} decoded=${s.framesDecoded} keyframes=${s.keyFramesDecoded} dropped=${s.framesDropped} pli=${s.pliCount} nack=${s.nackCount} ${s.decoderImplementation ?? ''}`)),
      },
      sfu: await sfuView(),
    };
  }
  // What everyone heard before anyone mutes. Concealment is judged here:
  // a muted microphone leaves its listeners concealing the silence.
  [a, b, c] = await Promise.all([stats(alice), stats(bob), stats(carol)]);
  result.hearing = { alice: a.remotes, bob: b.remotes, carol: c.remotes };
  // Bob mutes his microphone: alice's tile for him says so.
  await bob.click('#mute-audio');
  // Carol turns her camera off: the SFU stops forwarding it.
  await carol.click('#mute-video');
  // Frames already on their way (a browser under CPU load can hold some
  // in its jitter buffer for a while) may still be decoded: wait until
  // the count has stood still for 1.5 s (at most 10 s), then watch 3 s.
  // (A disabled camera still sends black frames, so forwarding that went
  // on would show in those 3 s.)
  let frozenAt = remote(await stats(alice), 'carol').framesDecoded;
  for (let still = 0, i = 0; still < 3 && i < 20; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const now = remote(await stats(alice), 'carol').framesDecoded;
    still = now === frozenAt ? still + 1 : 0;
    frozenAt = now;
  }
  await new Promise((r) => setTimeout(r, 3000));
  result.camera_off = { framesSince: remote(await stats(alice), 'carol').framesDecoded - frozenAt };
  // Alice's tile for bob shrinks, then grows: it asks for the smallest
  // layer, then the largest.
  const bobId = (await stats(bob)).identity;
  const widthAt = async () => remote(await stats(alice), 'bob')?.frameWidth || 0;
  // A layer is as wide as bob's encoder makes it right now (Chrome scales
  // layers down when CPU or bandwidth is short), so compare with that.
  // `top`: the highest layer bob sends at the moment (Chrome pauses its top
  // layers when bandwidth or CPU run short).
  const layerWidth = async (rid) => {
    const out = (await stats(bob)).outbound;
    if (rid !== 'top') return out.find((o) => o.rid === rid)?.frameWidth || 0;
    return ['h', 'm', 'l'].map((r) => out.find((o) => o.rid === r)?.frameWidth || 0).find((w) => w > 0) || 0;
  };
  const reach = async (rid) => {
    let got, sent;
    // Up to 30 s: switching up waits for a keyframe and for the SFU's
    // estimate of alice's bandwidth to allow the layer.
    for (let i = 0; i < 120; i++) {
      [got, sent] = [await widthAt(), await layerWidth(rid)];
      if (got > 0 && got === sent) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    return { got, sent };
  };
  // The tile's size picks the layer (the page's ResizeObserver): a
  // thumbnail gets the smallest, a wide tile the largest.
  // `others`: the width of everyone else's tile, if it changes.
  const resizeTile = (px, others = null) =>
    alice.evaluate(([id, px, others]) => {
      for (const [who, peer] of window.veil.call.peers) {
        const width = who === id ? px : others;
        if (width === null) continue;
        peer.tile.style.justifySelf = 'start';
        peer.tile.style.width = `${width}px`;
      }
    }, [bobId, px, others]);
  await resizeTile(200);
  result.layer_small = await reach('l');
  // Speaker view: bob large, everyone else a thumbnail. The thumbnails
  // leave alice's downlink to bob's tile, however tight the SFU's
  // estimate of it is with four browsers on two cores.
  await resizeTile(640, 200);
  result.layer_large = await reach('top');
  result.bob_outbound = (await stats(bob)).outbound;
  [a, b, c, m] = await Promise.all([stats(alice), stats(bob), stats(carol), stats(mallory)]);
  result.pages = { alice: a, bob: b, carol: c, mallory: m };
  if (screenshot) await alice.screenshot({ path: screenshot, fullPage: true });
  // "Copy invite link": the link carries the room and passphrase, not
  // alice's name, so whoever opens it is asked for theirs.
  // Granting replaces the origin's permissions: keep the microphone and
  // camera, or every page's capture stops from here on.
  await context.grantPermissions(['clipboard-read', 'clipboard-write', 'microphone', 'camera'], { origin: base });
  await alice.bringToFront();
  await alice.click('#copy');
  // The copy is asynchronous, and on a loaded machine it can take longer
  // than any fixed wait (once the clipboard still read empty after 300 ms):
  // read until the link is there.
  result.invite = await alice.evaluate(async () => {
    const deadline = Date.now() + 10000;
    let last = '';
    while (Date.now() < deadline) {
      try {
        last = await navigator.clipboard.readText();
        if (last) return last;
      } catch (e) {
        // Where the clipboard is refused the page shows the link instead.
        const shown = document.getElementById('status').textContent.match(/https?:\/\/\S+/)?.[0];
        if (shown) return shown;
        last = `no link: ${e}`;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return last || 'the clipboard stayed empty';
  });
  if (!/^https?:\/\//.test(result.invite)) throw new Error(`"Copy invite link" gave no link: ${result.invite}`);
  const invitee = await context.newPage();
  await invitee.goto(result.invite);
  await new Promise((r) => setTimeout(r, 500));
  result.invitee = await invitee.evaluate(() => ({
    formShown: !document.getElementById('join').hidden,
    name: document.getElementById('name').value,
    room: document.getElementById('room').value,
    passphraseFilled: document.getElementById('passphrase').value.length > 0,
  }));
  await invitee.close();
  // The page shows the same safety number to both passphrase holders.
  result.page_text = await mallory.evaluate(() => document.body.innerText);

  // Dora joins audio-only (the form's checkbox, kept in the address as
  // &audio=only): she hears the room and is heard, and is sent no video.
  // (Bob muted his microphone above, so she hears alice and carol.)
  const dora = await context.newPage();
  let doraLoads = 0;
  dora.on('load', () => doraLoads++);
  dora.on('pageerror', (e) => (result.page_errors ??= []).push(`dora: ${e.message}`));
  await dora.goto(`${base}/r/${encodeURIComponent(room)}?name=dora&audio=only#${encodeURIComponent(passphrase)}`);
  let d;
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, 500));
    [d, a] = await Promise.all([stats(dora), stats(alice)]);
    const heard = (who) => remote(d, who)?.audioEnergy > 0 && remote(d, who)?.decrypted > 50;
    if (heard('alice') && heard('carol') && remote(a, 'dora')?.decrypted > 50) break;
  }
  result.audio_only = {
    checkbox: await dora.evaluate(() => document.getElementById('audio-only').checked),
    cameraButtonHidden: await dora.evaluate(() => document.getElementById('mute-video').hidden),
    videoTransceivers: await dora.evaluate(
      () => window.veil.call.pc.getTransceivers().filter((t) => t.receiver.track.kind === 'video').length,
    ),
    hears: { alice: remote(d, 'alice') ?? null, carol: remote(d, 'carol') ?? null },
    transceivers: await dora.evaluate(() =>
      window.veil.call.pc.getTransceivers().map((t) => `${t.mid} ${t.receiver.track.kind} ${t.currentDirection}`),
    ),
    status: await dora.evaluate(() => document.getElementById('status').textContent),
    // For a failure's message: what arrived on dora's transport.
    rtc: await dora.evaluate(async () => [...(await window.veil.call.pc.getStats()).values()]
      .filter((s) => ['inbound-rtp', 'transport', 'candidate-pair'].includes(s.type))
      .map((s) => `${s.type} ${s.mid ?? ''} ${s.ssrc ?? ''} pkts=${s.packetsReceived ?? ''} bytes=${s.bytesReceived ?? ''} ${s.state ?? ''}`)),
    heardByAlice: remote(a, 'dora') ?? null,
    // For a failure's message: alice's side of dora's track, and the SFU's.
    alice: await alice.evaluate(async () => {
      const { pc, serverErrors, peers } = window.veil.call;
      const { pipes, errors } = window.veil.call.e2ee;
      return {
        signalingState: pc.signalingState,
        serverErrors,
        pipes,
        transformErrors: errors,
        tiles: [...peers.keys()],
        transceivers: pc.getTransceivers().map((t) => `${t.mid} ${t.receiver.track.kind} ${t.currentDirection}`),
        msids: (pc.remoteDescription?.sdp ?? '').split('\r\n').filter((l) => /^a=(mid|msid):/.test(l)),
        inbound: [...(await pc.getStats()).values()]
          .filter((s) => s.type === 'inbound-rtp')
          .map((s) => `${s.mid} ${s.kind} ${s.ssrc} pkts=${s.packetsReceived} samples=${s.totalSamplesReceived ?? ''}`
            + ` codec=${s.codecId ?? 'none'} discarded=${s.packetsDiscarded ?? ''} emitted=${s.jitterBufferEmittedCount ?? ''}`),
        // dora's m-section as offered and as answered: the payload types
        // the SFU may send there, and the ones alice accepted.
        doraSection: (() => {
          const sections = (which) => (pc[which]?.sdp ?? '').split('\r\nm=');
          const doraMid = sections('remoteDescription')
            .find((m) => m.includes('msid:dora'))
            ?.match(/a=mid:(\S+)/)?.[1];
          return ['remoteDescription', 'localDescription'].map((which) =>
            (sections(which).find((m) => m.includes(`a=mid:${doraMid}\r\n`)) ?? '')
              .split('\r\n')
              .filter((l) => /^(audio|video) |^a=(rtpmap|fmtp|mid|ssrc:\d+ msid|recvonly|sendonly|inactive)/.test(l)));
        })(),
      };
    }),
    sfu: await sfuView(),
  };

  // A moderator removes dora. Her page says why and stays out: no reload,
  // no resume, her camera and microphone released. The others see her go.
  if (process.env.ADMIN_TOKEN) {
    const headers = { authorization: `Bearer ${process.env.ADMIN_TOKEN}` };
    const api = `${base}/api/rooms/${encodeURIComponent(room)}/participants`;
    const listed = await (await fetch(api, { headers })).json();
    const id = (listed.participants ?? []).map((p) => p.participant).find((p) => p.startsWith('dora'));
    const kick = await fetch(`${api}/${encodeURIComponent(id)}/kick`, { method: 'POST', headers });
    let dk;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 250));
      dk = await stats(dora);
      if (dk.ended && !remote(await stats(alice), 'dora')) break;
    }
    // Long enough for a reload or a resume attempt to show.
    await new Promise((r) => setTimeout(r, 2000));
    result.kicked = {
      kick: kick.status,
      loads: doraLoads,
      ended: (await stats(dora)).ended,
      resumes: (await stats(dora)).resumes,
      status: await dora.evaluate(() => document.getElementById('status').textContent),
      connection: await dora.evaluate(() => window.veil.call.pc.connectionState),
      liveTracks: await dora.evaluate(() =>
        [window.veil.call.audioTrack, window.veil.call.videoTrack].filter((t) => t?.readyState === 'live').length),
      aliceStillShowsDora: !!remote(await stats(alice), 'dora'),
    };
  }
});
