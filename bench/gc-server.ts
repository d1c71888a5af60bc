/**
 * The real server (src/index.ts, unchanged) plus one bench-only hook: SIGUSR2 runs a
 * full garbage collection, so the idle scenario can read settled memory.
 */
process.on('SIGUSR2', () => Bun.gc(true));
await import('../src/index');
