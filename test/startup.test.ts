import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, rmSync } from 'node:fs';
import { createTestDatabase, SERVICES, uniqueName } from './support/backends';
import { createClient } from './support/client';
import { freePort, launchServerProcess, RUNTIME_TUNING, spawnServerProcess } from './support/process';
import { startProxy } from './support/proxy';
import { until } from './support/wait';

const root = new URL('..', import.meta.url).pathname;

// Nothing listens on port 1 of this machine: the connection is refused at once.
const NOWHERE = 'postgres://postgres@127.0.0.1:1/nowhere';

/** Runs a command (`bun <args>`) with `env` and returns how it ended. */
const command = (args: string[], env: Record<string, string>) => {
  const result = Bun.spawnSync(['bun', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...RUNTIME_TUNING, ...env },
    stdin: 'ignore',
    timeout: 20_000,
  });
  return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
};

/** Runs `bun src/index.ts` with exactly `env` (plus PATH; in-memory, any port unless set) and returns how it ended. */
const start = (env: Record<string, string>) =>
  command(['src/index.ts'], { DATABASE_URL: 'memory://', PORT: '0', ...env });

describe('start-up refuses bad configuration (SPEC §1, §8)', () => {
  test.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ AI_TIMEOUT_SECONDS: '0' }, 'AI_TIMEOUT_SECONDS'],
    [{ REDIS_URL: 'http://not-redis' }, 'REDIS_URL'],
  ])('%j stops the process with a message naming %s', (env, variable) => {
    const { exitCode, stderr } = start(env);
    expect(exitCode).toBe(1);
    expect(stderr).toContain(`Configuration error: ${variable}`);
  });

  test('production without OPENAI_API_KEY stops the process', () => {
    const { exitCode, stderr } = start({
      NODE_ENV: 'production',
      SECRET_KEY: 's'.repeat(50),
      JWT_SECRET_KEY: 'j'.repeat(32),
    });
    expect(exitCode).toBe(1);
    expect(stderr).toContain('OPENAI_API_KEY');
  });
});

describe('a database that cannot be used is said in words, with no stack trace', () => {
  test('start-up waits DATABASE_WAIT_SECONDS for a PostgreSQL that does not answer, saying so, then stops', () => {
    const started = Date.now();
    const { exitCode, stdout, stderr } = command(['src/index.ts'], {
      DATABASE_URL: NOWHERE,
      DATABASE_WAIT_SECONDS: '2',
      PORT: '0',
    });
    expect(exitCode).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    // The log (JSON lines on stdout) says what it waits for.
    expect(stdout).toContain('waiting for it (DATABASE_WAIT_SECONDS)');
    expect(stderr).toContain('Cannot start: the database DATABASE_URL names did not answer (ECONNREFUSED).');
    expect(stderr).not.toContain(' at ');
    // The URL (it may hold a password) is never printed.
    expect(stdout + stderr).not.toContain('nowhere');
  });

  test.each([
    [['scripts/migrate.ts'], 'Cannot migrate'],
    [
      [
        'scripts/createsuperuser.ts',
        '--username',
        'zed',
        '--email',
        'zed@example.com',
        '--password',
        'Strong-pass-1234',
      ],
      'Cannot create the superuser',
    ],
  ])('%j stops at once: %s', (args, doing) => {
    const { exitCode, stderr } = command(args, { DATABASE_URL: NOWHERE });
    expect(exitCode).toBe(1);
    expect(stderr.trim()).toBe(`${doing}: the database DATABASE_URL names did not answer (ECONNREFUSED).`);
  });
});

