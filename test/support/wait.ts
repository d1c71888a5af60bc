/** Polls `probe` every 10 ms until it holds; fails after `ms` naming `what`. */
export const until = async (probe: () => boolean, what: string, ms = 3000) => {
  for (let waited = 0; !probe(); waited += 10) {
    if (waited > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await Bun.sleep(10);
  }
};
