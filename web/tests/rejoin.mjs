// Two browsers in a call whose SFU node is about to die (the Rust test
// kills it after "ready"). Each page must notice, join again by itself on
// another node, and decode the other again, without anyone touching it.
//
// Usage: node tests/rejoin.mjs <base-url> <room> <passphrase>
// Prints "ready" once both decode each other, then one JSON object.

import { runScript } from './browser.mjs';

const [base, room, passphrase] = process.argv.slice(2);
const result = {};
await runScript(150_000, result, async (context) => {
  const open = async (name) => {
    const page = await context.newPage();
    page.loads = 0;
    page.on('load', () => page.loads++);
    page.on('pageerror', (e) => (result.page_errors ??= []).push(`${name}: ${e.message}`));
    await page.goto(`${base}/r/${encodeURIComponent(room)}?name=${name}#${encodeURIComponent(passphrase)}`);
    return page;
  };
  // A reloading page has no `window.veil` for a moment: read as "nothing yet".
  const decoded = async (page, other) => {
    try {
      const s = await page.evaluate(() => window.veil?.stats());
      const r = Object.entries(s?.remotes || {}).find(([id]) => id.startsWith(`${other}#`))?.[1];
      return r?.framesDecoded || 0;
    } catch {
      return 0;
    }
  };
  const both = async (alice, bob, frames) =>
    (await decoded(alice, 'bob')) > frames && (await decoded(bob, 'alice')) > frames;

  const alice = await open('alice');
  const bob = await open('bob');
  for (let i = 0; i < 120 && !(await both(alice, bob, 20)); i++) await new Promise((r) => setTimeout(r, 500));
  if (!(await both(alice, bob, 20))) throw new Error('alice and bob never decoded each other');
  console.log('ready');
  const killed = Date.now();
  // The pages reload into the room by themselves; their counters start over.
  for (let i = 0; i < 240; i++) {
    await new Promise((r) => setTimeout(r, 250));
    if (alice.loads > 1 && bob.loads > 1 && (await both(alice, bob, 10))) break;
  }
  result.loads = { alice: alice.loads, bob: bob.loads };
  result.recovered_ms = Date.now() - killed;
  result.decoded = { alice: await decoded(alice, 'bob'), bob: await decoded(bob, 'alice') };
});
