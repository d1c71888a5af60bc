import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
// The bench's /proc readers: which process listens on a port, which sockets a process holds.
import { listeningInodes, listensOn, socketInodes } from '../../bench/lib/proc';
import { createTestDatabase, SERVICES, type TestDatabase, uniqueName } from '../support/backends';
import { createClient } from '../support/client';
import { type OpenAIStub, startOpenAIStub } from '../support/openai-stub';
import { freePort, spawnServerProcess } from '../support/process';
import { connectAuthenticated, type WsClient } from '../support/ws';

// Several processes per host, one port (README "Several instances"): needs shared PostgreSQL and Redis.
describe.if(Boolean(SERVICES.databaseUrl && SERVICES.redisUrl))('two processes on one port', () => {
  let port = 0;
  let stub: OpenAIStub;
  let database: TestDatabase;
  let children: Awaited<ReturnType<typeof spawnServerProcess>>[] = [];

  beforeAll(async () => {
    stub = startOpenAIStub();
    await stub.ready;
    port = await freePort();
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
        if (await listensOn(child.child.pid, port)) break;
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
    const listening = await listeningInodes(port);
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
    // Every socket sees every reply (SPEC §11), whichever process runs it.
    for (const [i, ws] of sockets.entries()) {
      ws.send({ type: 'chat.message', content: `message ${i}` });
      for (const socket of sockets) {
        const { final, created } = await socket.reply();
        expect(final.done).toBe(true);
        expect(created?.message.content).toBe(`message ${i}`);
      }
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
