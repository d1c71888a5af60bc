import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { DefaultChatTransport, readUIMessageStream, type UIMessage } from 'ai';
import { createApp, createServices } from '../../../src/app';
import { type Client, createClient, STRONG_PASSWORD } from '../../support/client';
import { type Instance, startInstances } from '../../support/instances';
import { DEFAULT_TOKENS, DRIP_ANSWER, drip } from '../../support/openai-stub';
import { startServer } from '../../support/server';
import { until } from '../../support/wait';
import { connect, connectAuthenticated, type WsClient } from '../../support/ws';

/**
 * SPEC §11: a reply belongs to its conversation. Every socket of the conversation,
 * on either of two instances (two processes on PostgreSQL + Redis, two apps sharing
 * the in-process store otherwise), sees it; any of them can stop it; a socket that
 * arrives mid-reply resumes it.
 */

let pair: Awaited<ReturnType<typeof startInstances>>;
let a: Instance;
let b: Instance;
let api: Client;

beforeAll(async () => {
  pair = await startInstances({ CHAT_RATE_LIMIT: '1000', AI_MODELS: 'gpt-4o-mini,second-model' });
  [a, b] = pair.instances;
  api = createClient(a.url);
});
afterAll(() => pair.stop());

type Me = Awaited<ReturnType<Client['signUp']>>;

const messagesOf = async (me: Me) =>
  (
    await api.request('GET', `/api/conversations/${me.conversationId}/messages?limit=100`, {
      token: me.access,
    })
  ).body.items as { id: string; role: string; status: string; content: string }[];

/** A user with sockets on their conversation: `where` lists the instance of each. */
const sockets = async (where: Instance[]) => {
  const me = await api.signUp();
  const all: WsClient[] = [];
  for (const instance of where)
    all.push(await connectAuthenticated(instance.wsUrl, me.conversationId, me.access));
  return { me, all };
};

describe('the frames of a reply', () => {
  test('the sender gets message.created, chat.start, the deltas and done, with the ids of what was stored', async () => {
    const { me, all } = await sockets([a]);
    const [ws] = all as [WsClient];
    ws.send({ type: 'chat.message', content: 'hello' });
    const { created, start, deltas, final } = await ws.reply();
    const stored = await messagesOf(me);
    expect(created).toEqual({
      type: 'message.created',
      message: {
        id: stored[0]?.id,
        role: 'user',
        content: 'hello',
        status: 'complete',
        created_at: expect.any(String),
        prompt_tokens: 0,
        completion_tokens: 0,
        parent_id: null,
        sibling_ids: [stored[0]?.id],
        feedback: null,
      },
    });
    expect(start).toEqual({ type: 'chat.start', message_id: stored[1]?.id, parent_id: stored[0]?.id });
    expect(deltas).toEqual(DEFAULT_TOKENS);
    expect(final).toEqual({ type: 'chat.stream', content: '', done: true, message_id: stored[1]?.id });
    // In this order, nothing in between.
    expect(ws.frames.map((f) => f.type)).toEqual([
      'auth.success',
      'message.created',
      'chat.start',
      ...DEFAULT_TOKENS.map(() => 'chat.stream'),
      'chat.stream',
    ]);
    ws.close();
  });

  test('a second tab on the other instance and a third on the same one get the same frames', async () => {
    const { me, all } = await sockets([a, b, a]);
    const [sender, otherInstance, sameInstance] = all as [WsClient, WsClient, WsClient];
    sender.send({ type: 'chat.message', content: drip('fan out') });
    const seen = await Promise.all(all.map((ws) => ws.reply()));
    for (const { created, start, deltas, final } of seen.slice(1)) {
      expect(created).toEqual(seen[0]?.created as object);
      expect(start).toEqual(seen[0]?.start as object);
      expect(deltas.join('')).toBe(DRIP_ANSWER);
      expect(final).toEqual(seen[0]?.final as object);
    }
    expect((await messagesOf(me)).map((m) => m.content)).toEqual([drip('fan out'), DRIP_ANSWER]);
    // A refusal goes to its sender alone.
    sameInstance.send({ type: 'chat.message', content: '' });
    expect((await sameInstance.next()).code).toBe('EMPTY_CONTENT');
    await Bun.sleep(200);
    for (const ws of [sender, otherInstance])
      expect(ws.frames.some((f) => f.type === 'chat.error')).toBe(false);
    for (const ws of all) ws.close();
  });
  test('an answer over before the other instance could ask for its text still reaches it whole', async () => {
    const { all } = await sockets([a, b]);
    for (let i = 0; i < 5; i++) {
      all[0]?.send({ type: 'chat.message', content: `all at once ${i} [stub:burst]` });
      const [here, there] = await Promise.all(all.map((ws) => ws.reply()));
      expect(there?.start).toEqual(here?.start as object);
      expect(there?.deltas.join('')).toBe(DEFAULT_TOKENS.join(''));
      expect(there?.final).toEqual(here?.final as object);
    }
    for (const ws of all) ws.close();
  });
});

