// Two browsers in a call, one on each of Chrome's encoded-transform APIs:
// alice on RTCRtpScriptTransform, bob on the older createEncodedStreams
// (the page's fallback). They decode each other's SFrame-encrypted video,
// then alice sends bob a 100 MB file, end-to-end encrypted, streamed in
// chunks with backpressure and verified by SHA-256 on receipt.
//
// Usage: node tests/files.mjs <base-url> <room> <passphrase> <megabytes>
// Prints one JSON object; signalling/tests/browser_files.rs asserts on it.

import { runScript } from './browser.mjs';

const [base, room, passphrase, megabytes] = process.argv.slice(2);
const result = {};
await runScript(400_000, result, async (context) => {
  const open = async (name, legacy = false, viewport = null) => {
    const page = await context.newPage();
    if (viewport) await page.setViewportSize(viewport);
    if (legacy) await page.addInitScript(() => delete window.RTCRtpScriptTransform);
    page.on('pageerror', (e) => (result.page_errors ??= []).push(`${name}: ${e.message}`));
    await page.goto(`${base}/r/${encodeURIComponent(room)}?name=${name}#${encodeURIComponent(passphrase)}`);
    return page;
  };
  const stats = (page) => page.evaluate(() => window.veil.stats());

  const alice = await open('alice');
  const bob = await open('bob', true);
  const video = (s) => Object.values(s.remotes)[0] || {};
  let a, b;
  for (let i = 0; i < 120; i++) {
    [a, b] = await Promise.all([stats(alice), stats(bob)]);
    const flowing = [a, b].every((s) => video(s).framesDecoded > 20 && video(s).decrypted > 20);
    if (a.channelOpen && b.channelOpen && flowing) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  result.transform_api = await Promise.all([alice, bob].map((p) => p.evaluate(() => window.veil.call.transformApi)));
  result.video = { alice: video(a), bob: video(b) };
  // Carol comes and goes: alice and bob move to new keys by themselves;
  // then bob asks for another one (the "New key" button). Both keep
  // decrypting each other, without a failure, and the file below goes
  // under the new keys.
  // Carol is on a phone-sized screen: nothing may stick out sideways.
  const carol = await open('carol', false, { width: 390, height: 844 });
  for (let i = 0; i < 60; i++) {
    const s = await stats(carol);
    if (s.channelOpen && Object.keys(s.remotes).length === 2) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  result.phone = await carol.evaluate(() => {
    const width = window.innerWidth;
    const outside = [...document.querySelectorAll('button, input, .tile, #messages')]
      .filter((e) => e.offsetParent !== null)
      .filter((e) => { const r = e.getBoundingClientRect(); return r.left < 0 || r.right > width + 0.5; })
      .map((e) => e.id || e.className || e.tagName);
    return { width, scrollWidth: document.documentElement.scrollWidth, tiles: document.querySelectorAll('.tile').length, outside };
  });
  await carol.close();
  for (let i = 0; i < 60; i++) {
    [a, b] = await Promise.all([stats(alice), stats(bob)]);
    if (a.rotations > 0 && b.rotations > 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  await bob.click('#rotate'); // "New key"
  await new Promise((r) => setTimeout(r, 3000));
  const [a2, b2] = await Promise.all([stats(alice), stats(bob)]);
  result.rotation = {
    epochs: [a2.epoch, b2.epoch],
    decrypted_after: [video(a2).decrypted - video(a).decrypted, video(b2).decrypted - video(b).decrypted],
    failed: [video(a2).failed, video(b2).failed],
    // The epoch each one's latest frame from the other was sealed under.
    seen: [video(b2).epoch, video(a2).epoch],
  };
  const size = Number(megabytes) * 1024 * 1024;
  const started = Date.now();
  const sending = alice.evaluate(async (size) => {
    const data = new Uint8Array(size);
    for (let o = 0; o < size; o += 65536) crypto.getRandomValues(data.subarray(o, Math.min(size, o + 65536)));
    const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
    const expected = hex(await crypto.subtle.digest('SHA-256', data));
    const file = new File([data], 'big.bin');
    const t = performance.now();
    const sent = await window.veil.sendFile(file);
    return { ...sent, expected, send_ms: Math.round(performance.now() - t) };
  }, size);
  result.file_sent = await sending;
  for (let i = 0; i < 1200; i++) {
    const f = (await stats(bob)).files.find((x) => x.name === 'big.bin');
    result.file_received = f;
    if (f?.done) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  result.file_ms = Date.now() - started;
});
