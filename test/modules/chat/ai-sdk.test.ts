import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { DefaultChatTransport, readUIMessageStream, type UIMessage, type UIMessageChunk } from 'ai';
import { type Client, createClient, postChat } from '../../support/client';
import { DEFAULT_TOKENS, DRIP_ANSWER, drip } from '../../support/openai-stub';
import { startServer, type TestServer } from '../../support/server';
import { signUpStaff } from '../../support/staff';
import { rejection, until } from '../../support/wait';
import { connectAuthenticated } from '../../support/ws';

/**
 * SPEC §14, the AI SDK endpoint: `POST /api/chat` and `GET /api/chat/{id}/stream`,
 * read with the real `ai` package (its transport and UI message stream reader),
 * then checked against what the server stored.
 */

let server: TestServer;
let api: Client;

beforeAll(async () => {
  server = await startServer({ CHAT_RATE_LIMIT: '1000', CHAT_MAX_MESSAGE_LENGTH: '100' });
  api = createClient(server.url);
});
afterAll(() => server.stop());

type Me = Awaited<ReturnType<Client['signUp']>>;

const transportFor = (me: Me, fetchImpl: typeof fetch = fetch) =>
  new DefaultChatTransport<UIMessage>({
    api: `${server.url}/api/chat`,
    headers: { authorization: `Bearer ${me.access}` },
    fetch: fetchImpl,
  });

const userMessage = (text: string, id = crypto.randomUUID()): UIMessage => ({
  id,
  role: 'user',
  parts: [{ type: 'text', text }],
});

/**
 * Every chunk of a stream, and the assistant message the SDK builds from them;
 * `onChunk` sees the chunks so far as each arrives.
 */
const read = async (
  stream: ReadableStream<UIMessageChunk>,
  onChunk: (chunks: UIMessageChunk[]) => void = () => {},
) => {
  const chunks: UIMessageChunk[] = [];
  const [forChunks, forMessage] = stream.tee();
  const collecting = (async () => {
    for await (const chunk of forChunks) {
      chunks.push(chunk);
      onChunk(chunks);
    }
  })();
  let message: UIMessage | undefined;
  const errors: unknown[] = [];
  for await (const snapshot of readUIMessageStream({
    stream: forMessage,
    onError: (error) => errors.push(error),
  }))
    message = snapshot;
  await collecting;
  const text = (message?.parts ?? []).map((p) => (p.type === 'text' ? p.text : '')).join('');
  return { chunks, message, text, errors };
};

const send = (me: Me, text: string, history: UIMessage[] = []) =>
  transportFor(me).sendMessages({
    chatId: me.conversationId,
    messages: [...history, userMessage(text)],
    trigger: 'submit-message',
    messageId: undefined,
    abortSignal: undefined,
  });

const messagesOf = async (me: Me, through = api) =>
  (
    await through.request('GET', `/api/conversations/${me.conversationId}/messages?limit=100`, {
      token: me.access,
    })
  ).body.items as { id: string; role: string; status: string; content: string; parent_id: string | null }[];

const post = (me: Me | undefined, body: unknown, conversationId = me?.conversationId) =>
  api.request('POST', '/api/chat', {
    token: me?.access,
    body: body ?? { id: conversationId, messages: [userMessage('hi')], trigger: 'submit-message' },
  });

