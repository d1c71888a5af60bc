import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import net from 'node:net';
import { offlineReply } from '../../../src/ai/offline';
import { type Store, StoreUnavailableError } from '../../../src/store/store';
import { createTestStore } from '../../support/backends';
import { type Client, createClient } from '../../support/client';
import { rawConnect } from '../../support/raw-ws';
import { startServer, type TestServer } from '../../support/server';
import { until } from '../../support/wait';
import { connectAuthenticated } from '../../support/ws';

let server: TestServer;
let api: Client;

beforeAll(async () => {
  // Short, so the backpressure test can outwait it; not so short that a loaded machine's
  // scheduling pause between two provider chunks reads as the provider going silent
  // (2 s expired once, after the client resumed, in a suite run on a slow hour).
  // The backpressure test's answer (2.3 M characters) is longer than answers are allowed by default.
  server = await startServer({ AI_TIMEOUT_SECONDS: '3', AI_MAX_ANSWER_CHARS: '5000000' });
  api = createClient(server.url);
});
afterAll(() => server.stop());

const countMessages = async (me: { access: string; conversationId: string }) =>
  (
    await api.request('GET', `/api/conversations/${me.conversationId}/messages?limit=100`, {
      token: me.access,
    })
  ).body.count as number;

describe('RATE_LIMIT_EXCEEDED', () => {
  test('refuses the 21st message in 60 s across two sockets of one user; refused messages are not stored', async () => {
    const me = await api.signUp();
    const second = (await api.request('POST', '/api/conversations/', { token: me.access, body: {} })).body.id;
    const a = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const b = await connectAuthenticated(server.wsUrl, second, me.access);
    for (let i = 0; i < 20; i++) {
      const ws = i % 2 ? b : a;
      ws.send({ type: 'chat.message', content: `message ${i}` });
      expect((await ws.reply()).final.done).toBe(true);
    }
    b.send({ type: 'chat.message', content: 'one too many' });
    const refused = await b.next();
    expect(refused).toMatchObject({ type: 'chat.error', code: 'RATE_LIMIT_EXCEEDED' });
    // When the oldest of the 20 leaves the 60 s window: in a minute less the time they took.
    expect(refused.retry_after).toBeGreaterThanOrEqual(30);
    expect(refused.retry_after).toBeLessThanOrEqual(60);
    expect(refused.error).toBe(`Too many messages. Try again in ${refused.retry_after} s.`);
    a.send({ type: 'chat.message', content: 'me neither' });
    expect((await a.next()).code).toBe('RATE_LIMIT_EXCEEDED');
    expect(await countMessages(me)).toBe(20);
    expect(await countMessages({ access: me.access, conversationId: second })).toBe(20);
    // The socket stays open and other users are unaffected.
    const other = await api.signUp();
    const c = await connectAuthenticated(server.wsUrl, other.conversationId, other.access);
    c.send({ type: 'chat.message', content: 'hi' });
    expect((await c.reply()).final.done).toBe(true);
    b.send({ type: 'pong' });
    for (const ws of [a, b, c]) ws.close();
  });
});

describe('backpressure', () => {
  test('stops reading the provider while the client does not read, without timing out, and loses nothing', async () => {
    const me = await api.signUp();
    const raw = await rawConnect(`${server.wsUrl}/ws/chat/${me.conversationId}/`);
    raw.sendText(JSON.stringify({ type: 'auth', token: me.access }));
    await raw.waitFor(() => raw.text().includes('auth.success'), 5000);
    raw.pause();
    raw.sendText(JSON.stringify({ type: 'chat.message', content: 'flood me [stub:long:300000]' }));
    await Bun.sleep(4500); // longer than AI_TIMEOUT_SECONDS: the timer must be paused meanwhile
    const request = server.stub.requests.at(-1);
    // On a loaded machine the buffers between us take a while longer to fill: wait
    // (up to 20 s) for half a second in which the server read nothing more.
    let pausedAt = -1;
    for (const deadline = Date.now() + 20_000; request?.sent !== pausedAt && Date.now() < deadline; ) {
      pausedAt = request?.sent ?? 0;
      await Bun.sleep(500);
    }
    expect(request?.sent).toBe(pausedAt);
    expect(pausedAt).toBeLessThan(300000);
    expect(request?.finished).toBe(false);
    raw.resume();
    // An error ends the wait too, so a failure says what happened.
    await raw.waitFor(() => /"done":true|chat\.error/.test(raw.tail()), 60_000);
    expect(raw.text()).not.toContain('chat.error');
    const last = (
      await api.request('GET', `/api/conversations/${me.conversationId}/messages`, { token: me.access })
    ).body.items.at(-1);
    expect(last.status).toBe('complete');
    expect(last.content.split(' w').length - 1).toBe(300000);
    raw.destroy();
  }, 90_000);
});

