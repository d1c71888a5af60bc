import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, rmSync } from 'node:fs';
import { uniqueName } from './support/backends';
import { createClient } from './support/client';
import { freePort, spawnServerProcess } from './support/process';

const root = new URL('..', import.meta.url).pathname;

/** Runs `bun src/index.ts` with exactly `env` (plus PATH) and returns how it ended. */
const start = (env: Record<string, string>) => {
  const result = Bun.spawnSync(['bun', 'src/index.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: 'memory://', PORT: '0', ...env },
    stdin: 'ignore',
    timeout: 20_000,
  });
  return { exitCode: result.exitCode, stderr: result.stderr.toString() };
};

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
