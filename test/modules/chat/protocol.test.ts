import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Client, createClient } from '../../support/client';
import { startServer, type TestServer } from '../../support/server';
import { connect, connectAuthenticated } from '../../support/ws';

let server: TestServer;
let api: Client;

beforeAll(async () => {
  server = await startServer({ WS_AUTH_TIMEOUT_SECONDS: '1', WS_MAX_PAYLOAD_BYTES: '4096' });
  api = createClient(server.url);
});
afterAll(() => server.stop());

const chatUrl = (id: string, slash = '/') => `${server.wsUrl}/ws/chat/${id}${slash}`;

describe('in-band authentication', () => {
  test('answers auth.success with the conversation id, with and without the trailing slash', async () => {
    const me = await api.signUp();
    for (const slash of ['/', '']) {
      const ws = await connect(chatUrl(me.conversationId, slash));
      ws.send({ type: 'auth', token: me.access });
      expect(await ws.next()).toEqual({ type: 'auth.success', conversation_id: me.conversationId });
      ws.close();
    }
  });

  test.each([
    ['garbage', () => 'not-a-token'],
    ['an empty token', () => ''],
    ['a missing token', () => undefined],
  ])('refuses %s with AUTH_FAILED and close 4001', async (_, token) => {
    const me = await api.signUp();
    const ws = await connect(chatUrl(me.conversationId));
    ws.send({ type: 'auth', token: token() });
    expect(await ws.next()).toMatchObject({ type: 'chat.error', code: 'AUTH_FAILED' });
    expect((await ws.closed).code).toBe(4001);
  });

  test('refuses a refresh token with AUTH_FAILED and close 4001', async () => {
    const me = await api.signUp();
    const ws = await connect(chatUrl(me.conversationId));
    ws.send({ type: 'auth', token: me.refresh });
    expect((await ws.next()).code).toBe('AUTH_FAILED');
    expect((await ws.closed).code).toBe(4001);
  });

  test('refuses a blacklisted (logged-out) token with AUTH_FAILED and close 4001', async () => {
    const me = await api.signUp();
    await api.request('POST', '/api/auth/logout', { token: me.access });
    const ws = await connect(chatUrl(me.conversationId));
    ws.send({ type: 'auth', token: me.access });
    expect((await ws.next()).code).toBe('AUTH_FAILED');
    expect((await ws.closed).code).toBe(4001);
  });

  test("refuses someone else's conversation with NO_CONVERSATION and close 4004", async () => {
    const owner = await api.signUp();
    const intruder = await api.signUp();
    const ws = await connect(chatUrl(owner.conversationId));
    ws.send({ type: 'auth', token: intruder.access });
    expect((await ws.next()).code).toBe('NO_CONVERSATION');
    expect((await ws.closed).code).toBe(4004);
  });

  test('refuses a missing or malformed conversation id with NO_CONVERSATION and close 4004', async () => {
    const me = await api.signUp();
    for (const id of [crypto.randomUUID(), 'not-a-uuid']) {
      const ws = await connect(chatUrl(id));
      ws.send({ type: 'auth', token: me.access });
      expect((await ws.next()).code).toBe('NO_CONVERSATION');
      expect((await ws.closed).code).toBe(4004);
    }
  });

  test('closes with AUTH_TIMEOUT and 4001 when no auth arrives in time', async () => {
    const me = await api.signUp();
    const ws = await connect(chatUrl(me.conversationId));
    const started = Date.now();
    expect(await ws.next(undefined, 3000)).toMatchObject({ type: 'chat.error', code: 'AUTH_TIMEOUT' });
    expect((await ws.closed).code).toBe(4001);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  test('answers chat.message before auth with AUTH_REQUIRED, stays open, and the timer keeps running', async () => {
    const me = await api.signUp();
    const ws = await connect(chatUrl(me.conversationId));
    ws.send({ type: 'chat.message', content: 'hi' });
    expect((await ws.next()).code).toBe('AUTH_REQUIRED');
    ws.send({ type: 'chat.message', content: 'hi' });
    expect((await ws.next()).code).toBe('AUTH_REQUIRED');
    expect((await ws.next(undefined, 3000)).code).toBe('AUTH_TIMEOUT');
    expect((await ws.closed).code).toBe(4001);
  });

  test('frames sent right behind auth, without waiting for auth.success, wait for it and are answered', async () => {
    const me = await api.signUp();
    const ws = await connect(chatUrl(me.conversationId));
    ws.send({ type: 'auth', token: me.access });
    ws.send({ type: 'chat.message', content: 'no waiting' });
    expect((await ws.next()).type).toBe('auth.success');
    const { created, final } = await ws.reply();
    expect(created?.message.content).toBe('no waiting');
    expect(final).toMatchObject({ type: 'chat.stream', done: true });
    ws.close();
    // Behind a refused auth the socket closes: the frame gets no answer and nothing is stored.
    const bad = await connect(chatUrl(me.conversationId));
    bad.send({ type: 'auth', token: 'not-a-token' });
    bad.send({ type: 'chat.message', content: 'never stored' });
    expect(await bad.next()).toMatchObject({ type: 'chat.error', code: 'AUTH_FAILED' });
    expect((await bad.closed).code).toBe(4001);
    expect(bad.frames).toHaveLength(1);
    const stored = await api.request('GET', `/api/conversations/${me.conversationId}/messages`, {
      token: me.access,
    });
    expect(stored.body.items.map((m: { content: string }) => m.content)).not.toContain('never stored');
  });

  test('ignores a second auth frame after success', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.send({ type: 'auth', token: 'garbage' });
    ws.send({ type: 'auth', token: me.access });
    ws.send({ type: 'chat.message', content: 'still here?' });
    const { final } = await ws.reply();
    expect(final.done).toBe(true);
    expect(ws.frames.filter((f) => f.type === 'auth.success')).toHaveLength(1);
    ws.close();
  });

  test('does not start the auth timer again after success', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    await Bun.sleep(1500);
    expect(ws.frames.some((f) => f.code === 'AUTH_TIMEOUT')).toBe(false);
    ws.send({ type: 'pong' });
    ws.close();
  });
});

