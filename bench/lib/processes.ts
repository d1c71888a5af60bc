import { rmSync } from 'node:fs';
import postgres from 'postgres';
import { listensOn } from './proc';

const root = new URL('../..', import.meta.url).pathname;

export interface Child {
  proc: Bun.Subprocess;
  pid: number;
  /** Every process behind `url`: more than one when several share the port (SO_REUSEPORT). */
  pids: number[];
  url: string;
  stop(): Promise<void>;
}

/**
 * Asks a child for a full garbage collection (SIGUSR2 → `Bun.gc(true)`: the baseline
 * and bench/gc-server.ts answer it), so memory is compared without garbage the
 * collector had not come round to yet.
 */
export const collectGarbage = async (child: Child) => {
  for (const pid of child.pids) process.kill(pid, 'SIGUSR2');
  await Bun.sleep(1000);
};

/** BENCH_PROFILE_DIR=dir writes CPU profiles of the baseline and the server there (bun --cpu-prof). */
const profileArgs = () =>
  process.env.BENCH_PROFILE_DIR
    ? ['--cpu-prof', '--cpu-prof-md', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
    : [];

/**
 * Extra environment for the server alone: BENCH_SERVER_X=v is X=v in the server's
 * environment, e.g. BENCH_SERVER_BUN_JSC_reportFTLCompileTimes=1 (JavaScriptCore's
 * own switches) or BENCH_SERVER_LOG_LEVEL=info.
 */
const serverExtras = () =>
  Object.fromEntries(
    Object.entries(process.env)
      .filter(([k]) => k.startsWith('BENCH_SERVER_'))
      .map(([k, v]) => [k.slice('BENCH_SERVER_'.length), v ?? '']),
  );

const readFirstLine = async (stream: ReadableStream<Uint8Array>) => {
  const reader = stream.getReader();
  let text = '';
  while (!text.includes('\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.split('\n')[0]?.trim() ?? '';
};

const waitHealthy = async (url: string) => {
  for (let i = 0; i < 200; i++) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await Bun.sleep(100);
  }
  throw new Error(`${url} did not come up`);
};

const stopper = (proc: Bun.Subprocess) => async () => {
  proc.kill('SIGTERM');
  await Promise.race([proc.exited, Bun.sleep(15_000)]);
  proc.kill('SIGKILL');
};

export const spawnStub = async (env: Record<string, string>): Promise<Child> => {
  const proc = Bun.spawn(['bun', 'bench/stub-server.ts'], {
    cwd: root,
    env: { ...process.env, ...env },
    stdout: 'pipe',
    stderr: 'inherit',
  });
  const url = await readFirstLine(proc.stdout);
  return { proc, pid: proc.pid, pids: [proc.pid], url, stop: stopper(proc) };
};

/** `instances` relays on one port (SO_REUSEPORT): the kernel spreads connections between them. */
export const spawnBaseline = async (
  stubUrl: string,
  port: number,
  instances = 1,
  env: Record<string, string> = {},
): Promise<Child> => {
  const procs: Bun.Subprocess[] = [];
  for (let i = 0; i < instances; i++) {
    const proc = Bun.spawn(['bun', ...profileArgs(), 'bench/baseline-relay.ts'], {
      cwd: root,
      env: { ...process.env, PORT: String(port), OPENAI_BASE_URL: stubUrl, ...env },
      stdout: 'pipe',
      stderr: 'inherit',
    });
    await readFirstLine(proc.stdout);
    procs.push(proc);
  }
  const [first] = procs as [Bun.Subprocess];
  return {
    proc: first,
    pid: first.pid,
    pids: procs.map((p) => p.pid),
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      await Promise.all(procs.map((p) => stopper(p)()));
    },
  };
};

/** Resolves once `pid` itself listens on `port` (read from /proc, so per process). */
const waitListening = async (pid: number, port: number) => {
  for (let i = 0; i < 200; i++) {
    if (await listensOn(pid, port)) return;
    await Bun.sleep(100);
  }
  throw new Error(`process ${pid} did not listen on ${port}`);
};

/** A fresh PostgreSQL database on DATABASE_URL's server (PostgreSQL + Redis runs only), and how to drop it. */
export const benchDatabase = async () => {
  const pg = process.env.DATABASE_URL;
  if (!pg?.startsWith('postgres') || !process.env.REDIS_URL)
    throw new Error('the storing relay needs DATABASE_URL (PostgreSQL) and REDIS_URL');
  const name = `chatbot_relay_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const admin = postgres(pg, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const u = new URL(pg);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      await admin.unsafe(`drop database if exists "${name}" with (force)`);
      await admin.end();
    },
  };
};

/**
 * The real server as its own process, on a fresh database: PostgreSQL + Redis when
 * DATABASE_URL / REDIS_URL are set, embedded PGlite + in-process store otherwise.
 * `instances` > 1 starts that many processes on one port sharing the database and
 * Redis (SO_REUSEPORT, which Elysia turns on): PostgreSQL + Redis only.
 */
export const spawnServer = async (
  stubUrl: string,
  port: number,
  env: Record<string, string> = {},
  instances = 1,
  /** The checkout to run (`bench:ab` runs another revision's). */
  cwd = root,
  /** Runs on the new database before the server starts (seeding). */
  prepare?: (databaseUrl: string) => Promise<void>,
) => {
  const name = `chatbot_bench_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const pg = process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : undefined;
  if (instances > 1 && !(pg && process.env.REDIS_URL))
    throw new Error('several server processes need DATABASE_URL (PostgreSQL) and REDIS_URL');
  let databaseUrl = `file:///tmp/${name}`;
  let admin: postgres.Sql | undefined;
  if (pg) {
    admin = postgres(pg, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database "${name}"`);
    const u = new URL(pg);
    u.pathname = `/${name}`;
    databaseUrl = u.toString();
  }
  const redis = process.env.REDIS_URL
    ? { REDIS_URL: process.env.REDIS_URL, REDIS_KEY_PREFIX: `${name}:` }
    : {};
  await prepare?.(databaseUrl);
  const url = `http://127.0.0.1:${port}`;
  const procs: Bun.Subprocess[] = [];
  // src/index.ts itself, behind a two-line wrapper that adds the SIGUSR2 → GC hook.
  const spawnOn = async (onPort: number) => {
    const proc = Bun.spawn(['bun', ...profileArgs(), 'bench/gc-server.ts'], {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        PORT: String(onPort),
        HOST: '0.0.0.0',
        LOG_LEVEL: 'warn',
        OPENAI_API_KEY: 'sk-bench',
        OPENAI_BASE_URL: stubUrl,
        DATABASE_URL: databaseUrl,
        CHAT_RATE_LIMIT: '100000',
        ...redis,
        ...serverExtras(),
        ...env,
      },
      stdout: 'ignore',
      stderr: 'inherit',
    });
    procs.push(proc);
    await waitListening(proc.pid, onPort);
    return proc;
  };
  // One at a time, so only the first applies the migrations.
  for (let i = 0; i < instances; i++) await spawnOn(port);
  await waitHealthy(`${url}/api/health/`);
  const [first] = procs as [Bun.Subprocess];
  return {
    proc: first,
    pid: first.pid,
    pids: procs.map((p) => p.pid),
    url,
    databaseUrl,
    database: pg ? 'PostgreSQL + Redis' : 'embedded PGlite + in-process store',
    /** Another process on the same database and Redis, on a port of its own (PostgreSQL + Redis only). */
    sibling: async (onPort: number) => {
      if (!(pg && process.env.REDIS_URL)) throw new Error('a sibling process needs PostgreSQL and Redis');
      const proc = await spawnOn(onPort);
      await waitHealthy(`http://127.0.0.1:${onPort}/api/health/`);
      return { url: `http://127.0.0.1:${onPort}`, pid: proc.pid };
    },
    stop: async () => {
      await Promise.all(procs.map((p) => stopper(p)()));
      if (admin) {
        await admin.unsafe(`drop database if exists "${name}" with (force)`);
        await admin.end();
      } else rmSync(`/tmp/${name}`, { recursive: true, force: true });
    },
  };
};