describe('stop', () => {
  const stoppedFrame = (id: string | null) => ({
    type: 'chat.stream',
    content: '',
    done: true,
    message_id: id,
    status: 'interrupted',
  });

  test.each([
    ['the sender', 0],
    ['a socket on the other instance', 1],
  ])(
    'chat.stop from %s: the provider sees an abort within a second, the partial answer is stored interrupted, every socket gets the stopped frame',
    async (_, from) => {
      const { me, all } = await sockets([a, b]);
      const content = drip(`stop me ${from}`);
      all[0]?.send({ type: 'chat.message', content });
      for (const ws of all) await ws.next((f) => f.type === 'chat.stream');
      const request = pair.stub.requestsFor(content)[0];
      const stoppedAt = performance.now();
      all[from]?.send({ type: 'chat.stop' });
      await until(() => request?.aborted === true, 'the provider request aborted', 1000);
      expect(performance.now() - stoppedAt).toBeLessThan(1000);
      const ends = await Promise.all(all.map((ws) => ws.reply()));
      const stored = await messagesOf(me);
      expect(stored.map((m) => [m.role, m.status])).toEqual([
        ['user', 'complete'],
        ['assistant', 'interrupted'],
      ]);
      expect(DRIP_ANSWER.startsWith(stored[1]?.content ?? 'x')).toBe(true);
      expect(stored[1]?.content.length).toBeLessThan(DRIP_ANSWER.length);
      for (const end of ends) expect(end.final).toEqual(stoppedFrame(stored[1]?.id ?? 'x'));
      // The lock was released: the next message is admitted at once, from either side.
      all[1]?.send({ type: 'chat.message', content: 'next' });
      expect((await all[1]?.reply())?.final.done).toBe(true);
      for (const ws of all) ws.close();
    },
  );

  test('POST /api/conversations/{id}/stop through the other instance stops it; nothing streaming is false; others get 404', async () => {
    const { me, all } = await sockets([a]);
    const apiB = createClient(b.url);
    const path = `/api/conversations/${me.conversationId}/stop`;
    expect((await apiB.request('POST', path, { token: me.access })).body).toEqual({ stopped: false });
    expect((await apiB.request('POST', `${path}/`, { token: me.access })).body).toEqual({ stopped: false });
    const content = drip('stop over REST');
    all[0]?.send({ type: 'chat.message', content });
    await all[0]?.next((f) => f.type === 'chat.stream');
    const res = await apiB.request('POST', path, { token: me.access });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ stopped: true });
    await until(() => pair.stub.requestsFor(content)[0]?.aborted === true, 'aborted', 1000);
    expect((await all[0]?.reply())?.final.status).toBe('interrupted');
    const stranger = await apiB.signUp();
    const foreign = await apiB.request('POST', path, { token: stranger.access });
    expect(foreign.status).toBe(404);
    expect((await apiB.request('POST', path)).status).toBe(401);
    expect(
      (await apiB.request('POST', '/api/conversations/not-a-uuid/stop', { token: me.access })).status,
    ).toBe(422);
    all[0]?.close();
  });

  test('the conversation id in capitals names the same conversation: one room, one lock, one stop', async () => {
    const { me, all } = await sockets([a]);
    const upper = me.conversationId.toUpperCase();
    const shouting = await connectAuthenticated(b.wsUrl, upper, me.access);
    expect(shouting.frames[0]).toEqual({ type: 'auth.success', conversation_id: me.conversationId });
    const content = drip('one conversation, any case');
    all[0]?.send({ type: 'chat.message', content });
    // The socket on the capitalised path follows the reply and is refused a second one.
    await shouting.next((f) => f.type === 'chat.stream');
    shouting.send({ type: 'chat.message', content: 'a second reply at once?' });
    expect((await shouting.next((f) => f.type === 'chat.error')).code).toBe('ALREADY_PROCESSING');
    const res = await createClient(b.url).request('POST', `/api/conversations/${upper}/stop`, {
      token: me.access,
    });
    expect(res.body).toEqual({ stopped: true });
    for (const ws of [all[0], shouting]) expect((await ws?.reply())?.final.status).toBe('interrupted');
    expect(pair.stub.requestsFor('a second reply at once?')).toHaveLength(0);
    all[0]?.close();
    shouting.close();
  });

  test('a stop before the first token stores no answer and ends with message_id null', async () => {
    const { me, all } = await sockets([a, b]);
    const content = 'never mind [stub:silent]';
    all[0]?.send({ type: 'chat.message', content });
    for (const ws of all) await ws.next((f) => f.type === 'chat.start');
    all[1]?.send({ type: 'chat.stop' });
    for (const ws of all) expect((await ws.reply()).final).toEqual(stoppedFrame(null));
    expect((await messagesOf(me)).map((m) => m.role)).toEqual(['user']);
    for (const ws of all) ws.close();
  });

  test('chat.stop sent right behind its message, before the reply began, stops it as it begins', async () => {
    const { me, all } = await sockets([a, b]);
    const content = drip('stop at once');
    all[0]?.send({ type: 'chat.message', content });
    all[0]?.send({ type: 'chat.stop' });
    for (const ws of all) {
      const { created, final } = await ws.reply();
      expect(created?.message.content).toBe(content);
      expect(final).toEqual(stoppedFrame(null));
    }
    await until(() => pair.stub.requestsFor(content).every((r) => r.aborted || r.finished), 'request over');
    expect(pair.stub.requestsFor(content).every((r) => !r.finished)).toBe(true);
    expect((await messagesOf(me)).map((m) => m.role)).toEqual(['user']);
    // The stop was spent on that reply: the next one runs to its end.
    all[1]?.send({ type: 'chat.message', content: 'and this one?' });
    expect((await all[1]?.reply())?.final).toMatchObject({ done: true, message_id: expect.any(String) });
    expect(all[1]?.frames.at(-1)?.status).toBeUndefined();
    for (const ws of all) ws.close();
  });

  test('chat.stop when nothing streams is ignored: no frame', async () => {
    const { all } = await sockets([a]);
    all[0]?.send({ type: 'chat.stop' });
    all[0]?.send({ type: 'pong' });
    await Bun.sleep(300);
    expect(all[0]?.frames.map((f) => f.type)).toEqual(['auth.success']);
    all[0]?.close();
  });
});

