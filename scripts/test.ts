import { SUITE_RUNTIME } from '../test/support/tuning';

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
 * server a test starts is its own app), and two runtime settings cut the CPU a
 * short-lived process burns (test/support/tuning.ts).
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
  env: { ...SUITE_RUNTIME, ...process.env },
});
process.exit(await child.exited);
