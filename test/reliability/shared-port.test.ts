import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readdir, readlink } from 'node:fs/promises';
import { createTestDatabase, SERVICES, type TestDatabase, uniqueName } from '../support/backends';
import { createClient } from '../support/client';
import { type OpenAIStub, startOpenAIStub } from '../support/openai-stub';
import { spawnServerProcess } from '../support/process';
import { connectAuthenticated, type WsClient } from '../support/ws';

/** The sockets a process holds, by inode, read from /proc. */
const socketInodes = async (pid: number) => {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) inodes.add(inode);
  }
  return inodes;
};

/** Inodes of the sockets listening on `port` (any process). */
const listeners = async (port: number) => {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const table = await Bun.file('/proc/net/tcp').text();
  return table
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(suffix) && f[3] === '0A')
    .map((f) => f[9] as string);
};

// Several processes per host, one port (README "Several instances"): needs shared PostgreSQL and Redis.
describe.if(Boolean(SERVICES.databaseUrl && SERVICES.redisUrl))('two processes on one port', () => {
  const port = 21000 + Math.floor(Math.random() * 11000); // below the ephemeral range (32768+)
  let stub: OpenAIStub;
  let database: TestDatabase;
  let children: Awaited<ReturnType<typeof spawnServerProcess>>[] = [];

  beforeAll(async () => {
    stub = startOpenAIStub();
    await stub.ready;
    database = await createTestDatabase();
    const env = {
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: stub.url,
      LOG_LEVEL: 'warn',
      CHAT_RATE_LIMIT: '100',
      DATABASE_URL: database.url as string,
      REDIS_URL: SERVICES.redisUrl as string,
      REDIS_KEY_PREFIX: `${uniqueName('port')}:`,
    };
    // One after the other, so the second starts while the first holds the port.
    for (let i = 0; i < 2; i++) {
      const child = await spawnServerProcess(env, port);
      children.push(child);
      for (let tries = 0; tries < 80; tries++) {
        const own = await socketInodes(child.child.pid);
        if ((await listeners(port)).some((inode) => own.has(inode))) break;
        await Bun.sleep(250);
      }
    }
  });
  afterAll(async () => {
    for (const { child } of children) child.kill('SIGTERM');
    await Promise.all(children.map(({ child }) => child.exited));
    children = [];
    await database.drop();
    stub.stop();
  });

  test('both listen, the kernel spreads sockets between them, and chat works through each', async () => {
    const [first, second] = children as [(typeof children)[0], (typeof children)[0]];
    expect(first.child.exitCode).toBeNull();
    expect(second.child.exitCode).toBeNull();
    const listening = await listeners(port);
    for (const { child } of children) {
      const own = await socketInodes(child.pid);
      expect(listening.filter((inode) => own.has(inode))).toHaveLength(1);
    }

    const me = await createClient(first.url).signUp();
    const before = await Promise.all(children.map(({ child }) => socketInodes(child.pid)));
    const sockets: WsClient[] = [];
    for (let i = 0; i < 24; i++)
      sockets.push(await connectAuthenticated(first.wsUrl, me.conversationId, me.access));
    const after = await Promise.all(children.map(({ child }) => socketInodes(child.pid)));
    const gained = after.map((inodes, i) => [...inodes].filter((inode) => !before[i]?.has(inode)).length);
    // 24 connections over two listeners: each process gets some (all on one: 2 × 0.5^24).
    expect(gained.every((n) => n > 0)).toBe(true);
    expect((gained[0] as number) + (gained[1] as number)).toBeGreaterThanOrEqual(24);

    // Every socket chats, whichever process holds it; the history is shared.
    for (const [i, ws] of sockets.entries()) {
      ws.send({ type: 'chat.message', content: `message ${i}` });
      expect((await ws.reply()).final.done).toBe(true);
    }
    const messages = await createClient(first.url).request(
      'GET',
      `/api/conversations/${me.conversationId}/messages?limit=100`,
      { token: me.access },
    );
    expect(messages.body.count).toBe(48);
    for (const ws of sockets) ws.close();
  });
});
