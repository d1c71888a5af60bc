import { describe, expect, test } from 'bun:test';
import { watchdog } from '../../../src/modules/chat/watchdog';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Keeps the whole process busy for `ms`, as a long garbage collection would. */
const stall = (ms: number) => {
  const until = Date.now() + ms;
  while (Date.now() < until) {}
};
/** Resolves with the elapsed milliseconds once `controller` aborts, or with -1 after `ms`. */
const abortedWithin = (controller: AbortController, ms: number) => {
  const start = Date.now();
  return new Promise<number>((resolve) => {
    const timer = setTimeout(() => resolve(-1), ms);
    controller.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(Date.now() - start);
    });
  });
};

/** `controller` aborts with 'timeout' within 2 s (its provider stays silent); resolves with the ms it took. */
const timedOut = async (controller: AbortController) => {
  const after = await abortedWithin(controller, 2000);
  expect(after).toBeGreaterThanOrEqual(0);
  expect(controller.signal.reason).toBe('timeout');
  return after;
};

describe('the AI timeout (watchdog)', () => {
  test('aborts with "timeout" after the provider is silent for the timeout, and not before', async () => {
    const controller = new AbortController();
    const silence = watchdog(controller, 300);
    await sleep(200);
    silence.heard();
    await sleep(200); // 400 ms since the start, but only 200 since the provider was heard
    expect(controller.signal.aborted).toBe(false);
    await timedOut(controller);
    silence.stop();
  });

  test('does not count a wait of this server (during), however long', async () => {
    const controller = new AbortController();
    const silence = watchdog(controller, 200);
    await silence.during(sleep(600));
    expect(controller.signal.aborted).toBe(false);
    // The silence starts over when the wait settles, and then counts again.
    expect(await timedOut(controller)).toBeGreaterThanOrEqual(150);
    silence.stop();
  });

  test('after a stall of this process, the provider gets the whole timeout again to be heard', async () => {
    // What the provider sent during the stall waits unread, and reading it takes the
    // loop a moment: the silence the watchdog counts starts over when the stall ends.
    // (It once went on with what was left of the window from before the stall, here
    // 600 - 100 ms of silence = 100 ms: any later delay of the loop read as a timeout.)
    const controller = new AbortController();
    const silence = watchdog(controller, 600);
    await sleep(100);
    silence.heard();
    stall(1300); // the timer, due at 600 ms, fires 700 ms late
    await sleep(300);
    expect(controller.signal.aborted).toBe(false);
    // It still times out if the provider stays silent.
    await timedOut(controller);
    silence.stop();
  });

  test('stop ends it: no abort afterwards', async () => {
    const controller = new AbortController();
    watchdog(controller, 100).stop();
    await sleep(300);
    expect(controller.signal.aborted).toBe(false);
  });
});
