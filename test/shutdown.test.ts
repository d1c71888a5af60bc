import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { openPglite } from '../src/db/client';
import { createTestDatabase, SERVICES, type TestDatabase, uniqueName } from './support/backends';
import { createClient, postChat } from './support/client';
import { type OpenAIStub, startOpenAIStub } from './support/openai-stub';
import { spawnServerProcess } from './support/process';
import { connectAuthenticated } from './support/ws';

let stub: OpenAIStub;
let database: TestDatabase | undefined;
const dataDir = `/tmp/${uniqueName('shutdown')}`;

beforeAll(async () => {
  stub = startOpenAIStub();
  await stub.ready;
  if (SERVICES.databaseUrl) database = await createTestDatabase();
});
afterAll(async () => {
  stub.stop();
  await database?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Starts `bun src/index.ts` as a real process on this test's database and stub. */
const startProcess = () =>
  spawnServerProcess({
    OPENAI_API_KEY: 'sk-test',
    OPENAI_BASE_URL: stub.url,
    SHUTDOWN_GRACE_SECONDS: '1',
    DATABASE_URL: database?.url ?? `file://${dataDir}`,
    ...(SERVICES.redisUrl ? { REDIS_URL: SERVICES.redisUrl, REDIS_KEY_PREFIX: `${uniqueName('sd')}:` } : {}),
  });

/** Reads the messages straight from the database the process used. */
const storedMessages = async (conversationId: string) => {
  const handle = database ? database.handle : (await openPglite(dataDir)).handle;
  const { createConversationRepository } = await import('../src/modules/conversations/repository');
  const page = await createConversationRepository(handle.db).branch(conversationId, 100, 0);
  if (!database) await handle.close();
  return page.items.map((m) => ({ role: m.role, status: m.status, content: m.content }));
};

describe('graceful shutdown on SIGTERM', () => {
  test('lets an answer that fits in the grace period finish, closes sockets with 1001 and exits 0', async () => {
    const server = await startProcess();
    const api = createClient(server.url);
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.send({ type: 'chat.message', content: 'finish me [stub:slow:80]' });
    const first = await ws.next((f) => f.type === 'chat.stream');
    server.child.kill('SIGTERM');
    await Bun.sleep(100);
    // No longer accepting, while the answer in flight goes on.
    const probe = await fetch(`${server.url}/api/health/`).then(
      () => 'up',
      () => 'down',
    );
    expect(probe).toBe('down');
    const { deltas, final } = await ws.reply();
    expect(final.done).toBe(true);
    expect((await ws.closed).code).toBe(1001);
    expect(await server.child.exited).toBe(0);
    const stored = await storedMessages(me.conversationId);
    expect(stored).toEqual([
      { role: 'user', status: 'complete', content: 'finish me [stub:slow:80]' },
      {
        role: 'assistant',
        status: 'complete',
        content: first.content + deltas.join(''),
      },
    ]);
  }, 60_000);

  test('stores an answer still streaming after the grace period as interrupted', async () => {
    const server = await startProcess();
    const api = createClient(server.url);
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.send({ type: 'chat.message', content: 'too slow [stub:slow:600]' });
    await ws.next((f) => f.type === 'chat.stream');
    server.child.kill('SIGTERM');
    // The socket learns the reply was stopped before it is closed.
    expect((await ws.reply()).final).toMatchObject({ done: true, status: 'interrupted' });
    expect((await ws.closed).code).toBe(1001);
    expect(await server.child.exited).toBe(0);
    const stored = await storedMessages(me.conversationId);
    expect(stored.map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'interrupted'],
    ]);
    expect(stored[1]?.content.startsWith('Hello')).toBe(true);
    expect(stored[1]?.content.length).toBeLessThan('Hello, this is the stub.'.length);
  }, 60_000);

  test('replies whose sockets are gone still finish within the grace period, or are stored interrupted after it', async () => {
    const server = await startProcess();
    const api = createClient(server.url);
    const me = await api.signUp();
    const other = (await api.request('POST', '/api/conversations/', { token: me.access, body: {} })).body.id;
    const quick = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const slow = await connectAuthenticated(server.wsUrl, other, me.access);
    quick.send({ type: 'chat.message', content: 'in time [stub:slow:100]' });
    slow.send({ type: 'chat.message', content: 'too late [stub:slow:600]' });
    for (const ws of [quick, slow]) {
      await ws.next((f) => f.type === 'chat.stream');
      ws.close();
    }
    await Bun.sleep(100);
    server.child.kill('SIGTERM');
    expect(await server.child.exited).toBe(0);
    expect(await storedMessages(me.conversationId)).toEqual([
      { role: 'user', status: 'complete', content: 'in time [stub:slow:100]' },
      { role: 'assistant', status: 'complete', content: 'Hello, this is the stub.' },
    ]);
    expect((await storedMessages(other)).map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'interrupted'],
    ]);
  }, 60_000);

  test('an answer read over HTTP (the AI SDK endpoint) still streaming after the grace period: its stream ends, it is stored interrupted', async () => {
    const server = await startProcess();
    const api = createClient(server.url);
    const me = await api.signUp();
    const response = await postChat(server.url, me.access, me.conversationId, 'over http [stub:slow:600]');
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let raw = '';
    /** Reads the stream into `raw` until `enough` says so or it ends. */
    const readUntil = async (enough: () => boolean) => {
      while (!enough()) {
        const { value, done } = await reader.read();
        if (done) return;
        raw += decoder.decode(value, { stream: true });
      }
    };
    await readUntil(() => raw.includes('"text-delta"'));
    server.child.kill('SIGTERM');
    await readUntil(() => false);
    expect(raw.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(await server.child.exited).toBe(0);
    expect((await storedMessages(me.conversationId)).map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'interrupted'],
    ]);
  }, 60_000);
});
