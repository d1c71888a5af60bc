// A silence timer firing this much later than it was set for means this process
// itself did not run meanwhile (a long garbage collection, a starved machine).
const STALL_MS = 500;

/**
 * Aborts with 'timeout' once the provider has been silent for `aiTimeoutMs`. One
 * timer per reply, re-armed lazily, rather than a timer and a race per token. The
 * caller calls `heard` on each of the provider's events. It does not count while
 * the reply waits on this server (`during`: a socket backed up, the question's write
 * to the database), nor while this process was stalled: what the provider sent
 * meanwhile may be waiting unread, so the silence starts over when a stall ends.
 * (Keeping the part of the window used before the stall left the loop only that
 * remainder, often a few tens of milliseconds, to read what had piled up.)
 */
export const watchdog = (controller: AbortController, aiTimeoutMs: number) => {
  let lastEvent = Date.now();
  let paused = false;
  let timer: Timer;
  let due = 0;
  const arm = (ms: number) => {
    due = Date.now() + ms;
    timer = setTimeout(check, ms);
  };
  const check = () => {
    if (controller.signal.aborted) return;
    const now = Date.now();
    if (now - due > STALL_MS) lastEvent = now;
    const silent = now - lastEvent;
    if (!paused && silent >= aiTimeoutMs) controller.abort('timeout');
    else arm(paused ? aiTimeoutMs : aiTimeoutMs - silent);
  };
  arm(aiTimeoutMs);
  return {
    /** The provider sent something: the silence starts over. */
    heard: () => {
      lastEvent = Date.now();
    },
    /** Waits for `wait` with the timer paused; the silence starts over when it settles. */
    during: async <T>(wait: Promise<T>) => {
      paused = true;
      try {
        return await wait;
      } finally {
        paused = false;
        lastEvent = Date.now();
      }
    },
    stop: () => clearTimeout(timer),
  };
};
