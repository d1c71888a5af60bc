import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { eq } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { messages } from '../../../src/db/schema';
import { SERVICES } from '../../support/backends';
import { createClient } from '../../support/client';
import { DEFAULT_TOKENS, drip } from '../../support/openai-stub';
import { startServer, startServerBehindRedisProxy, type TestServer } from '../../support/server';
import { until } from '../../support/wait';
import { connectAuthenticated, type WsClient } from '../../support/ws';

/**
 * A socket that has chatted remembers the conversation, and when this instance
 * expects the next claim to pass (ChatGate.expects), that message's provider request
 * leaves before the claim has answered. These tests hold it to its promises: on one
 * instance no refused message ever reaches the provider, nothing is stored or
 * streamed before admission, and a request the claim then refuses is dropped.
 */

const answer = DEFAULT_TOKENS.join('');

/** Sends `content` from `ws`; every socket of the conversation (`ws` and `others`) sees the reply to its end. */
const ask = async (ws: WsClient, content: string, others: WsClient[] = []) => {
  ws.send({ type: 'chat.message', content });
  for (const socket of [ws, ...others]) expect((await socket.reply()).final.done).toBe(true);
};

/** A new user and two sockets on their conversation. */
const twoSockets = async (server: TestServer) => {
  const me = await createClient(server.url).signUp();
  const first = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
  const second = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
  return { first, second };
};

const storedCount = async (server: TestServer, conversationId: string) =>
  (
    await server.resources.database.db
      .select()
      .from(messages)
      .where(eq(messages.conversationId, conversationId))
  ).length;

describe('a request sent ahead of its claim, on one instance', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ CHAT_RATE_LIMIT: '3' });
  });
  afterAll(() => server.stop());

  test('a message over the rate limit never reaches the provider, and none was sent twice', async () => {
    const me = await createClient(server.url).signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const allowed = ['first of three', 'second of three', 'third of three'];
    for (const content of allowed) await ask(ws, content);
    ws.send({ type: 'chat.message', content: 'one too many' });
    expect((await ws.next()).code).toBe('RATE_LIMIT_EXCEEDED');
    expect(server.stub.requestsFor('one too many')).toHaveLength(0);
    for (const content of allowed) {
      expect(server.stub.requestsFor(content)).toHaveLength(1);
      expect(server.stub.requestsFor(content)[0]?.finished).toBe(true);
    }
    expect(await storedCount(server, me.conversationId)).toBe(6);
    ws.close();
  });

  test('a message refused as busy never reaches the provider, though its room knows the history', async () => {
    const { first, second } = await twoSockets(server);
    await ask(first, 'one', [second]);
    second.send({ type: 'chat.message', content: 'slow [stub:slow:100]' });
    await second.next((f) => f.type === 'chat.stream');
    first.send({ type: 'chat.message', content: 'me too' });
    expect((await first.next((f) => f.type === 'chat.error')).code).toBe('ALREADY_PROCESSING');
    expect((await second.reply()).final.done).toBe(true);
    expect(server.stub.requestsFor('me too')).toHaveLength(0);
    first.close();
    second.close();
  });

  test('two sockets of a conversation share what it remembers: each message is one request, with the whole history', async () => {
    const { first, second } = await twoSockets(server);
    await ask(first, 'alpha', [second]);
    await ask(second, 'beta', [first]);
    await ask(first, 'gamma', [second]);
    const sent = server.stub.requestsFor('gamma');
    expect(sent).toHaveLength(1);
    expect(sent[0]?.messages.slice(1).map((m) => m.content)).toEqual([
      'alpha',
      answer,
      'beta',
      answer,
      'gamma',
    ]);
    first.close();
    second.close();
  });
});

