import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { ChatSocket, type ChatSocketStatus, type Client, createClient, type ServerFrame } from '../client';
import { STRONG_PASSWORD, uniqueUsername } from './support/client';
import { DEFAULT_TOKENS, DRIP_ANSWER, drip } from './support/openai-stub';
import { startServer, type TestServer } from './support/server';
import { until } from './support/wait';

/**
 * SPEC §14, the typed client: Eden Treaty over the app's type for REST, and
 * ChatSocket for the WebSocket, driven against a real server.
 */

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ CHAT_RATE_LIMIT: '1000' });
});
afterAll(() => server.stop());

/** A user signed up and logged in through the typed client, with one conversation. */
const signedUp = async () => {
  const api = createClient(server.url);
  const username = uniqueUsername('typed');
  const registered = await api.api.auth.register.post({
    username,
    email: `${username}@example.com`,
    password: STRONG_PASSWORD,
  });
  expect(registered.status).toBe(201);
  const pair = await api.api.token.pair.post({ username, password: STRONG_PASSWORD });
  if (!pair.data) throw new Error(`login failed: ${pair.status}`);
  api.session.set({ access: pair.data.access, refresh: pair.data.refresh });
  const created = await api.api.conversations.post({ title: 'Typed' });
  if (!created.data) throw new Error(`create failed: ${created.status}`);
  return { api, conversationId: created.data.id };
};

/** A ChatSocket whose underlying WebSockets the test can reach (to drop them). */
const socketFor = (api: Client, conversationId: string) => {
  const opened: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(url: string | URL) {
      super(url);
      opened.push(this);
    }
  }
  const frames: ServerFrame[] = [];
  const statuses: ChatSocketStatus[] = [];
  const chat = new ChatSocket({
    url: server.wsUrl,
    conversationId,
    token: (renew) => api.accessToken(renew),
    backoffMs: () => 50,
    WebSocket: Tracked as typeof WebSocket,
  });
  for (const type of ['message.created', 'chat.start', 'chat.stream', 'chat.resume', 'chat.error'] as const)
    chat.on(type, (frame) => frames.push(frame));
  chat.onStatus((status) => statuses.push(status));
  return { chat, frames, statuses, opened };
};

const ended = (frames: ServerFrame[]) => frames.some((f) => f.type === 'chat.stream' && f.done);

describe('REST through Eden Treaty', () => {
  test('typed calls reach the real routes: list, rename, messages, usage', async () => {
    const { api, conversationId } = await signedUp();
    const list = await api.api.conversations.get({ query: {} });
    expect(list.data?.items.map((c) => c.id)).toEqual([conversationId]);
    const renamed = await api.api.conversations({ id: conversationId }).patch({ title: 'Renamed' });
    expect(renamed.data?.title).toBe('Renamed');
    const messages = await api.api.conversations({ id: conversationId }).messages.get({ query: {} });
    expect(messages.data?.items).toEqual([]);
    const usage = await api.api.usage.get({ query: {} });
    expect(usage.status).toBe(200);
  });

  test('a refused access token is refreshed once and the request sent again', async () => {
    const { api } = await signedUp();
    const tokens = api.session.get();
    if (!tokens) throw new Error('no tokens');
    api.session.set({ ...tokens, access: 'not-a-token' });
    const me = await api.api.auth.me.get();
    expect(me.status).toBe(200);
    expect(api.session.get()?.access).not.toBe('not-a-token');
  });

  test('a refused refresh token clears the session: the call answers 401', async () => {
    const { api } = await signedUp();
    api.session.set({ access: 'not-a-token', refresh: 'not-a-refresh-token' });
    const me = await api.api.auth.me.get();
    expect(me.status).toBe(401);
    expect(api.session.get()).toBeUndefined();
  });
});