describe('resume', () => {
  /** Joins mid-reply and reads it to its end: the text it shows. */
  const join = async (instance: Instance, me: Me) => {
    const ws = await connectAuthenticated(instance.wsUrl, me.conversationId, me.access);
    const resume = await ws.next((f) => f.type !== 'ping');
    expect(resume.type).toBe('chat.resume');
    const { deltas, final } = await ws.reply();
    return { ws, resume, text: resume.content + deltas.join(''), final };
  };

  test.each([
    ['the same instance', 0],
    ['the other instance', 1],
  ])(
    'a socket joining mid-reply on %s gets chat.resume, then the rest: together the stored answer',
    async (_, i) => {
      const { me, all } = await sockets([a]);
      all[0]?.send({ type: 'chat.message', content: drip(`resume ${i}`) });
      const start = await all[0]?.next((f) => f.type === 'chat.start');
      for (let n = 0; n < 5; n++) await all[0]?.next((f) => f.type === 'chat.stream');
      const late = await join(pair.instances[i] as Instance, me);
      expect(late.resume).toMatchObject({ message_id: start?.message_id, parent_id: start?.parent_id });
      expect(late.resume.content.length).toBeGreaterThan(0);
      expect(late.text).toBe(DRIP_ANSWER);
      expect(late.final).toEqual((await all[0]?.reply())?.final as object);
      expect((await messagesOf(me))[1]?.content).toBe(late.text);
      late.ws.close();
      all[0]?.close();
    },
  );

  test('under load: a socket joins each of 16 replies at a random moment on a random instance; every text equals the stored answer', async () => {
    const users = await Promise.all(Array.from({ length: 16 }, () => sockets([a])));
    const results = await Promise.all(
      users.map(async ({ me, all }, i) => {
        all[0]?.send({ type: 'chat.message', content: drip(`load ${i}`) });
        await all[0]?.next((f) => f.type === 'chat.start');
        await Bun.sleep(Math.random() * 700);
        const instance = Math.random() < 0.5 ? a : b;
        const ws = await connectAuthenticated(instance.wsUrl, me.conversationId, me.access);
        // Joined before the end: resume, then the rest. After it: nothing at all.
        const first = await ws.next((f) => f.type !== 'ping', 1500).catch(() => undefined);
        const text = first ? first.content + (await ws.reply()).deltas.join('') : undefined;
        await all[0]?.reply();
        const stored = (await messagesOf(me))[1]?.content;
        ws.close();
        all[0]?.close();
        return { text, stored, first: first?.type ?? 'nothing' };
      }),
    );
    for (const { text, stored, first } of results) {
      expect(stored).toBe(DRIP_ANSWER);
      expect(['chat.resume', 'nothing']).toContain(first);
      if (first === 'chat.resume') expect(text).toBe(stored);
    }
    // The random moments fell mid-reply for most of them (each reply lasts ~1 s).
    expect(results.filter((r) => r.first === 'chat.resume').length).toBeGreaterThan(8);
  }, 30_000);

  test('nothing is sent when no reply streams', async () => {
    const { me } = await sockets([]);
    const ws = await connect(`${b.wsUrl}/ws/chat/${me.conversationId}/`);
    ws.send({ type: 'auth', token: me.access });
    expect((await ws.next()).type).toBe('auth.success');
    await Bun.sleep(300);
    expect(ws.frames.map((f) => f.type)).toEqual(['auth.success']);
    ws.close();
  });
});