describe('POST /api/chat', () => {
  test('answers in the UI message stream protocol v1, and the answer is stored', async () => {
    const me = await api.signUp();
    const response = await postChat(server.url, me.access, me.conversationId, 'hello');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toStartWith('text/event-stream');
    expect(response.headers.get('x-vercel-ai-ui-message-stream')).toBe('v1');
    const raw = await response.text();
    const stored = await messagesOf(me);
    const answer = stored.find((m) => m.role === 'assistant');
    const lines = raw.split('\n\n').filter(Boolean);
    expect(lines.at(-1)).toBe('data: [DONE]');
    const parts = lines.slice(0, -1).map((line) => JSON.parse(line.replace(/^data: /, '')));
    expect(parts.map((p) => p.type)).toEqual([
      'start',
      'text-start',
      ...DEFAULT_TOKENS.map(() => 'text-delta'),
      'text-end',
      'finish',
    ]);
    expect(parts[0]).toEqual({ type: 'start', messageId: answer?.id });
    expect(parts.filter((p) => p.type === 'text-delta').map((p) => p.delta)).toEqual(DEFAULT_TOKENS);
    expect(parts.at(-1)).toEqual({ type: 'finish', messageMetadata: { status: 'complete' } });
    expect(stored.map((m) => [m.role, m.content, m.status])).toEqual([
      ['user', 'hello', 'complete'],
      ['assistant', DEFAULT_TOKENS.join(''), 'complete'],
    ]);
  });

  test('the AI SDK reads the answer with the stored id', async () => {
    const me = await api.signUp();
    const { message, text, errors } = await read(await send(me, 'hello'));
    expect(errors).toEqual([]);
    expect(text).toBe(DEFAULT_TOKENS.join(''));
    const stored = await messagesOf(me);
    expect(message?.id).toBe(stored[1]?.id as string);
    expect(message?.metadata).toEqual({ status: 'complete' });
  });

  test("only the last user message is taken: the stored history is trusted, not the client's copy", async () => {
    const me = await api.signUp();
    await read(await send(me, 'first question'));
    const before = server.stub.requests.length;
    const forged: UIMessage[] = [
      userMessage('a question never asked'),
      { id: 'x', role: 'assistant', parts: [{ type: 'text', text: 'an answer never given' }] },
    ];
    const { text } = await read(await send(me, 'second question', forged));
    expect(text).toBe(DEFAULT_TOKENS.join(''));
    const sent = server.stub.requests[before]?.messages.filter((m) => m.role !== 'system');
    expect(sent?.map((m) => m.content)).toEqual([
      'first question',
      DEFAULT_TOKENS.join(''),
      'second question',
    ]);
    expect((await messagesOf(me)).map((m) => m.content)).toEqual([
      'first question',
      DEFAULT_TOKENS.join(''),
      'second question',
      DEFAULT_TOKENS.join(''),
    ]);
  });

  test('regenerate-message with a messageId answers that question again, as a sibling', async () => {
    const me = await api.signUp();
    const first = await read(await send(me, 'question'));
    const stream = await transportFor(me).sendMessages({
      chatId: me.conversationId,
      messages: [userMessage('question')],
      trigger: 'regenerate-message',
      messageId: first.message?.id,
      abortSignal: undefined,
    });
    const again = await read(stream);
    expect(again.text).toBe(DEFAULT_TOKENS.join(''));
    const stored = await messagesOf(me);
    // The current branch: the question and the new answer, which replaced the first one.
    expect(stored.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(stored[1]?.id).toBe(again.message?.id as string);
    expect(again.message?.id).not.toBe(first.message?.id as string);
    expect(stored[1]?.parent_id).toBe(stored[0]?.id as string);
  });

  test('regenerate-message without a messageId regenerates the last answer', async () => {
    const me = await api.signUp();
    await read(await send(me, 'question'));
    const response = await post(me, { id: me.conversationId, messages: [], trigger: 'regenerate-message' });
    expect(response.status).toBe(200);
    expect(response.body).toContain('"type":"start"');
    const stored = await messagesOf(me);
    expect(stored.map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  test('a socket of the conversation sees the reply too (fan-out)', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const { text } = await read(await send(me, 'hello'));
    const { created, start, deltas, final } = await ws.reply();
    expect(text).toBe(deltas.join(''));
    expect(created?.message.content).toBe('hello');
    expect(final.message_id).toBe(start?.message_id);
    ws.close();
  });

  test('a failure mid-answer is an error part, after the text that arrived', async () => {
    const me = await api.signUp();
    // The stub cuts the connection once both tokens have come through.
    const { chunks, errors } = await read(await send(me, 'boom [stub:drop]'), (sofar) => {
      if (sofar.filter((c) => c.type === 'text-delta').length === 2) server.stub.cut();
    });
    expect(chunks.map((c) => c.type)).toEqual(['start', 'text-start', 'text-delta', 'text-delta', 'error']);
    expect(chunks.at(-1)).toEqual({ type: 'error', errorText: 'The AI provider broke off the answer.' });
    expect(errors.length).toBeGreaterThan(0);
  });

  test('a provider refusing before its first token: the answer had started (its question is stored), so an error part', async () => {
    const me = await api.signUp();
    const { chunks } = await read(await send(me, 'fail [stub:status:500]'));
    expect(chunks.map((c) => c.type)).toEqual(['start', 'text-start', 'error']);
    expect((await messagesOf(me)).map((m) => m.role)).toEqual(['user']);
  });

  test('stop ends the stream with an interrupted finish, and the partial answer is stored', async () => {
    const me = await api.signUp();
    const stream = await send(me, drip('long'));
    let deltas = 0;
    const reading = read(stream, (chunks) => {
      deltas = chunks.filter((chunk) => chunk.type === 'text-delta').length;
    });
    // Stopped once some text has come (a stop before it would keep nothing).
    await until(() => deltas > 0, 'the first text');
    const stopped = await api.request('POST', `/api/conversations/${me.conversationId}/stop`, {
      token: me.access,
    });
    expect(stopped.body).toEqual({ stopped: true });
    const { message, text } = await reading;
    expect(message?.metadata).toEqual({ status: 'interrupted' });
    expect(text.length).toBeGreaterThan(0);
    expect(DRIP_ANSWER.startsWith(text)).toBe(true);
    const stored = await messagesOf(me);
    expect(stored[1]).toMatchObject({ status: 'interrupted', content: text });
  });

  test('the reader going away does not end the reply: it is stored whole', async () => {
    const me = await api.signUp();
    const controller = new AbortController();
    const stream = await transportFor(me).sendMessages({
      chatId: me.conversationId,
      messages: [userMessage(drip('go on'))],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: controller.signal,
    });
    const reader = stream.getReader();
    await reader.read();
    controller.abort();
    await until(
      async () => (await messagesOf(me))[1]?.status === 'complete',
      'the answer stored complete',
      5000,
    );
    expect((await messagesOf(me))[1]?.content).toBe(DRIP_ANSWER);
  });
});

describe('CHAT_STOP_ON_DISCONNECT=true', () => {
  test('the reader going away stops the reply, as a socket closing does', async () => {
    const strict = await startServer({ CHAT_STOP_ON_DISCONNECT: 'true' });
    try {
      const strictApi = createClient(strict.url);
      const me = await strictApi.signUp();
      const controller = new AbortController();
      const response = await fetch(`${strict.url}/api/chat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${me.access}`, 'content-type': 'application/json' },
        // 40 tokens 100 ms apart: a moment's stall of this busy process cannot let the
        // answer end before the reader goes.
        body: JSON.stringify({ id: me.conversationId, messages: [userMessage(drip('stop when I go', 100))] }),
        signal: controller.signal,
      });
      // Gone once some of the answer has come: a stop before its first token would
      // keep nothing (SPEC §11), which is not what this test is about.
      const reader = response.body?.getReader();
      const decoder = new TextDecoder();
      for (let seen = ''; !seen.includes('"type":"text-delta"'); ) {
        const { value, done } = (await reader?.read()) ?? { done: true };
        if (done) throw new Error(`the stream ended before any text: ${seen}`);
        seen += decoder.decode(value, { stream: true });
      }
      controller.abort();
      // The answer is stored once it ends, however it ends.
      await until(async () => (await messagesOf(me, strictApi)).length === 2, 'the answer stored', 8000);
      const answer = (await messagesOf(me, strictApi))[1];
      expect(answer?.status).toBe('interrupted');
      expect(answer?.content.length).toBeLessThan(DRIP_ANSWER.length);
    } finally {
      await strict.stop();
    }
  });
});

describe('GET /api/chat/{id}/stream', () => {
  test('resumes a reply in progress: its text read with the SDK is the whole answer', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.send({ type: 'chat.message', content: drip('resume me') });
    await ws.next((frame) => frame.type === 'chat.stream');
    const stream = await transportFor(me).reconnectToStream({ chatId: me.conversationId });
    expect(stream).not.toBeNull();
    const { text, message } = await read(stream as ReadableStream<UIMessageChunk>);
    expect(text).toBe(DRIP_ANSWER);
    const stored = await messagesOf(me);
    expect(message?.id).toBe(stored[1]?.id as string);
    expect(stored[1]?.content).toBe(text);
    ws.close();
  });

  test('answers 204 when no reply streams (the SDK reads null)', async () => {
    const me = await api.signUp();
    const response = await api.request('GET', `/api/chat/${me.conversationId}/stream`, { token: me.access });
    expect(response.status).toBe(204);
    expect(await transportFor(me).reconnectToStream({ chatId: me.conversationId })).toBeNull();
  });

  test('401 without a token, 404 for a conversation that is not yours', async () => {
    const me = await api.signUp();
    const other = await api.signUp();
    expect((await api.request('GET', `/api/chat/${me.conversationId}/stream`)).status).toBe(401);
    const foreign = await api.request('GET', `/api/chat/${me.conversationId}/stream`, {
      token: other.access,
    });
    expect(foreign.status).toBe(404);
    expect(foreign.body).toEqual({ detail: 'Conversation not found.' });
    const unknown = await api.request('GET', `/api/chat/${crypto.randomUUID()}/stream`, {
      token: me.access,
    });
    expect(unknown.status).toBe(404);
    const malformed = await api.request('GET', '/api/chat/not-a-uuid/stream', { token: me.access });
    expect(malformed.status).toBe(404);
  });
});

