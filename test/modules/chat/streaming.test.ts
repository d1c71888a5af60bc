import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ServerFrame } from '../../../src/modules/chat/protocol';
import { type Client, createClient } from '../../support/client';
import { DEFAULT_TOKENS, STUB_PROMPT_TOKENS, UNSTORABLE_ANSWER } from '../../support/openai-stub';
import { startServer, type TestServer } from '../../support/server';
import { CLEANING_EXAMPLES } from '../../support/spec-examples';
import { until } from '../../support/wait';
import { connectAuthenticated, type WsClient } from '../../support/ws';

let server: TestServer;
let api: Client;

beforeAll(async () => {
  // Long enough that a loaded machine's pauses never read as the provider going silent
  // (1 s made "before the delete" end in AI_TIMEOUT once); the timeout's own tests
  // have a server of their own (below).
  server = await startServer({
    AI_TIMEOUT_SECONDS: '10',
    AI_SYSTEM_PROMPT: 'You are the test assistant.',
    AI_MAX_CONTEXT_TOKENS: '300',
    CHAT_MAX_MESSAGE_LENGTH: '50',
    AI_MAX_ANSWER_CHARS: '200',
  });
  api = createClient(server.url);
});
afterAll(() => server.stop());

const messagesOf = async (me: { access: string; conversationId: string }, url = server.url) =>
  (
    await createClient(url).request('GET', `/api/conversations/${me.conversationId}/messages?limit=100`, {
      token: me.access,
    })
  ).body.items as {
    id: string;
    role: string;
    content: string;
    status: string;
    prompt_tokens: number;
    completion_tokens: number;
    created_at: string;
  }[];

const session = async () => {
  const me = await api.signUp();
  const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
  return { me, ws };
};

const lastRequest = () => server.stub.requests.at(-1);

/** A `[stub:drop]` reply: its deltas up to `partial`, then the stub cuts the connection, then the rest. */
const cutAfter = async (ws: WsClient, partial: string) => {
  const early: string[] = [];
  while (early.join('') !== partial)
    early.push((await ws.next((f) => f.type === 'chat.stream' && !f.done)).content);
  server.stub.cut();
  const rest = await ws.reply();
  return { ...rest, deltas: [...early, ...rest.deltas] };
};

