/** Starts the server as a real process (`bun src/index.ts`) and waits until it answers. */
import { createServer } from 'node:net';
import { FAST_PASSWORD_HASHING } from './backends';
import { SUITE_RUNTIME } from './tuning';

const root = new URL('../..', import.meta.url).pathname;

const healthy = (url: string) =>
  fetch(`${url}/api/health/`).then(
    (r) => r.ok,
    () => false,
  );

/** Whether nothing listens on `port` of 127.0.0.1: a plain bind (no SO_REUSEPORT) succeeds. */
const bindable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen({ port, host: '127.0.0.1', exclusive: true }, () => probe.close(() => resolve(true)));
  });

/**
 * A port nobody listens on, below Linux's ephemeral range (32768+), where an outgoing
 * connection could hold it. Checked, because the server listens with SO_REUSEPORT: a
 * server left behind on the same port would silently share the test's requests.
 */
export const freePort = async () => {
  for (;;) {
    const port = 21000 + Math.floor(Math.random() * 11000);
    if (await bindable(port)) return port;
  }
};

/** The suite's runtime settings (tuning.ts) as this process has them, for the processes the tests start. */
export const RUNTIME_TUNING = Object.fromEntries(
  Object.keys(SUITE_RUNTIME).flatMap((name) => {
    const value = process.env[name];
    return value === undefined ? [] : [[name, value]];
  }),
);

/** Starts the server as a process on `port`, without waiting for it; `stderr: 'pipe'` to read what it says. */
export const launchServerProcess = (
  env: Record<string, string>,
  port: number,
  stderr: 'inherit' | 'pipe' = 'inherit',
) =>
  Bun.spawn(['bun', 'src/index.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      ...RUNTIME_TUNING,
      PORT: String(port),
      HOST: '127.0.0.1',
      ...(env.NODE_ENV === 'production' ? {} : FAST_PASSWORD_HASHING),
      ...env,
    },
    stdout: 'ignore',
    stderr,
  });

export const spawnServerProcess = async (env: Record<string, string>, port?: number) => {
  port ??= await freePort();
  const child = launchServerProcess(env, port);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 80 && !(await healthy(url)); i++) await Bun.sleep(250);
  return { child, url, wsUrl: `ws://127.0.0.1:${port}` };
};