describe('an instance that starts while a reply streams', () => {
  test('learns of it: a socket joining there resumes it, and the text is the stored answer', async () => {
    const server = await startServer({ CHAT_RATE_LIMIT: '1000' });
    const late = {
      app: undefined as ReturnType<typeof createApp> | undefined,
      services: createServices(server.resources),
    };
    try {
      const me = await createClient(server.url).signUp();
      const sender = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
      sender.send({ type: 'chat.message', content: drip('before the peer') });
      for (let n = 0; n < 5; n++) await sender.next((f) => f.type === 'chat.stream');
      // A second instance on the same database and store comes up now, mid-reply.
      await late.services.ready;
      late.app = createApp(server.resources, late.services).listen({ port: 0, hostname: '127.0.0.1' });
      const wsUrl = `ws://127.0.0.1:${late.app.server?.port}`;
      let ws: WsClient | undefined;
      await until(async () => {
        ws?.close();
        ws = await connectAuthenticated(wsUrl, me.conversationId, me.access);
        return (await ws.next((f) => f.type !== 'ping', 300).catch(() => undefined))?.type === 'chat.resume';
      }, 'the late instance learnt of the reply');
      const resumed = ws?.frames.find((f) => f.type === 'chat.resume');
      const rest = await (ws as WsClient).reply();
      expect(resumed?.content + rest.deltas.join('')).toBe(DRIP_ANSWER);
      expect((await sender.reply()).final).toEqual(rest.final);
      ws?.close();
      sender.close();
    } finally {
      await late.services.shutdown(0);
      await late.app?.stop(true);
      await server.stop();
    }
  });
});

