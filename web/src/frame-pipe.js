// One encoded-transform pipe: frames from `readable` through `step` to
// `writable`, shared by the page's worker and its unit tests.

/**
 * Pipes encoded frames through `step(frame, controller)`, which enqueues
 * the frames it passes on. A frame `step` throws on is dropped and counted
 * in `errors` ({ count, last }): a rejected promise would error the
 * stream, and the track would never carry a frame again. Returns the
 * pipe's record, { in, out, ended }, which counts frames in and out and
 * says why the pipe ended ('closed', or the error), once it does.
 */
export function pipeFrames(readable, writable, step, errors, label = '') {
  const record = { in: 0, out: 0, ended: null };
  const transform = async (frame, controller) => {
    record.in++;
    const counted = { enqueue: (f) => (record.out++, controller.enqueue(f)) };
    try {
      await step(frame, counted);
    } catch (e) {
      errors.count++;
      errors.last = `${label}${e?.message || e}`;
    }
  };
  readable
    .pipeThrough(new TransformStream({ transform }))
    .pipeTo(writable)
    .then(() => (record.ended = 'closed'))
    .catch((e) => (record.ended = `${e?.message || e}`));
  return record;
}
