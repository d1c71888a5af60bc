/**
 * A port for a child to listen on: below Linux's ephemeral range (32768+), where an
 * outgoing connection could hold it (a search run once failed with EADDRINUSE on
 * 33244), and checked free by binding it first. One counter for every scenario.
 */
let next = 20000 + Math.floor(Math.random() * 10000);

export const freePort = (): number => {
  for (;;) {
    const candidate = next++;
    if (next >= 32768) next = 20000;
    try {
      const probe = Bun.listen({ hostname: '0.0.0.0', port: candidate, socket: { data() {} } });
      probe.stop(true);
      return candidate;
    } catch {
      // Taken: the next one.
    }
  }
};