describe('conversation changes across instances (SPEC §12)', () => {
  test('a PATCH through the other instance reaches this one’s sockets, and its next reply uses the new settings', async () => {
    const { me, all } = await sockets([a]);
    const [ws] = all as [WsClient];
    ws.send({ type: 'chat.message', content: 'before the change on b' });
    await ws.reply();
    const viaB = createClient(b.url);
    const res = await viaB.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { model: 'second-model', system_prompt: 'Set on b.' },
    });
    expect(res.status).toBe(200);
    expect(await ws.next((f) => f.type === 'conversation.updated')).toEqual({
      type: 'conversation.updated',
      conversation: res.body,
    });
    ws.send({ type: 'chat.message', content: 'after the change on b' });
    await ws.reply();
    const request = pair.stub.requests.findLast(
      (r) => r.messages.at(-1)?.content === 'after the change on b',
    );
    expect(request?.model).toBe('second-model');
    expect(request?.messages.map((m) => m.content)).toEqual([
      'Set on b.',
      'before the change on b',
      DEFAULT_TOKENS.join(''),
      'after the change on b',
    ]);
    ws.close();
  });

  test('a branch switch through the other instance is 409 while a reply streams here, and works once it ends', async () => {
    const { me, all } = await sockets([a]);
    const [ws] = all as [WsClient];
    ws.send({ type: 'chat.message', content: 'first' });
    const { created, final } = await ws.reply();
    // A second branch beside the first, streaming.
    ws.send({ type: 'chat.edit', message_id: created?.message.id, content: drip('edited') });
    await ws.next((f) => f.type === 'chat.start');
    const viaB = createClient(b.url);
    const switchTo = () =>
      viaB.request('PATCH', `/api/conversations/${me.conversationId}`, {
        token: me.access,
        body: { current_message_id: created?.message.id },
      });
    const busy = await switchTo();
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe('reply_in_progress');
    await ws.reply();
    expect((await messagesOf(me))[0]?.content).toBe(drip('edited'));
    const done = await switchTo();
    expect(done.status).toBe(200);
    expect(done.body.current_message_id).toBe(final.message_id);
    // The next message here follows the branch switched to on b, not the one this instance remembers.
    ws.send({ type: 'chat.message', content: 'after the switch on b' });
    await ws.reply();
    const request = pair.stub.requests.findLast(
      (r) => r.messages.at(-1)?.content === 'after the switch on b',
    );
    expect(request?.messages.slice(1).map((m) => m.content)).toEqual([
      'first',
      DEFAULT_TOKENS.join(''),
      'after the switch on b',
    ]);
    ws.close();
  });

  test('a user deleted through the other instance mid-reply: their sockets here close with 4001, their reply here stops', async () => {
    const { me, all } = await sockets([a]);
    const [ws] = all as [WsClient];
    const content = drip('delete my account mid-reply', 100);
    ws.send({ type: 'chat.message', content });
    await ws.next((f) => f.type === 'chat.stream');
    const viaB = createClient(b.url);
    const res = await viaB.request('DELETE', '/api/auth/me', {
      token: me.access,
      body: { password: STRONG_PASSWORD },
    });
    expect(res.status).toBe(204);
    expect((await ws.closed).code).toBe(4001);
    await until(() => pair.stub.requestsFor(content)[0]?.aborted === true, 'aborted', 3000);
  });

  test('a conversation deleted through the other instance mid-reply: the provider request is aborted, every socket gets NO_CONVERSATION and 4004', async () => {
    const { me, all } = await sockets([a, b]);
    const content = drip('delete me mid-reply', 100);
    all[0]?.send({ type: 'chat.message', content });
    for (const ws of all) await ws.next((f) => f.type === 'chat.stream');
    const res = await createClient(b.url).request('DELETE', `/api/conversations/${me.conversationId}`, {
      token: me.access,
    });
    expect(res.status).toBe(204);
    await until(() => pair.stub.requestsFor(content)[0]?.aborted === true, 'aborted', 3000);
    for (const ws of all) {
      expect((await ws.closed).code).toBe(4004);
      expect(ws.frames.at(-1)).toMatchObject({ type: 'chat.error', code: 'NO_CONVERSATION' });
      expect(ws.frames.some((f) => f.done === true)).toBe(false);
    }
    const left = await api.request('GET', `/api/conversations/${me.conversationId}`, { token: me.access });
    expect(left.status).toBe(404);
  });
});