describe('chat.message → streamed answer', () => {
  test('streams each delta, then done with the id of the stored assistant message', async () => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: 'Hello there' });
    const { deltas, final } = await ws.reply();
    expect(deltas).toEqual(DEFAULT_TOKENS);
    expect(final).toEqual({ type: 'chat.stream', content: '', done: true, message_id: expect.any(String) });
    const stored = await messagesOf(me);
    expect(stored.map((m) => [m.role, m.content, m.status])).toEqual([
      ['user', 'Hello there', 'complete'],
      ['assistant', deltas.join(''), 'complete'],
    ]);
    expect(stored[1]?.id).toBe(final.message_id);
    expect(stored[1]?.prompt_tokens).toBe(STUB_PROMPT_TOKENS);
    expect(stored[1]?.completion_tokens).toBe(DEFAULT_TOKENS.length);
    ws.close();
  });

  test('an answer with text the database cannot store (NUL, lone surrogates) is stored and sent alike, not lost', async () => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: 'odd bytes [stub:unstorable]' });
    const { deltas, final } = await ws.reply();
    expect(final).toMatchObject({ type: 'chat.stream', done: true });
    expect(deltas.join('')).toBe(UNSTORABLE_ANSWER);
    const stored = await messagesOf(me);
    expect(stored.map((m) => [m.role, m.content, m.status])).toEqual([
      ['user', 'odd bytes [stub:unstorable]', 'complete'],
      ['assistant', UNSTORABLE_ANSWER, 'complete'],
    ]);
    ws.close();
  });

  test('deltas that arrive from the provider together still go out one frame each, in order', async () => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: 'all at once [stub:burst]' });
    const { deltas, final } = await ws.reply();
    expect(deltas).toEqual(DEFAULT_TOKENS);
    expect(final.done).toBe(true);
    expect((await messagesOf(me))[1]?.content).toBe(DEFAULT_TOKENS.join(''));
    ws.close();
  });

  test('every frame the server sends matches the ServerFrame union; deltas have done false', async () => {
    const { ws } = await session();
    ws.send({ type: 'chat.message', content: 'shape check' });
    await ws.reply();
    ws.sendRaw('nonsense');
    await ws.next();
    const check = TypeCompiler.Compile(ServerFrame);
    for (const frame of ws.frames) expect(check.Check(frame)).toBe(true);
    // auth.success, message.created, chat.start, the deltas, done, then the error.
    expect(ws.frames.slice(0, 3).map((f) => f.type)).toEqual([
      'auth.success',
      'message.created',
      'chat.start',
    ]);
    for (const frame of ws.frames.slice(3, -2))
      expect(frame).toEqual({ type: 'chat.stream', content: expect.any(String), done: false });
    ws.close();
  });

  test('sends the model the system prompt, then the history, oldest first', async () => {
    const { ws } = await session();
    ws.send({ type: 'chat.message', content: 'first question' });
    await ws.reply();
    ws.send({ type: 'chat.message', content: 'second question' });
    await ws.reply();
    const request = lastRequest();
    expect(request?.stream).toBe(true);
    expect(request?.authorization).toBe('Bearer sk-test-key');
    expect(request?.messages).toEqual([
      { role: 'system', content: 'You are the test assistant.' },
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: DEFAULT_TOKENS.join('') },
      { role: 'user', content: 'second question' },
    ]);
    ws.close();
  });

  test('two sockets on one conversation: each request carries the turns the other added', async () => {
    const { me, ws: first } = await session();
    const second = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const answer = DEFAULT_TOKENS.join('');
    // Each socket sees both sockets' replies (SPEC §11): both read this one to its end.
    const ask = async (ws: typeof first, content: string) => {
      ws.send({ type: 'chat.message', content });
      for (const socket of [first, second]) expect((await socket.reply()).final.done).toBe(true);
      return lastRequest()
        ?.messages.slice(1)
        .map((m) => m.content);
    };
    expect(await ask(first, 'one')).toEqual(['one']);
    expect(await ask(first, 'two')).toEqual(['one', answer, 'two']);
    // The second socket never saw 'one' or 'two' itself.
    expect(await ask(second, 'three')).toEqual(['one', answer, 'two', answer, 'three']);
    // The first socket must notice that 'three' went in through the other one.
    expect(await ask(first, 'four')).toEqual(['one', answer, 'two', answer, 'three', answer, 'four']);
    first.close();
    second.close();
  });

  test('after failures the next request carries exactly what was stored', async () => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: 'cut [stub:drop]' });
    expect((await cutAfter(ws, 'Hello,')).final).toMatchObject({ code: 'AI_ERROR' });
    ws.send({ type: 'chat.message', content: 'refused [stub:status:500]' });
    expect((await ws.reply()).final).toMatchObject({ code: 'AI_ERROR' });
    ws.send({ type: 'chat.message', content: 'and now' });
    expect((await ws.reply()).final.done).toBe(true);
    const sent = lastRequest()
      ?.messages.slice(1)
      .map((m) => [m.role, m.content]);
    const stored = (await messagesOf(me)).slice(0, -1).map((m) => [m.role, m.content]);
    expect(sent).toEqual(stored);
    expect(sent).toEqual([
      ['user', 'cut [stub:drop]'],
      ['assistant', 'Hello,'],
      ['user', 'refused [stub:status:500]'],
      ['user', 'and now'],
    ]);
    ws.close();
  });

  test('trims the history oldest first to AI_MAX_CONTEXT_TOKENS, keeping the newest message', async () => {
    const { ws } = await session();
    for (let i = 0; i < 20; i++) {
      ws.send({ type: 'chat.message', content: `q${i} ${'lorem ipsum '.repeat(3)}` });
      expect((await ws.reply()).final.done).toBe(true);
    }
    const sent = lastRequest()?.messages ?? [];
    expect(sent[0]?.role).toBe('system');
    expect(sent.length).toBeLessThan(1 + 20 * 2);
    expect(sent.at(-1)?.content).toStartWith('q19 ');
    expect(sent.some((m) => m.content.startsWith('q0 '))).toBe(false);
    const { countTokens } = await import('gpt-tokenizer/encoding/o200k_base');
    const total = sent.reduce((n, m) => n + 4 + countTokens(m.content), 3);
    expect(total).toBeLessThanOrEqual(300);
    ws.close();
  });

  test("without usage from the provider, the stored token counts are the tokenizer's", async () => {
    const { me, ws } = await session();
    // Special-token text is counted as the characters it is, never an error.
    ws.send({ type: 'chat.message', content: 'what is <|endoftext|>? [stub:nousage]' });
    const { deltas, final } = await ws.reply();
    expect(final.done).toBe(true);
    const { countTokens } = await import('gpt-tokenizer/encoding/o200k_base');
    const asText = { disallowedSpecial: new Set<string>() };
    const sent = lastRequest()?.messages ?? [];
    const stored = await messagesOf(me);
    expect(stored[1]?.prompt_tokens).toBe(sent.reduce((n, m) => n + 4 + countTokens(m.content, asText), 3));
    expect(stored[1]?.completion_tokens).toBe(countTokens(deltas.join('')));
    ws.close();
  });

  test('bumps the conversation updated_at and message_count', async () => {
    const { me, ws } = await session();
    const before = (await api.request('GET', `/api/conversations/${me.conversationId}`, { token: me.access }))
      .body;
    ws.send({ type: 'chat.message', content: 'bump' });
    await ws.reply();
    const after = (await api.request('GET', `/api/conversations/${me.conversationId}`, { token: me.access }))
      .body;
    expect(new Date(after.updated_at).getTime()).toBeGreaterThan(new Date(before.updated_at).getTime());
    expect(after.message_count).toBe(2);
    // The bump lands with the reply: updated_at is the stored answer's time.
    expect(after.updated_at).toBe((await messagesOf(me))[1]?.created_at as string);
    ws.close();
  });

  test('a message whose reply stores no answer still bumps updated_at', async () => {
    const { me, ws } = await session();
    const conversation = async () =>
      (await api.request('GET', `/api/conversations/${me.conversationId}`, { token: me.access })).body;
    const before = await conversation();
    ws.send({ type: 'chat.message', content: 'fail [stub:status:500]' });
    expect((await ws.reply()).final.code).toBe('AI_ERROR');
    const after = await conversation();
    expect(after.message_count).toBe(1);
    expect(new Date(after.updated_at).getTime()).toBeGreaterThan(new Date(before.updated_at).getTime());
    ws.close();
  });
});

