import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pipeFrames } from '../../src/frame-pipe.js';

// Feeds `frames` through pipeFrames and collects what comes out.
async function run(frames, step) {
  const readable = new ReadableStream({
    start(controller) {
      for (const f of frames) controller.enqueue(f);
      controller.close();
    },
  });
  const out = [];
  let closed;
  const done = new Promise((r) => (closed = r));
  // Settles on close or on abort (a pipe that errored), so a broken pipe
  // fails the assertions rather than hanging the test.
  const writable = new WritableStream({ write: (f) => out.push(f), close: () => closed(), abort: () => closed() });
  const errors = { count: 0, last: null };
  const record = pipeFrames(readable, writable, step, errors, 'encrypt: ');
  await done;
  await new Promise((r) => setTimeout(r, 0));
  return { out, errors, record };
}

test('a frame the step throws on is dropped and counted; the pipe goes on', async () => {
  const { out, errors, record } = await run([1, 2, 3, 4], async (f, c) => {
    if (f === 2) throw new Error('bad frame');
    c.enqueue(f * 10);
  });
  assert.deepEqual(out, [10, 30, 40], 'frames after the bad one still pass');
  assert.deepEqual(errors, { count: 1, last: 'encrypt: bad frame' });
  assert.equal(record.in, 4);
  assert.equal(record.out, 3);
  assert.equal(record.ended, 'closed');
});

test('a frame the step drops on purpose is counted in, not out, and is no error', async () => {
  const { out, errors, record } = await run([1, 2], async (f, c) => {
    if (f === 1) c.enqueue(f);
  });
  assert.deepEqual(out, [1]);
  assert.equal(errors.count, 0);
  assert.deepEqual([record.in, record.out], [2, 1]);
});
