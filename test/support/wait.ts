/** Polls `probe` every 10 ms until it holds; fails after `ms` naming `what`. */
export const until = async (probe: () => boolean | Promise<boolean>, what: string, ms = 3000) => {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await Bun.sleep(10);
  }
};