describe('the AI SDK endpoint across instances (SPEC §14)', () => {
  const transport = (instance: Instance, me: Me) =>
    new DefaultChatTransport<UIMessage>({
      api: `${instance.url}/api/chat`,
      headers: { authorization: `Bearer ${me.access}` },
    });
  const textOf = async (stream: ReadableStream<import('ai').UIMessageChunk>) => {
    let last: UIMessage | undefined;
    for await (const message of readUIMessageStream({ stream })) last = message;
    return { text: last?.parts.map((p) => (p.type === 'text' ? p.text : '')).join('') ?? '', last };
  };

  test('sent through one instance, resumed through the other: the whole answer, and a socket there sees it too', async () => {
    const me = await api.signUp();
    const watcher = await connectAuthenticated(b.wsUrl, me.conversationId, me.access);
    const sending = transport(a, me).sendMessages({
      chatId: me.conversationId,
      messages: [{ id: 'q', role: 'user', parts: [{ type: 'text', text: drip('across') }] }],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: undefined,
    });
    const sent = textOf(await sending);
    await watcher.next((frame) => frame.type === 'chat.stream');
    const resumed = await transport(b, me).reconnectToStream({ chatId: me.conversationId });
    expect(resumed).not.toBeNull();
    const [original, again] = await Promise.all([
      sent,
      textOf(resumed as ReadableStream<import('ai').UIMessageChunk>),
    ]);
    expect(original.text).toBe(DRIP_ANSWER);
    expect(again.text).toBe(DRIP_ANSWER);
    expect(again.last?.id).toBe(original.last?.id as string);
    const { deltas } = await watcher.reply();
    expect(DRIP_ANSWER.endsWith(deltas.join(''))).toBe(true);
    watcher.close();
  });

  test('stopped through the other instance: the stream ends with an interrupted finish', async () => {
    const me = await api.signUp();
    const stream = await transport(a, me).sendMessages({
      chatId: me.conversationId,
      messages: [{ id: 'q', role: 'user', parts: [{ type: 'text', text: drip('stop across') }] }],
      trigger: 'submit-message',
      messageId: undefined,
      abortSignal: undefined,
    });
    const reading = textOf(stream);
    await until(async () => (await messagesOf(me)).length === 1, 'the question stored');
    await Bun.sleep(100);
    const stopped = await createClient(b.url).request(
      'POST',
      `/api/conversations/${me.conversationId}/stop`,
      {
        token: me.access,
      },
    );
    expect(stopped.body).toEqual({ stopped: true });
    const { last, text } = await reading;
    expect(last?.metadata).toEqual({ status: 'interrupted' });
    expect(text.length).toBeLessThan(DRIP_ANSWER.length);
    await until(async () => (await messagesOf(me))[1]?.status === 'interrupted', 'stored interrupted');
  });
});
