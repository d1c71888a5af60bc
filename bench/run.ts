/**
 * `bun run bench [throughput|latency|cold|idle|rest|tokens|client|pages|bodies|fanout|resume|search|startup|stop|web ...]`: the server against a bare
 * Bun WebSocket relay (bench/baseline-relay.ts) fed by the same stub, measured in
 * the same run and reported as ratios, since these machines are noisy and share
 * two cores between server, stub and load generator. Prints a table and writes
 * bench/RESULTS.md. Uses PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set.
 */
import { cold } from './cold';
import { machine } from './lib/proc';
import { fanout, resume } from './replies';
import { bodies, pages } from './robustness';
import { client, idle, latency, type Row, rest, throughput, tokens } from './scenarios';
import { search } from './search';
import { startup } from './startup';
import { stop } from './stop';
import { web } from './web';

const all = {
  throughput,
  latency,
  cold,
  idle,
  rest,
  tokens,
  client,
  pages,
  bodies,
  fanout,
  resume,
  search,
  startup,
  stop,
  web,
} as const;
type Name = keyof typeof all;
const requested = process.argv.slice(2).filter((a): a is Name => a in all);
const names = requested.length ? requested : (Object.keys(all) as Name[]);

const rows: Row[] = [];
const started = Date.now();
for (const name of names) {
  console.log(`\n=== ${name}`);
  const result = await all[name]();
  console.table(
    result.map(({ metric, baseline, ours, ratio, target }) => ({ metric, baseline, ours, ratio, target })),
  );
  rows.push(...result);
}

const fmt = (v: number | string | undefined) =>
  typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : (v ?? '');
const backend = process.env.DATABASE_URL?.startsWith('postgres')
  ? 'PostgreSQL + Redis'
  : 'embedded PGlite + in-process store';
const report = `# Benchmark results

- Command: \`bun run bench ${process.argv.slice(2).join(' ')}\`${backend === 'PostgreSQL + Redis' ? ' with `DATABASE_URL` and `REDIS_URL` set' : ''}
- Date: ${new Date().toISOString()}
- Machine: ${await machine()}
- Server backends: ${backend}
- Duration: ${Math.round((Date.now() - started) / 1000)} s

Ratios are ours ÷ baseline, measured in the same run (baseline: the cheapest relay Bun can do — a bare
\`Bun.serve\` WebSocket relay, \`fetch\` and a hand-written SSE line parser, one frame per token, fed by the
same stub; no framework, no database, no auth. Rows marked "for scale" compare with something else, as they say).

| scenario | metric | baseline | ours | ratio | target | met |
|---|---|---|---|---|---|---|
${rows
  .map(
    (r) =>
      `| ${r.scenario} | ${r.metric} | ${fmt(r.baseline)} | ${fmt(r.ours)} | ${fmt(r.ratio)} | ${r.target ?? ''} | ${r.met === undefined ? '' : r.met ? 'yes' : '**no**'} |`,
  )
  .join('\n')}

${await Bun.file(new URL('./history.md', import.meta.url)).text()}`;
// Only a run of every scenario replaces the published results.
if (names.length === Object.keys(all).length)
  await Bun.write(new URL('./RESULTS.md', import.meta.url), report);
console.log(`\n${report}`);
process.exit(0);
