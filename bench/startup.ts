/**
 * `startup`: exec → first healthy answer (`GET /api/health/` 200) and idle RSS two
 * seconds later, for the source (`bun src/index.ts`) and the compiled binary, on
 * PostgreSQL + Redis (when DATABASE_URL / REDIS_URL are set) and on the embedded
 * defaults — a first run (a new data directory, started from the migrated seed that
 * `bun install` and the build prepare: src/db/pglite-seed.ts) and a later one (the
 * same directory). Baseline: bench/startup-baseline.ts, a bare `Bun.serve` opening the
 * same connections, in the same run. Medians of three starts. Targets (SPEC §15): the
 * binary healthy within 300 ms on PostgreSQL + Redis, 1 s embedded with a data directory,
 * 3 s on a first run; idle RSS ≤ 80 MB on PostgreSQL + Redis, ≤ 180 MB embedded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { freePort } from './lib/ports';
import { rssKb } from './lib/proc';
import type { Row } from './scenarios';

const root = new URL('..', import.meta.url).pathname;
const STARTS = 3;

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

/** Starts `command` with `env`, times exec → health 200, reads RSS 2 s later, stops it. */
const start = async (command: string[], env: Record<string, string>) => {
  const port = freePort();
  const started = performance.now();
  const proc = Bun.spawn(command, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdout: 'ignore',
    stderr: 'ignore',
  });
  let ms = 0;
  for (let i = 0; i < 6000 && !ms; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/api/health/`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) ms = performance.now() - started;
    else await Bun.sleep(5);
  }
  if (!ms) throw new Error(`${command.join(' ')} did not become healthy`);
  await Bun.sleep(2000);
  const rssMb = (await rssKb(proc.pid)) / 1024;
  proc.kill('SIGTERM');
  await proc.exited;
  return { ms, rssMb };
};

const measure = async (label: string, command: string[], env: () => Record<string, string>) => {
  const runs = [];
  for (let i = 0; i < STARTS; i++) runs.push(await start(command, env()));
  return { label, ms: median(runs.map((r) => r.ms)), rssMb: median(runs.map((r) => r.rssMb)) };
};

export const startup = async (): Promise<Row[]> => {
  const dir = mkdtempSync(join(tmpdir(), 'chatbot-startup-'));
  const binary = join(dir, 'chatbot-api');
  const build = Bun.spawnSync(['bun', 'scripts/build.ts', binary], { cwd: root, stdout: 'ignore' });
  if (build.exitCode !== 0) throw new Error('build failed');
  const rows: Row[] = [];
  const pg = process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : undefined;
  const admin = pg ? postgres(pg, { max: 1, onnotice: () => {} }) : undefined;
  try {
    const servers: [string, string[]][] = [
      ['source', ['bun', 'src/index.ts']],
      ['binary', [binary]],
    ];
    const compare = (
      backend: string,
      base: { ms: number; rssMb: number },
      ours: { label: string; ms: number; rssMb: number },
      targets: { ms?: number; rssMb: number },
    ) => {
      const binaryRun = ours.label === 'binary';
      rows.push(
        {
          scenario: 'startup',
          metric: `${ours.label}, ${backend}: exec → healthy (ms)`,
          baseline: base.ms,
          ours: ours.ms,
          ratio: ours.ms / base.ms,
          ...(binaryRun && targets.ms ? { target: `≤ ${targets.ms} ms`, met: ours.ms <= targets.ms } : {}),
        },
        {
          scenario: 'startup',
          metric: `${ours.label}, ${backend}: idle RSS (MB)`,
          baseline: base.rssMb,
          ours: ours.rssMb,
          ratio: ours.rssMb / base.rssMb,
          target: `≤ ${targets.rssMb} MB`,
          met: ours.rssMb <= targets.rssMb,
        },
      );
    };

    if (pg && process.env.REDIS_URL && admin) {
      const name = `chatbot_startup_${Date.now().toString(36)}`;
      await admin.unsafe(`create database "${name}"`);
      const url = new URL(pg);
      url.pathname = `/${name}`;
      const env = () => ({
        DATABASE_URL: url.toString(),
        REDIS_URL: process.env.REDIS_URL as string,
        REDIS_KEY_PREFIX: `${name}:`,
      });
      // Migrated once first, as a deployed database is.
      await start(['bun', 'src/index.ts'], env());
      const base = await measure('baseline', ['bun', 'bench/startup-baseline.ts'], env);
      for (const [label, command] of servers)
        compare('PostgreSQL + Redis', base, await measure(label, command, env), { ms: 300, rssMb: 80 });
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
    }

    const base = await measure('baseline', ['bun', 'bench/startup-baseline.ts'], () => ({}));
    for (const [label, command] of servers) {
      // First runs: a new data directory each time.
      const fresh = () => ({ DATABASE_URL: `file://${mkdtempSync(join(dir, 'first-'))}` });
      compare('embedded, first run', base, await measure(label, command, fresh), { ms: 3000, rssMb: 180 });
      const kept = join(dir, `kept-${label}`);
      await start(command, { DATABASE_URL: `file://${kept}` });
      compare(
        'embedded, later run',
        base,
        await measure(label, command, () => ({ DATABASE_URL: `file://${kept}` })),
        {
          ms: 1000,
          rssMb: 180,
        },
      );
    }
    return rows;
  } finally {
    await admin?.end();
    rmSync(dir, { recursive: true, force: true });
  }
};