describe('content cleaning (SPEC §6.2), read back through the messages endpoint', () => {
  test.each([
    ...CLEANING_EXAMPLES,
    ["'; DROP TABLE messages; --", "'; DROP TABLE messages; --"],
    ['line one\nline\ttwo\u0007', 'line one\nline\ttwo'],
    // A lone surrogate is stored as U+FFFD, and message.created says so too.
    ['\uD800hi', '\uFFFDhi'],
    ['a\uDC00', 'a\uFFFD'],
  ])('%j is stored as %j', async (input, stored) => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: input });
    const { created } = await ws.reply();
    expect(created?.message.content).toBe(stored);
    expect((await messagesOf(me))[0]?.content).toBe(stored);
    expect(lastRequest()?.messages.at(-1)?.content).toBe(stored);
    ws.close();
  });
});

describe('content errors: the socket stays open and nothing is stored', () => {
  test.each([
    ['missing content', { type: 'chat.message' }, 'EMPTY_CONTENT'],
    ['non-string content', { type: 'chat.message', content: 42 }, 'EMPTY_CONTENT'],
    ['blank content', { type: 'chat.message', content: '  \n\t ' }, 'EMPTY_CONTENT'],
    [
      'content that cleans to nothing',
      { type: 'chat.message', content: '<script>x</script>' },
      'EMPTY_CONTENT',
    ],
    ['content over the limit', { type: 'chat.message', content: 'x'.repeat(51) }, 'MESSAGE_TOO_LONG'],
    [
      'tags counted as received',
      { type: 'chat.message', content: `<b>${'x'.repeat(45)}</b>` },
      'MESSAGE_TOO_LONG',
    ],
  ])('%s → %s', async (_, frame, code) => {
    const { me, ws } = await session();
    ws.send(frame);
    expect(await ws.next()).toMatchObject({ type: 'chat.error', code });
    expect(await messagesOf(me)).toEqual([]);
    ws.send({ type: 'chat.message', content: 'fine' });
    expect((await ws.reply()).final.done).toBe(true);
    ws.close();
  });

  test('counts length in code points: 50 emoji fit, 51 do not', async () => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: '😀'.repeat(51) });
    expect((await ws.next()).code).toBe('MESSAGE_TOO_LONG');
    ws.send({ type: 'chat.message', content: '😀'.repeat(50) });
    expect((await ws.reply()).final.done).toBe(true);
    expect((await messagesOf(me))[0]?.content).toBe('😀'.repeat(50));
    ws.close();
  });
});