describe('refusals before the answer are plain HTTP errors', () => {
  test('401 without a token', async () => {
    const response = await post(undefined, { id: crypto.randomUUID(), messages: [userMessage('hi')] });
    expect(response.status).toBe(401);
  });

  test("404 for another user's conversation, an unknown one or an id that is none, and nothing is stored", async () => {
    const me = await api.signUp();
    const other = await api.signUp();
    for (const id of [me.conversationId, crypto.randomUUID(), 'nope']) {
      const response = await post(other, { id, messages: [userMessage('hi')] });
      expect(response.status).toBe(404);
      expect(response.body).toEqual({ detail: 'Conversation not found.' });
    }
    expect(await messagesOf(me)).toEqual([]);
  });

  test('409 already_processing while a reply streams', async () => {
    const me = await api.signUp();
    const first = await send(me, drip('long'));
    const reading = read(first);
    await until(async () => (await messagesOf(me)).length === 1, 'the first question stored');
    const second = await post(me, { id: me.conversationId, messages: [userMessage('again')] });
    expect(second.status).toBe(409);
    expect(second.body).toEqual({ detail: expect.any(String), code: 'already_processing' });
    // The AI SDK surfaces it as an error of the request.
    expect(await rejection(send(me, 'again'))).toBeInstanceOf(Error);
    expect((await reading).text).toBe(DRIP_ANSWER);
  });

  test('422 for empty content, a message that is too long and a request with no user message', async () => {
    const me = await api.signUp();
    const empty = await post(me, { id: me.conversationId, messages: [userMessage('   ')] });
    expect(empty.status).toBe(422);
    expect(empty.body.detail[0].loc).toEqual(['body', 'messages']);
    const long = await post(me, { id: me.conversationId, messages: [userMessage('x'.repeat(101))] });
    expect(long.status).toBe(422);
    const none = await post(me, { id: me.conversationId, messages: [] });
    expect(none.status).toBe(422);
    const malformed = await post(me, { id: me.conversationId, messages: 'hello' });
    expect(malformed.status).toBe(422);
    const badTrigger = await post(me, { id: me.conversationId, messages: [], trigger: 'explode' });
    expect(badTrigger.status).toBe(422);
    expect(badTrigger.body.detail[0]).toMatchObject({
      loc: ['body', 'trigger'],
      msg: 'Must be "submit-message" or "regenerate-message".',
    });
    expect(await messagesOf(me)).toEqual([]);
  });

  test('hostile bodies are a 4xx, never a 5xx, and store nothing', async () => {
    const me = await api.signUp();
    for (const text of ['\u0000', 'a\u0000b', '\uD800', 'x\uDC00y']) {
      const response = await post(me, { id: me.conversationId, messages: [userMessage(text)] });
      expect(response.status).toBe(422);
    }
    const bodies: unknown[] = [
      null,
      [],
      'text',
      { id: me.conversationId },
      { id: me.conversationId, messages: [null] },
      { id: me.conversationId, messages: [{ role: 'user' }] },
      { id: me.conversationId, messages: [{ role: 'user', parts: [{ type: 'text', text: 12 }] }] },
      { id: me.conversationId, messages: [{ role: 'user', parts: 'hi' }] },
      { id: 12, messages: [] },
      { id: me.conversationId, messages: [], trigger: 'regenerate-message', messageId: '\u0000' },
    ];
    for (const body of bodies) {
      const response = await api.request('POST', '/api/chat', {
        token: me.access,
        raw: JSON.stringify(body),
      });
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
    }
    const raw = await api.request('POST', '/api/chat', { token: me.access, raw: '{"id":' });
    expect([400, 422]).toContain(raw.status);
    expect(await messagesOf(me)).toEqual([]);
  });

  test('404 message_not_found when regenerating a message that is not an answer of this conversation', async () => {
    const me = await api.signUp();
    const response = await post(me, {
      id: me.conversationId,
      messages: [],
      trigger: 'regenerate-message',
      messageId: crypto.randomUUID(),
    });
    expect(response.status).toBe(404);
    expect(response.body).toEqual({ detail: expect.any(String), code: 'message_not_found' });
  });
});

