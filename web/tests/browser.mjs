// Headless Chromium for tests: the flags that keep it on loopback and give
// it fake camera and microphone (see design notes), and a fresh profile.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'veil-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
  });
  const close = async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

/**
 * Runs a browser test script: `body(context)` fills `result`, which is
 * printed as one JSON line at the end (the Rust tests read the last line),
 * with `error` set when the body threw or ran past `timeoutMs`. Exits 1 on
 * an error, 0 otherwise.
 */
export async function runScript(timeoutMs, result, body) {
  const { context, close } = await launch();
  const deadline = setTimeout(() => printAndExit({ ...result, error: 'timed out' }, 1), timeoutMs);
  try {
    await body(context);
  } catch (e) {
    result.error = String(e?.stack || e);
  } finally {
    clearTimeout(deadline);
    await close();
  }
  printAndExit(result, result.error ? 1 : 0);
}

/**
 * Prints `value` as one JSON line, then exits. On a pipe Node writes stdout
 * asynchronously, and `process.exit` right after `console.log` cut a result
 * of more than 64 KiB short (a long call's chat log), so the Rust test
 * found no JSON; the exit waits for the write instead.
 */
function printAndExit(value, code) {
  process.stdout.write(JSON.stringify(value) + '\n', () => process.exit(code));
}