// Holding a claim on its way needs a networked store: these run on PostgreSQL + Redis.
describe.if(Boolean(SERVICES.redisUrl))('a request sent ahead of its claim, with the claim held', () => {
  let proxied: Awaited<ReturnType<typeof startServerBehindRedisProxy>>;
  let server: TestServer;
  let proxy: typeof proxied.proxy;

  beforeAll(async () => {
    proxied = await startServerBehindRedisProxy('early');
    ({ server, proxy } = proxied);
  });
  afterAll(() => proxied.stop());

  /** A socket that has chatted once ('one'), so it remembers the history. */
  const chattedSocket = async () => {
    const me = await createClient(server.url).signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    await ask(ws, 'one');
    return { me, ws };
  };

  test('reaches the provider before the claim answers; nothing is stored or streamed until it does', async () => {
    const { me, ws } = await chattedSocket();
    const framesBefore = ws.frames.length;
    proxy.hold();
    ws.send({ type: 'chat.message', content: 'two' });
    await until(
      () => server.stub.requestsFor('two').length === 1,
      'the request for "two" reached the provider',
    );
    expect(
      server.stub
        .requestsFor('two')[0]
        ?.messages.slice(1)
        .map((m) => m.content),
    ).toEqual(['one', answer, 'two']);
    await until(() => server.stub.requestsFor('two')[0]?.finished === true, 'the provider answered');
    await Bun.sleep(100);
    // The answer is here, but waits for the claim: not a frame, not a row.
    expect(ws.frames.length).toBe(framesBefore);
    expect(await storedCount(server, me.conversationId)).toBe(2);
    proxy.letGo();
    const { deltas, final } = await ws.reply();
    expect(deltas).toEqual(DEFAULT_TOKENS);
    expect(final.done).toBe(true);
    expect(await storedCount(server, me.conversationId)).toBe(4);
    expect(server.stub.requestsFor('two')).toHaveLength(1);
    ws.close();
  });

  test('a provider that fails before the claim answers gives AI_ERROR once admitted, and the server keeps serving', async () => {
    const { me, ws } = await chattedSocket();
    proxy.hold();
    const failing = 'two [stub:status:500]';
    ws.send({ type: 'chat.message', content: failing });
    await until(() => server.stub.requestsFor(failing).length === 1, 'the early request arrived');
    await Bun.sleep(100); // the provider's 500 is in while the claim is still held
    proxy.letGo();
    expect((await ws.reply()).final).toMatchObject({ type: 'chat.error', code: 'AI_ERROR' });
    // The user's message is stored, as after any provider failure.
    expect(await storedCount(server, me.conversationId)).toBe(3);
    await ask(ws, 'after the failure');
    ws.close();
  });

  const stoppedAtStart = {
    type: 'chat.stream',
    content: '',
    done: true,
    message_id: null,
    status: 'interrupted',
  };

  /** `content` sent by a socket that has chatted once, its claim held; its early request has arrived. */
  const sentWhileHeld = async (content: string) => {
    const chatted = await chattedSocket();
    proxy.hold();
    chatted.ws.send({ type: 'chat.message', content });
    await until(() => server.stub.requestsFor(content).length === 1, 'the early request arrived');
    return chatted;
  };

  /** The early request for `content` was aborted before the provider finished it. */
  const abortedEarly = async (content: string) => {
    const [early] = server.stub.requestsFor(content);
    await until(() => early?.aborted === true, 'the early request was aborted');
    expect(early?.finished).toBe(false);
  };

  test('a chat.stop that arrives while the claim is held stops the reply as it begins', async () => {
    const content = drip('held, then stopped');
    const { me, ws } = await sentWhileHeld(content);
    ws.send({ type: 'chat.stop' });
    await Bun.sleep(100);
    proxy.letGo();
    const { created, final } = await ws.reply();
    expect(created?.message.content).toBe(content);
    expect(final).toEqual(stoppedAtStart);
    await abortedEarly(content);
    // The user message, and no answer.
    expect(await storedCount(server, me.conversationId)).toBe(3);
    await ask(ws, 'and the next one runs');
    ws.close();
  });

  test('a user deactivated while the claim is held: the reply is stopped as it begins', async () => {
    const content = drip('held, then shut out');
    const { me, ws } = await sentWhileHeld(content);
    // What deactivating a user does once the database has it (the admin route's own call).
    server.services.rooms.shutOut(me.user.id);
    expect((await ws.closed).code).toBe(4001);
    proxy.letGo();
    await abortedEarly(content);
    await until(async () => (await storedCount(server, me.conversationId)) === 3, 'the user message stored');
    await Bun.sleep(200);
    expect(await storedCount(server, me.conversationId)).toBe(3);
  });

  test('a request the claim then refuses (the lock held elsewhere) is dropped, and nothing is stored', async () => {
    const { me, ws } = await chattedSocket();
    // Another instance's reply in this conversation, as far as Redis can tell.
    const direct = new Redis(SERVICES.redisUrl as string, { keyPrefix: proxied.prefix });
    await direct.set(`lock:conversation:${me.conversationId}`, 'another instance', 'PX', 10_000);
    proxy.hold(); // so the early request surely reaches the provider before the refusal
    ws.send({ type: 'chat.message', content: 'two [stub:slow:200]' });
    await until(
      () => server.stub.requestsFor('two [stub:slow:200]').length === 1,
      'the early request arrived',
    );
    proxy.letGo();
    expect((await ws.next()).code).toBe('ALREADY_PROCESSING');
    const [early] = server.stub.requestsFor('two [stub:slow:200]');
    await until(() => early?.aborted === true, 'the early request was aborted');
    expect(early?.finished).toBe(false);
    expect(await storedCount(server, me.conversationId)).toBe(2);
    // Once the other reply is over, the socket still has its history and goes on.
    await direct.del(`lock:conversation:${me.conversationId}`);
    direct.disconnect();
    await ask(ws, 'three');
    expect(
      server.stub
        .requestsFor('three')[0]
        ?.messages.slice(1)
        .map((m) => m.content),
    ).toEqual(['one', answer, 'three']);
    ws.close();
  });
});
