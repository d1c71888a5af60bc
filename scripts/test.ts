/**
 * `bun run test [bun test arguments…]`: the suite, on the embedded defaults in three
 * worker processes, slowest files first (test/timings.json). On PostgreSQL + Redis
 * (DATABASE_URL set) the files run one at a time: there every file creates and drops
 * a database on the one shared server, and run side by side those statements stalled
 * other files' queries past the 2 s deadline (a request answered 503).
 *
 * Two settings make the embedded run about a third cheaper (bench/history.md, "The
 * test suite on a slower machine"): `--no-isolate` lets a worker keep its modules from
 * one file to the next, so PGlite's WebAssembly is compiled and warmed once per worker
 * rather than once per file (no test changes a global or mocks a module, and every
 * server a test starts is its own app), and `BUN_JSC_useOMGJIT=0` keeps JavaScriptCore
 * from recompiling PGlite's hottest WebAssembly functions with its optimizing tier,
 * which short-lived test processes never earned back. `MIMALLOC_PURGE_DELAY=-1` keeps
 * the allocator from handing freed memory back to the kernel only to fault it in again
 * a moment later: the suite's PGlite clones and servers churn through gigabytes, and on
 * this virtual machine each fault is dear (a sixth less CPU, mostly system time:
 * bench/history.md, "Page faults"). The processes the tests start get
 * both too (test/support/process.ts).
 */
const onPostgres = process.env.DATABASE_URL?.startsWith('postgres');
const args = [
  'test',
  '--timeout',
  '30000',
  ...(onPostgres ? [] : ['--parallel=3', '--no-isolate', '--timings=test/timings.json']),
  ...process.argv.slice(2),
];
const child = Bun.spawn(['bun', ...args], {
  stdio: ['inherit', 'inherit', 'inherit'],
  env: { BUN_JSC_useOMGJIT: '0', MIMALLOC_PURGE_DELAY: '-1', ...process.env },
});
process.exit(await child.exited);