describe('a socket that stops reading, among others that read on', () => {
  test('holds them up for a few seconds at most: it is closed (1013) and they get the whole answer', async () => {
    const me = await api.signUp();
    const reader = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const stalled = await rawConnect(`${server.wsUrl}/ws/chat/${me.conversationId}/`);
    stalled.sendText(JSON.stringify({ type: 'auth', token: me.access }));
    await stalled.waitFor(() => stalled.text().includes('auth.success'), 5000);
    stalled.pause();
    reader.send({ type: 'chat.message', content: 'flood us [stub:long:150000]' });
    // Held up until the stalled socket's heartbeat ran out (a minute), this would time out.
    const { deltas, final } = await reader.reply(40_000);
    expect(final).toEqual({ type: 'chat.stream', content: '', done: true, message_id: expect.any(String) });
    const stored = (
      await api.request('GET', `/api/conversations/${me.conversationId}/messages`, { token: me.access })
    ).body.items.at(-1);
    expect(stored.status).toBe('complete');
    expect(deltas.join('')).toBe(stored.content);
    // The server closed the stalled socket: 1013, try again later (it resumes then).
    expect(server.logs.some((line) => line.includes('closing a socket that stopped reading mid-reply'))).toBe(
      true,
    );
    stalled.resume();
    await stalled.waitFor(() => stalled.ended, 20_000);
    // Its close frame comes after what was queued for it, unless the server gave up on a
    // reader this slow first and cut the connection (a loaded machine): then there is none.
    const code = stalled.closedWith();
    expect(code === undefined || code === 1013).toBe(true);
    stalled.destroy();
    reader.close();
  }, 90_000);

  test('an AI SDK reader that stops reading is ended with an error part saying where to resume', async () => {
    const me = await api.signUp();
    const reader = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    // POST /api/chat by hand, over a connection whose reading is paused at once.
    const body = JSON.stringify({
      id: me.conversationId,
      messages: [{ id: 'm1', role: 'user', parts: [{ type: 'text', text: 'flood us [stub:long:150000]' }] }],
    });
    const { hostname, port } = new URL(server.url);
    const http = net.connect(Number(port), hostname);
    await new Promise((resolve) => http.once('connect', resolve));
    http.pause();
    http.write(
      `POST /api/chat HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${me.access}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    const { final } = await reader.reply(40_000);
    expect(final.done).toBe(true);
    const chunks: Buffer[] = [];
    http.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => http.once('close', resolve));
    http.resume();
    await ended;
    const text = Buffer.concat(chunks).toString();
    expect(text).toContain(
      `"type":"error","errorText":"This stream fell behind the answer and was closed; GET /api/chat/${me.conversationId}/stream resumes it."`,
    );
    expect(text).not.toContain('"type":"finish"');
    reader.close();
  }, 90_000);
});

describe('heartbeat', () => {
  let beating: TestServer;
  beforeAll(async () => {
    beating = await startServer({ WS_HEARTBEAT_SECONDS: '1', WS_AUTH_TIMEOUT_SECONDS: '10' });
  });
  afterAll(() => beating.stop());

  test('pings authenticated clients every interval and keeps those who answer', async () => {
    const me = await createClient(beating.url).signUp();
    const ws = await connectAuthenticated(beating.wsUrl, me.conversationId, me.access);
    for (let i = 0; i < 4; i++) {
      expect(await ws.next((f) => f.type === 'ping', 2500)).toEqual({ type: 'ping' });
      ws.send({ type: 'pong' });
    }
    ws.send({ type: 'chat.message', content: 'still alive' });
    expect((await ws.reply()).final.done).toBe(true);
    ws.close();
  });

  test('disconnects a client silent for two intervals', async () => {
    const me = await createClient(beating.url).signUp();
    const ws = await connectAuthenticated(beating.wsUrl, me.conversationId, me.access);
    const started = Date.now();
    const { code } = await ws.closed;
    expect(code).toBe(4008);
    // Two intervals of silence, then closed within an eighth of one (plus a loaded machine's slack).
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(Date.now() - started).toBeLessThan(2600);
    expect(ws.frames.some((f) => f.type === 'ping')).toBe(true);
  });

  test('does not ping before authentication', async () => {
    const me = await createClient(beating.url).signUp();
    const { connect } = await import('../../support/ws');
    const ws = await connect(`${beating.wsUrl}/ws/chat/${me.conversationId}/`);
    await Bun.sleep(2200);
    expect(ws.frames).toEqual([]);
    ws.close();
  });
});

describe('offline model', () => {
  test('without OPENAI_API_KEY a built-in model streams a deterministic reply end to end', async () => {
    const offline = await startServer({}, { offline: true });
    try {
      const client = createClient(offline.url);
      const me = await client.signUp();
      const ws = await connectAuthenticated(offline.wsUrl, me.conversationId, me.access);
      ws.send({ type: 'chat.message', content: 'Are you there?' });
      const { deltas, final } = await ws.reply();
      expect(deltas.length).toBeGreaterThan(5);
      expect(deltas.join('')).toBe(offlineReply('Are you there?'));
      expect(final.done).toBe(true);
      const items = (
        await client.request('GET', `/api/conversations/${me.conversationId}/messages`, { token: me.access })
      ).body.items;
      expect(items[1].content).toBe(offlineReply('Are you there?'));
      expect(items[1].completion_tokens).toBeGreaterThan(0);
      ws.close();
    } finally {
      await offline.stop();
    }
  });
});

describe('the store stops answering claims it has applied', () => {
  test('each lock left behind is released once it answers again, not only the last one asked for', async () => {
    const testStore = await createTestStore();
    const inner = testStore.store;
    // Claims reach the store and are applied, but their answers are lost (a command that
    // timed out here, then ran); releases fail outright. Until `answering` is set again.
    let answering = true;
    const store = new Proxy(inner, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (typeof value !== 'function') return value;
        if (name === 'claim')
          return async (...args: Parameters<Store['claim']>) => {
            const claimed = await target.claim(...args);
            if (!answering) throw new StoreUnavailableError();
            return claimed;
          };
        if (name === 'release')
          return (...args: Parameters<Store['release']>) =>
            answering ? target.release(...args) : Promise.reject(new StoreUnavailableError());
        return value.bind(target);
      },
    });
    const flaky = await startServer({}, { store });
    try {
      const client = createClient(flaky.url);
      const me = await client.signUp();
      const ws = await connectAuthenticated(flaky.wsUrl, me.conversationId, me.access);
      answering = false;
      // The first reply's lock is applied; the second's claim finds it and is not. Both are
      // answered (the lock fails open, SPEC §10) and both releases are put off.
      for (const content of ['one', 'two']) {
        ws.send({ type: 'chat.message', content });
        expect((await ws.reply()).final.done).toBe(true);
      }
      answering = true;
      await until(
        async () => !(await inner.exists(`lock:conversation:${me.conversationId}`)),
        'the lock released',
        3000,
      );
      ws.send({ type: 'chat.message', content: 'three' });
      expect((await ws.reply()).final).toMatchObject({ type: 'chat.stream', done: true });
      ws.close();
    } finally {
      await flaky.stop();
      await testStore.drop();
    }
  });
});