describe('ChatSocket', () => {
  test('sends a message and reads its reply; the answer is the stored one', async () => {
    const { api, conversationId } = await signedUp();
    const { chat, frames } = socketFor(api, conversationId);
    await until(() => chat.status === 'open', 'the socket open');
    expect(chat.message('hello')).toBe(true);
    await until(() => ended(frames), 'the reply done');
    const text = frames.flatMap((f) => (f.type === 'chat.stream' ? [f.content] : [])).join('');
    expect(text).toBe(DEFAULT_TOKENS.join(''));
    const stored = await api.api.conversations({ id: conversationId }).messages.get({ query: {} });
    expect(stored.data?.items.map((m) => m.content)).toEqual(['hello', text]);
    expect(chat.reply).toBeUndefined();
    chat.close();
  });

  test('reconnects after a dropped connection and resumes the reply streaming meanwhile', async () => {
    const { api, conversationId } = await signedUp();
    const { chat, frames, statuses, opened } = socketFor(api, conversationId);
    await until(() => chat.status === 'open', 'the socket open');
    chat.message(drip('long'));
    await until(() => (chat.reply?.text.length ?? 0) > 0, 'the answer begun');
    opened[0]?.close();
    await until(() => frames.some((f) => f.type === 'chat.resume'), 'resumed', 5000);
    expect(statuses).toContain('reconnecting');
    await until(() => ended(frames), 'the reply done', 5000);
    const resume = frames.find((f) => f.type === 'chat.resume');
    const after = frames.slice(frames.indexOf(resume as ServerFrame) + 1);
    const rest = after.flatMap((f) => (f.type === 'chat.stream' ? [f.content] : [])).join('');
    expect(resume?.type === 'chat.resume' && resume.content + rest).toBe(DRIP_ANSWER);
    expect(opened.length).toBe(2);
    chat.close();
  });

  test('stop, regenerate and edit', async () => {
    const { api, conversationId } = await signedUp();
    const { chat, frames } = socketFor(api, conversationId);
    await until(() => chat.status === 'open', 'the socket open');
    chat.message(drip('stop me'));
    await until(() => (chat.reply?.text.length ?? 0) > 0, 'the answer begun');
    chat.stop();
    await until(() => ended(frames), 'stopped');
    expect(frames.at(-1)).toMatchObject({ type: 'chat.stream', done: true, status: 'interrupted' });

    frames.length = 0;
    chat.regenerate();
    await until(() => ended(frames), 'regenerated', 5000);
    const regenerated = frames.find((f) => f.type === 'chat.start');

    const question = (await api.api.conversations({ id: conversationId }).messages.get({ query: {} })).data
      ?.items[0];
    frames.length = 0;
    chat.edit(question?.id as string, 'edited');
    await until(() => ended(frames), 'edited');
    const stored = await api.api.conversations({ id: conversationId }).messages.get({ query: {} });
    expect(stored.data?.items.map((m) => m.content)).toEqual(['edited', DEFAULT_TOKENS.join('')]);
    expect(stored.data?.items[0]?.sibling_ids).toHaveLength(2);
    expect(regenerated?.type).toBe('chat.start');
    chat.close();
  });

  test('a conversation that is not yours closes it for good with NO_CONVERSATION', async () => {
    const { api } = await signedUp();
    const other = await signedUp();
    const { chat } = socketFor(api, other.conversationId);
    const reasons: (string | undefined)[] = [];
    chat.onStatus((status, reason) => status === 'closed' && reasons.push(reason));
    await until(() => chat.status === 'closed', 'closed');
    expect(reasons).toEqual(['NO_CONVERSATION']);
    expect(chat.message('hi')).toBe(false);
  });

  test('a refused token is renewed once through the session', async () => {
    const { api, conversationId } = await signedUp();
    const tokens = api.session.get();
    if (!tokens) throw new Error('no tokens');
    api.session.set({ ...tokens, access: 'not-a-token' });
    const { chat, opened } = socketFor(api, conversationId);
    await until(() => chat.status === 'open', 'the socket open');
    expect(opened.length).toBe(2);
    chat.close();
  });
});