describe('limits over the AI SDK endpoint', () => {
  let limited: TestServer;
  let limitedApi: Client;
  beforeAll(async () => {
    limited = await startServer({ CHAT_RATE_LIMIT: '2' });
    limitedApi = createClient(limited.url);
  });
  afterAll(() => limited.stop());

  const postTo = (me: Me, text: string) =>
    limitedApi.request('POST', '/api/chat', {
      token: me.access,
      body: { id: me.conversationId, messages: [userMessage(text)] },
    });

  test('429 rate_limit_exceeded past the rate limit', async () => {
    const me = await limitedApi.signUp();
    expect((await postTo(me, 'one')).status).toBe(200);
    expect((await postTo(me, 'two')).status).toBe(200);
    const third = await postTo(me, 'three');
    expect(third.status).toBe(429);
    expect(third.body).toEqual({ detail: expect.any(String), code: 'rate_limit_exceeded' });
    // The first of the two leaves the 60 s window in about a minute.
    const retryAfter = Number(third.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(50);
    expect(retryAfter).toBeLessThanOrEqual(60);
  });

  test('429 quota_exceeded past the daily quota', async () => {
    const me = await limitedApi.signUp();
    const staff = await signUpStaff(limited.resources.database.db, limitedApi);
    const set = await limitedApi.request('PATCH', `/api/admin/users/${me.user.id}`, {
      token: staff.access,
      body: { daily_message_quota: 1 },
    });
    expect(set.status).toBe(200);
    expect((await postTo(me, 'one')).status).toBe(200);
    const second = await postTo(me, 'two');
    expect(second.status).toBe(429);
    expect(second.body).toEqual({ detail: expect.any(String), code: 'quota_exceeded' });
    // The quota resets at the next midnight UTC.
    const untilMidnight = (86_400_000 - (Date.now() % 86_400_000)) / 1000;
    expect(Math.abs(Number(second.headers.get('retry-after')) - untilMidnight)).toBeLessThan(3);
    expect((await messagesOf(me, limitedApi)).map((m) => m.content)).toEqual([
      'one',
      DEFAULT_TOKENS.join(''),
    ]);
  });
});