describe.if(Boolean(SERVICES.databaseUrl))('PostgreSQL that is not there yet, or refuses', () => {
  test('start-up waits for a PostgreSQL that comes up after it, then migrates and serves', async () => {
    const database = await createTestDatabase({ migrated: false });
    const proxy = await startProxy(database.url as string);
    await proxy.cut();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = launchServerProcess({ DATABASE_URL: proxy.url, DATABASE_WAIT_SECONDS: '30' }, port, 'pipe');
    try {
      await Bun.sleep(2000);
      expect(child.exitCode).toBeNull(); // still waiting, not listening yet
      expect(await fetch(`${url}/api/health/`).catch(() => 'refused')).toBe('refused');
      await proxy.restore();
      await until(
        async () => (await fetch(`${url}/api/health/`).catch(() => undefined))?.status === 200,
        'healthy once PostgreSQL answers',
        15_000,
      );
      // Migrated: an account can be made and used.
      const me = await createClient(url).signUp();
      expect(me.access).toEqual(expect.any(String));
    } finally {
      child.kill();
      await child.exited;
      proxy.stop();
      await database.drop();
    }
    expect(await new Response(child.stderr).text()).toBe('');
  }, 40_000);

  test('a database that does not exist stops start-up at once, saying so', () => {
    const missing = new URL(SERVICES.databaseUrl as string);
    missing.pathname = `/${uniqueName('missing')}`;
    const { exitCode, stderr } = command(['src/index.ts'], { DATABASE_URL: missing.toString(), PORT: '0' });
    expect(exitCode).toBe(1);
    expect(stderr.trim()).toBe('Cannot start: the database DATABASE_URL names does not exist (3D000).');
  });
});

/** The environment a process runs with now (Linux: /proc/<pid>/environ). */
const environOf = async (pid: number) =>
  Object.fromEntries(
    (await Bun.file(`/proc/${pid}/environ`).text())
      .split('\0')
      .filter(Boolean)
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );

describe.if(process.platform === 'linux')('the server runs without the FTL compiler (src/jit.ts)', () => {
  test.each([
    [{}, '0'],
    [{ BUN_JSC_useFTLJIT: '1' }, '1'],
  ])('started with %j, the same process serves with BUN_JSC_useFTLJIT=%s', async (env, expected) => {
    const { child, url } = await spawnServerProcess({ DATABASE_URL: 'memory://', ...env });
    try {
      expect((await fetch(`${url}/api/health/`)).status).toBe(200);
      // The same process id: it replaced itself rather than starting a child.
      expect((await environOf(child.pid)).BUN_JSC_useFTLJIT).toBe(expected);
    } finally {
      child.kill();
      await child.exited;
    }
  });
});

describe('one server per embedded data directory', () => {
  const dataDir = `/tmp/${uniqueName('lock')}`;
  const env = { DATABASE_URL: `file://${dataDir}` };
  const lockFile = `${dataDir}.lock`;
  let first: Awaited<ReturnType<typeof spawnServerProcess>>;
  let username: string;
  beforeAll(async () => {
    first = await spawnServerProcess(env);
    username = (await createClient(first.url).register()).username;
  });
  afterAll(async () => {
    first.child.kill('SIGKILL');
    await first.child.exited;
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(lockFile, { force: true });
  });

  test('a second server on the same directory refuses to start, naming the first, which goes on', async () => {
    const second = start(env);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain(`in use by process ${first.child.pid}`);
    expect(second.stderr).toContain(lockFile);
    expect((await fetch(`${first.url}/api/health/`)).status).toBe(200);
    expect((await createClient(first.url).login(username)).access).toBeString();
  });

  test("a killed server's lock is taken over, with its data; a stopped server leaves no lock", async () => {
    first.child.kill('SIGKILL');
    await first.child.exited;
    expect(existsSync(lockFile)).toBe(true);
    const next = await spawnServerProcess(env);
    try {
      expect((await fetch(`${next.url}/api/health/`)).status).toBe(200);
      expect((await createClient(next.url).login(username)).access).toBeString();
    } finally {
      next.child.kill('SIGTERM');
      await next.child.exited;
    }
    expect(existsSync(lockFile)).toBe(false);
  });
});

describe('without REDIS_URL the server is a single instance', () => {
  test('a second server on the same port refuses to start, and the first goes on', async () => {
    const port = await freePort();
    const first = await spawnServerProcess({ DATABASE_URL: 'memory://' }, port);
    try {
      const second = start({ PORT: String(port) });
      expect(second.exitCode).toBe(1);
      expect(second.stderr).toContain(`Cannot start: port ${port} is in use`);
      expect((await fetch(`${first.url}/api/health/`)).status).toBe(200);
    } finally {
      first.child.kill('SIGTERM');
      await first.child.exited;
    }
  });
});