describe('ALREADY_PROCESSING', () => {
  test('refuses a second message while a reply streams, from the same socket and from another', async () => {
    const { me, ws } = await session();
    const other = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.send({ type: 'chat.message', content: 'slow one [stub:slow:100]' });
    await ws.next((f) => f.type === 'chat.stream');
    ws.send({ type: 'chat.message', content: 'me again' });
    other.send({ type: 'chat.message', content: 'me too' });
    expect(await ws.next((f) => f.type === 'chat.error')).toMatchObject({ code: 'ALREADY_PROCESSING' });
    // The other socket sees the reply too (SPEC §11); its refusal is its own.
    expect((await other.next((f) => f.type === 'chat.error')).code).toBe('ALREADY_PROCESSING');
    expect(ws.frames.filter((f) => f.type === 'chat.error')).toHaveLength(1);
    const { final } = await ws.reply();
    expect(final.done).toBe(true);
    expect((await messagesOf(me)).map((m) => m.role)).toEqual(['user', 'assistant']);
    // The lock was released before `done`: the next message is accepted at once.
    other.send({ type: 'chat.message', content: 'now it is my turn' });
    expect((await other.reply()).final.done).toBe(true);
    ws.close();
    other.close();
  });

  test('does not block other conversations of the same user', async () => {
    const { me, ws } = await session();
    const second = (await api.request('POST', '/api/conversations/', { token: me.access, body: {} })).body.id;
    const ws2 = await connectAuthenticated(server.wsUrl, second, me.access);
    ws.send({ type: 'chat.message', content: 'slow [stub:slow:50]' });
    ws2.send({ type: 'chat.message', content: 'parallel' });
    expect((await ws2.reply()).final.done).toBe(true);
    expect((await ws.reply()).final.done).toBe(true);
    ws.close();
    ws2.close();
  });
});

describe('the conversation is deleted while a socket is open', () => {
  test('the next message gets NO_CONVERSATION and close 4004, and the server keeps serving', async () => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: 'before the delete' });
    expect((await ws.reply()).final.done).toBe(true);
    const deleted = await api.request('DELETE', `/api/conversations/${me.conversationId}`, {
      token: me.access,
    });
    expect(deleted.status).toBe(204);
    ws.send({ type: 'chat.message', content: 'after the delete' });
    expect(await ws.next()).toEqual({
      type: 'chat.error',
      code: 'NO_CONVERSATION',
      error: expect.any(String),
    });
    expect((await ws.closed).code).toBe(4004);
    const other = await session();
    other.ws.send({ type: 'chat.message', content: 'still here?' });
    expect((await other.ws.reply()).final.done).toBe(true);
    other.ws.close();
  });
});