describe('frame errors keep the socket open', () => {
  test.each([
    ['text that is not JSON', 'hello', 'INVALID_JSON'],
    ['a JSON array', '[1,2]', 'INVALID_JSON'],
    ['a JSON string', '"auth"', 'INVALID_JSON'],
    ['a number', '123', 'INVALID_JSON'],
    ['true', 'true', 'INVALID_JSON'],
    ['null', 'null', 'INVALID_JSON'],
    ['broken JSON', '{"type": "auth",', 'INVALID_JSON'],
    ['an object without type', '{"content":"x"}', 'UNKNOWN_TYPE'],
    ['an unknown type', '{"type":"chat.delete"}', 'UNKNOWN_TYPE'],
    ['a non-string type', '{"type":42}', 'UNKNOWN_TYPE'],
    ['a prototype-polluting type', '{"type":"__proto__"}', 'UNKNOWN_TYPE'],
    ['a type from Object.prototype', '{"type":"toString"}', 'UNKNOWN_TYPE'],
  ])('%s → %s', async (_, raw, code) => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.sendRaw(raw);
    expect(await ws.next()).toMatchObject({ type: 'chat.error', code, error: expect.any(String) });
    ws.send({ type: 'chat.message', content: 'and now?' });
    expect((await ws.reply()).final.done).toBe(true);
    ws.close();
  });

  test('before auth too, what is not a frame says so; a chat frame with bad fields is AUTH_REQUIRED; the socket stays open for auth', async () => {
    const me = await api.signUp();
    const ws = await connect(chatUrl(me.conversationId));
    for (const [raw, code] of [
      ['hello', 'INVALID_JSON'],
      ['[1,2]', 'INVALID_JSON'],
      ['{"type":"chat.delete"}', 'UNKNOWN_TYPE'],
      ['{"type":"chat.message","content":5}', 'AUTH_REQUIRED'],
      ['{"type":"chat.edit"}', 'AUTH_REQUIRED'],
    ] as const) {
      ws.sendRaw(raw);
      expect({ raw, code: (await ws.next()).code }).toEqual({ raw, code });
    }
    ws.sendRaw(new Uint8Array([1, 2, 3]));
    expect((await ws.next()).code).toBe('INVALID_JSON');
    ws.send({ type: 'auth', token: me.access });
    expect((await ws.next()).type).toBe('auth.success');
    ws.close();
  });

  test('a binary frame gets INVALID_JSON', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.sendRaw(new Uint8Array([123, 34, 116, 34, 125]));
    expect((await ws.next()).code).toBe('INVALID_JSON');
    ws.close();
  });

  test('a frame over WS_MAX_PAYLOAD_BYTES closes the socket with 1009', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.sendRaw(JSON.stringify({ type: 'chat.message', content: 'x'.repeat(5000) }));
    expect((await ws.closed).code).toBe(1009);
  });
});
