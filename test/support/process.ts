/** Starts the server as a real process (`bun src/index.ts`) and waits until it answers. */

const root = new URL('../..', import.meta.url).pathname;

const healthy = (url: string) =>
  fetch(`${url}/api/health/`).then(
    (r) => r.ok,
    () => false,
  );

export const spawnServerProcess = async (
  env: Record<string, string>,
  // Below Linux's ephemeral range (32768+), where an outgoing connection could hold the port.
  port = 21000 + Math.floor(Math.random() * 11000),
) => {
  const child = Bun.spawn(['bun', 'src/index.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', ...env },
    stdout: 'ignore',
    stderr: 'inherit',
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 80 && !(await healthy(url)); i++) await Bun.sleep(250);
  return { child, url, wsUrl: `ws://127.0.0.1:${port}` };
};
