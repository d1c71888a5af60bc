/**
 * `bun run test [bun test arguments…]`: the suite, on the embedded defaults in three
 * worker processes, slowest files first (test/timings.json): ~70 s instead of ~110 s
 * one file at a time (bench/history.md). On PostgreSQL + Redis (DATABASE_URL set) the
 * files run one at a time: there every file creates and drops a database on the one
 * shared server, and run side by side those statements stalled other files' queries
 * past the 2 s deadline (a request answered 503).
 */
const onPostgres = process.env.DATABASE_URL?.startsWith('postgres');
const args = [
  'test',
  '--timeout',
  '30000',
  ...(onPostgres ? [] : ['--parallel=3', '--timings=test/timings.json']),
  ...process.argv.slice(2),
];
const child = Bun.spawn(['bun', ...args], { stdio: ['inherit', 'inherit', 'inherit'] });
process.exit(await child.exited);