describe('provider failures', () => {
  test.each([
    ['HTTP 500', '[stub:status:500]'],
    ['HTTP 429', '[stub:status:429]'],
    ['HTTP 401 (bad key)', '[stub:status:401]'],
  ])('%s → AI_ERROR; the user message stays, no assistant message, next message works', async (_, marker) => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: `please ${marker}` });
    const { deltas, final, created, start } = await ws.reply();
    expect(deltas).toEqual([]);
    expect(final).toMatchObject({ type: 'chat.error', code: 'AI_ERROR', error: expect.any(String) });
    // The user message was stored and announced; the answer it began never came.
    expect(created?.message).toMatchObject({ role: 'user', content: `please ${marker}` });
    expect(start?.parent_id).toBe(created?.message.id);
    expect((await messagesOf(me)).map((m) => m.role)).toEqual(['user']);
    ws.send({ type: 'chat.message', content: 'again' });
    expect((await ws.reply()).final.done).toBe(true);
    ws.close();
  });

  test.each([
    ['a connection dropped mid-stream', '[stub:drop]', 'Hello,'],
    ['garbage in the stream', '[stub:garbage]', 'Hello'],
    ['an error field in the stream', '[stub:error]', 'Hello'],
    ['an SSE error event', '[stub:errorevent]', 'Hello'],
    ['a stream that ends without its final chunk', '[stub:nofinal]', DEFAULT_TOKENS.join('')],
  ])('%s → AI_ERROR with the partial answer stored as failed', async (_, marker, partial) => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: `go ${marker}` });
    const { deltas, final } = marker === '[stub:drop]' ? await cutAfter(ws, partial) : await ws.reply();
    expect(final).toMatchObject({ type: 'chat.error', code: 'AI_ERROR' });
    expect(deltas.join('')).toBe(partial);
    const stored = await messagesOf(me);
    expect(stored.map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'failed'],
    ]);
    expect(stored[1]?.content).toBe(partial);
    ws.send({ type: 'chat.message', content: 'recovered?' });
    expect((await ws.reply()).final.done).toBe(true);
    ws.close();
  });

  test('an answer that goes on past AI_MAX_ANSWER_CHARS is cut off: the provider aborted, AI_ERROR, stored failed', async () => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: 'never stops [stub:long:100000]' });
    const { deltas, final } = await ws.reply();
    expect(final).toEqual({
      type: 'chat.error',
      code: 'AI_ERROR',
      error: 'The answer grew too long and was cut off.',
    });
    const text = deltas.join('');
    // Cut at the first read that reached the limit: far short of the 100,000 tokens sent.
    expect(text.length).toBeGreaterThanOrEqual(200);
    expect(text.length).toBeLessThan(100_000);
    const stored = await messagesOf(me);
    expect(stored.map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'failed'],
    ]);
    expect(stored[1]?.content).toBe(text);
    await until(() => lastRequest()?.aborted === true, 'the provider request aborted');
    ws.send({ type: 'chat.message', content: 'short again' });
    expect((await ws.reply()).final.done).toBe(true);
    ws.close();
  });

  test('a provider that refuses connections → AI_ERROR', async () => {
    const dead = await startServer({ OPENAI_BASE_URL: 'http://127.0.0.1:1/v1' });
    try {
      const client = createClient(dead.url);
      const me = await client.signUp();
      const ws = await connectAuthenticated(dead.wsUrl, me.conversationId, me.access);
      ws.send({ type: 'chat.message', content: 'hello?' });
      expect((await ws.reply()).final.code).toBe('AI_ERROR');
      ws.close();
    } finally {
      await dead.stop();
    }
  });
});

