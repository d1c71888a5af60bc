/** Polls `probe` every 10 ms until it holds; fails after `ms` naming `what`. */
export const until = async (probe: () => boolean | Promise<boolean>, what: string, ms = 3000) => {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await Bun.sleep(10);
  }
};

/**
 * What `promise` rejects with; fails if it fulfils. Tests await this rather than
 * `expect(promise).rejects`: bun:test waits for that promise in an event-loop tick of
 * its own, during which a `setImmediate` that postgres.js queued to send a query was
 * now and then never run — the query never reached PostgreSQL (test/suite.test.ts).
 */
export const rejection = (promise: PromiseLike<unknown>): Promise<unknown> =>
  Promise.resolve(promise).then(
    () => {
      throw new Error('expected the promise to reject, it fulfilled');
    },
    (error: unknown) => error,
  );