describe('the AI timeout (AI_TIMEOUT_SECONDS=1)', () => {
  let timing: TestServer;
  beforeAll(async () => {
    timing = await startServer({ AI_TIMEOUT_SECONDS: '1' });
  });
  afterAll(() => timing.stop());

  const timeoutSession = async () => {
    const me = await createClient(timing.url).signUp();
    const ws = await connectAuthenticated(timing.wsUrl, me.conversationId, me.access);
    return { me, ws };
  };

  test('a stall of this process longer than AI_TIMEOUT_SECONDS is not the provider going silent', async () => {
    const { me, ws } = await timeoutSession();
    ws.send({ type: 'chat.message', content: 'keep going [stub:slow:50]' });
    await ws.next((f) => f.type === 'chat.stream');
    // The whole process stops for 2.5 s (server, provider stub and client alike), as in
    // a long garbage collection or on a starved machine; the AI timeout here is 1 s.
    const stalledUntil = Date.now() + 2500;
    while (Date.now() < stalledUntil) {}
    const { final } = await ws.reply();
    expect(final).toMatchObject({ type: 'chat.stream', done: true });
    expect((await messagesOf(me, timing.url)).map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
    ws.close();
  });

  test('a provider silent after the first token → AI_TIMEOUT with the partial stored as failed', async () => {
    const { me, ws } = await timeoutSession();
    ws.send({ type: 'chat.message', content: 'wait [stub:stall]' });
    const { deltas, final } = await ws.reply(5000);
    expect(final).toMatchObject({ code: 'AI_TIMEOUT' });
    expect(deltas).toEqual(['Hello']);
    const stored = await messagesOf(me, timing.url);
    expect(stored.map((m) => [m.role, m.content, m.status])).toEqual([
      ['user', 'wait [stub:stall]', 'complete'],
      ['assistant', 'Hello', 'failed'],
    ]);
    await Bun.sleep(50);
    expect(timing.stub.requests.at(-1)?.aborted).toBe(true);
    ws.send({ type: 'chat.message', content: 'next' });
    expect((await ws.reply()).final.done).toBe(true);
    ws.close();
  });

  test('a provider that never sends a token → AI_TIMEOUT and no assistant message', async () => {
    const { me, ws } = await timeoutSession();
    ws.send({ type: 'chat.message', content: 'anyone? [stub:silent]' });
    expect((await ws.reply(5000)).final.code).toBe('AI_TIMEOUT');
    expect((await messagesOf(me, timing.url)).map((m) => m.role)).toEqual(['user']);
    ws.close();
  });
});

describe('the sender disconnects mid-stream (SPEC §11)', () => {
  test('by default the reply goes on and is stored complete; the lock is released at its end', async () => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.message', content: 'long answer [stub:slow:50]' });
    await ws.next((f) => f.type === 'chat.stream');
    const request = lastRequest();
    ws.close();
    await until(() => request?.finished === true, 'the provider finished');
    expect(request?.aborted).toBe(false);
    await until(async () => (await messagesOf(me)).length === 2, 'the answer stored');
    const stored = await messagesOf(me);
    expect(stored.map((m) => [m.role, m.status, m.content])).toEqual([
      ['user', 'complete', 'long answer [stub:slow:50]'],
      ['assistant', 'complete', DEFAULT_TOKENS.join('')],
    ]);
    const again = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    again.send({ type: 'chat.message', content: 'back' });
    expect((await again.reply()).final.done).toBe(true);
    again.close();
  });

  test('with CHAT_STOP_ON_DISCONNECT=true the upstream request is aborted and the partial answer stored as interrupted', async () => {
    const strict = await startServer({ CHAT_STOP_ON_DISCONNECT: 'true' });
    try {
      const client = createClient(strict.url);
      const me = await client.signUp();
      const ws = await connectAuthenticated(strict.wsUrl, me.conversationId, me.access);
      ws.send({ type: 'chat.message', content: 'long answer [stub:slow:50]' });
      await ws.next((f) => f.type === 'chat.stream');
      await ws.next((f) => f.type === 'chat.stream');
      const request = strict.stub.requests.at(-1);
      ws.close();
      await until(() => request?.aborted === true, 'the provider request aborted');
      expect(request?.finished).toBe(false);
      const messages = async () =>
        (
          await client.request('GET', `/api/conversations/${me.conversationId}/messages`, {
            token: me.access,
          })
        ).body.items as { role: string; status: string; content: string }[];
      await until(async () => (await messages()).length === 2, 'the partial answer stored');
      const stored = await messages();
      expect(stored.map((m) => [m.role, m.status])).toEqual([
        ['user', 'complete'],
        ['assistant', 'interrupted'],
      ]);
      expect(DEFAULT_TOKENS.join('')).toStartWith(stored[1]?.content ?? 'x');
      expect(stored[1]?.content.length).toBeGreaterThan(0);
      // The lock went with the reply: a new socket can chat at once.
      const again = await connectAuthenticated(strict.wsUrl, me.conversationId, me.access);
      again.send({ type: 'chat.message', content: 'back' });
      expect((await again.reply()).final.done).toBe(true);

      // A sender gone before its reply even began stops it too: no answer, no provider
      // request left running. A second tab watches.
      const watcher = await connectAuthenticated(strict.wsUrl, me.conversationId, me.access);
      const quick = await connectAuthenticated(strict.wsUrl, me.conversationId, me.access);
      quick.send({ type: 'chat.message', content: 'gone at once [stub:slow:50]' });
      quick.close();
      expect((await watcher.reply()).final).toMatchObject({
        done: true,
        message_id: null,
        status: 'interrupted',
      });
      const gone = strict.stub.requests.filter(
        (r) => r.messages.at(-1)?.content === 'gone at once [stub:slow:50]',
      );
      expect(gone.every((r) => !r.finished)).toBe(true);
      expect((await messages()).map((m) => [m.role, m.content]).slice(-1)).toEqual([
        ['user', 'gone at once [stub:slow:50]'],
      ]);
      again.close();
      watcher.close();
    } finally {
      await strict.stop();
    }
  });
});
