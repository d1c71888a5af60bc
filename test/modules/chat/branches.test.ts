import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Client, createClient } from '../../support/client';
import { DEFAULT_TOKENS } from '../../support/openai-stub';
import { startServer, type TestServer } from '../../support/server';
import { connectAuthenticated, type WsClient } from '../../support/ws';

/**
 * SPEC §12, branches: messages form a tree, a conversation has a current branch, and
 * chat.regenerate / chat.edit / PATCH current_message_id move it. The model always sees
 * exactly the branch it answers: read back from what the provider stub received.
 */

const FAILING = '[stub:status:500]';
const SILENT = '[stub:silent]';
let server: TestServer;
let api: Client;

beforeAll(async () => {
  server = await startServer({
    CHAT_RATE_LIMIT: '1000',
    CHAT_MAX_MESSAGE_LENGTH: '100',
    AI_SYSTEM_PROMPT: 'You are the branch test.',
    AI_MODELS: `gpt-4o-mini,other-model,${FAILING},${SILENT}`,
  });
  api = createClient(server.url);
});
afterAll(() => server.stop());

type Me = Awaited<ReturnType<Client['signUp']>>;
const ANSWER = DEFAULT_TOKENS.join('');

interface StoredMessage {
  id: string;
  role: 'user' | 'assistant';
  content: string;
  status: string;
  parent_id: string | null;
  sibling_ids: string[];
}

const branchOf = async (me: Me) =>
  (
    await api.request('GET', `/api/conversations/${me.conversationId}/messages?limit=100`, {
      token: me.access,
    })
  ).body as { items: StoredMessage[]; count: number };

const conversationOf = async (me: Me) =>
  (await api.request('GET', `/api/conversations/${me.conversationId}`, { token: me.access })).body;

/** The turns the provider was sent for the newest request whose question contains `marker`. */
const seenBy = (marker: string) => {
  const request = server.stub.requests.findLast((r) => r.messages.at(-1)?.content.includes(marker));
  if (!request) throw new Error(`no provider request for ${marker}`);
  return request.messages.map((m) => `${m.role}: ${m.content}`);
};

const session = async () => {
  const me = await api.signUp();
  const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
  return { me, ws };
};

/** Sends `content` and waits for its answer; returns the ids of the question and the answer. */
const say = async (ws: WsClient, content: string) => {
  ws.send({ type: 'chat.message', content });
  const { created, final } = await ws.reply();
  return { question: created?.message.id as string, answer: final.message_id as string };
};

/** A user with a second conversation holding an answer: ids that are not this conversation's. */
const foreignAnswer = async (me: Me) => {
  const other = (await api.request('POST', '/api/conversations/', { token: me.access, body: {} })).body.id;
  const ws = await connectAuthenticated(server.wsUrl, other, me.access);
  const ids = await say(ws, 'elsewhere');
  ws.close();
  return ids;
};

describe('chat.message', () => {
  test('follows the current branch: each message has the one before it as parent', async () => {
    const { me, ws } = await session();
    const first = await say(ws, 'one');
    const second = await say(ws, 'two');
    const { items, count } = await branchOf(me);
    expect(count).toBe(4);
    expect(items.map((m) => [m.id, m.parent_id, m.sibling_ids])).toEqual([
      [first.question, null, [first.question]],
      [first.answer, first.question, [first.answer]],
      [second.question, first.answer, [second.question]],
      [second.answer, second.question, [second.answer]],
    ]);
    expect((await conversationOf(me)).current_message_id).toBe(second.answer);
    ws.close();
  });

  test('with no answer stored the branch ends at the question, and the next message follows it', async () => {
    const { me, ws } = await session();
    await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { model: FAILING },
    });
    ws.send({ type: 'chat.message', content: 'fails' });
    expect((await ws.next((f) => f.type === 'chat.error')).code).toBe('AI_ERROR');
    const { items } = await branchOf(me);
    expect(items.map((m) => m.content)).toEqual(['fails']);
    expect((await conversationOf(me)).current_message_id).toBe(items[0]?.id);
    ws.close();
  });
});

describe('chat.regenerate', () => {
  test('a new answer to the same question, a sibling of the old one; the branch moves to it; no message.created', async () => {
    const { me, ws } = await session();
    const asked = await say(ws, 'regenerate me');
    const before = ws.frames.length;
    ws.send({ type: 'chat.regenerate' });
    const { created, start, deltas, final } = await ws.reply();
    expect(created).toBeUndefined();
    expect(start).toEqual({ type: 'chat.start', message_id: final.message_id, parent_id: asked.question });
    expect(deltas.join('')).toBe(ANSWER);
    expect(ws.frames.slice(before).map((f) => f.type)[0]).toBe('chat.start');
    const { items, count } = await branchOf(me);
    expect(count).toBe(2);
    expect(items.map((m) => m.id)).toEqual([asked.question, final.message_id]);
    expect(items[1]?.parent_id).toBe(asked.question);
    expect(items[1]?.sibling_ids).toEqual([asked.answer, final.message_id]);
    // The model saw the question, not the answer it replaces.
    expect(seenBy('regenerate me')).toEqual(['system: You are the branch test.', 'user: regenerate me']);
    expect((await conversationOf(me)).message_count).toBe(3);
    ws.close();
  });

  test('message_id names an earlier answer: the model sees only the branch up to its question', async () => {
    const { me, ws } = await session();
    const first = await say(ws, 'first question');
    await say(ws, 'second question');
    ws.send({ type: 'chat.regenerate', message_id: first.answer });
    const { final } = await ws.reply();
    expect(final.done).toBe(true);
    expect(seenBy('first question')).toEqual(['system: You are the branch test.', 'user: first question']);
    const { items } = await branchOf(me);
    expect(items.map((m) => m.id)).toEqual([first.question, final.message_id]);
    expect(items[1]?.sibling_ids).toEqual([first.answer, final.message_id]);
    ws.close();
  });

  test('a question whose answer failed is answered', async () => {
    const { me, ws } = await session();
    await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { model: FAILING },
    });
    ws.send({ type: 'chat.message', content: 'answer me later' });
    await ws.next((f) => f.type === 'chat.error');
    await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { model: null },
    });
    await ws.next((f) => f.type === 'conversation.updated' && f.conversation.model === null);
    ws.send({ type: 'chat.regenerate' });
    const { start, final } = await ws.reply();
    const { items } = await branchOf(me);
    expect(start?.parent_id).toBe(items[0]?.id);
    expect(items.map((m) => [m.role, m.content])).toEqual([
      ['user', 'answer me later'],
      ['assistant', ANSWER],
    ]);
    expect(items[1]?.id).toBe(final.message_id);
    ws.close();
  });

  test('stopped before its first token: nothing stored, the branch stays at the answer it had', async () => {
    const { me, ws } = await session();
    const asked = await say(ws, 'keep me');
    await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { model: SILENT },
    });
    ws.send({ type: 'chat.regenerate' });
    await ws.next((f) => f.type === 'chat.start');
    ws.send({ type: 'chat.stop' });
    const { final } = await ws.reply();
    expect(final).toEqual({
      type: 'chat.stream',
      content: '',
      done: true,
      message_id: null,
      status: 'interrupted',
    });
    expect((await conversationOf(me)).current_message_id).toBe(asked.answer);
    expect((await branchOf(me)).items.map((m) => m.id)).toEqual([asked.question, asked.answer]);
    ws.close();
  });

  test('MESSAGE_NOT_FOUND for anything but an answer of this conversation; nothing is stored, the socket stays open', async () => {
    const { me, ws } = await session();
    ws.send({ type: 'chat.regenerate' }); // empty conversation
    expect((await ws.next()).code).toBe('MESSAGE_NOT_FOUND');
    const mine = await say(ws, 'only question');
    const elsewhere = await foreignAnswer(me);
    const stranger = await session();
    const theirs = await say(stranger.ws, 'not yours');
    for (const message_id of [
      mine.question, // a user message
      elsewhere.answer, // my other conversation's answer
      theirs.answer, // another user's answer
      crypto.randomUUID(),
      'not-a-uuid',
      '',
      42,
      null,
    ]) {
      ws.send({ type: 'chat.regenerate', message_id });
      const frame = await ws.next();
      expect({ message_id, frame }).toEqual({
        message_id,
        frame: { type: 'chat.error', error: expect.any(String), code: 'MESSAGE_NOT_FOUND' },
      });
    }
    expect((await branchOf(me)).count).toBe(2);
    expect((await conversationOf(me)).message_count).toBe(2);
    // Still open and usable.
    ws.send({ type: 'chat.regenerate', message_id: mine.answer });
    expect((await ws.reply()).final.done).toBe(true);
    ws.close();
    stranger.ws.close();
  });

  test('the lock applies: ALREADY_PROCESSING while a reply streams, to the sender alone', async () => {
    const { ws } = await session();
    await say(ws, 'base');
    ws.send({ type: 'chat.message', content: 'long [stub:drip:30]' });
    await ws.next((f) => f.type === 'chat.start');
    ws.send({ type: 'chat.regenerate' });
    expect((await ws.next((f) => f.type === 'chat.error')).code).toBe('ALREADY_PROCESSING');
    ws.send({ type: 'chat.stop' });
    await ws.next((f) => f.done === true);
    ws.close();
  });
});

describe('chat.edit', () => {
  test('a new user message beside the edited one, answered; the model sees the new branch; the old branch stays', async () => {
    const { me, ws } = await session();
    const first = await say(ws, 'edit base');
    const second = await say(ws, 'to be edited');
    ws.send({ type: 'chat.edit', message_id: second.question, content: '<b>edited</b> question' });
    const { created, start, final } = await ws.reply();
    expect(created?.message).toMatchObject({
      role: 'user',
      content: 'edited question',
      parent_id: first.answer,
      sibling_ids: [second.question, created?.message.id],
      feedback: null,
    });
    expect(start?.parent_id).toBe(created?.message.id);
    expect(seenBy('edited question')).toEqual([
      'system: You are the branch test.',
      'user: edit base',
      `assistant: ${ANSWER}`,
      'user: edited question',
    ]);
    const { items } = await branchOf(me);
    expect(items.map((m) => m.id)).toEqual([
      first.question,
      first.answer,
      created?.message.id,
      final.message_id,
    ]);
    expect((await conversationOf(me)).message_count).toBe(6);
    ws.close();
  });

  test('editing the first message starts a new root: the model sees it alone', async () => {
    const { me, ws } = await session();
    const first = await say(ws, 'root one');
    await say(ws, 'later');
    ws.send({ type: 'chat.edit', message_id: first.question, content: 'root two' });
    const { created } = await ws.reply();
    expect(created?.message.parent_id).toBeNull();
    expect(created?.message.sibling_ids).toEqual([first.question, created?.message.id]);
    expect(seenBy('root two')).toEqual(['system: You are the branch test.', 'user: root two']);
    expect((await branchOf(me)).items.map((m) => m.content)).toEqual(['root two', ANSWER]);
    ws.close();
  });

  test('its content is checked like a message; a bad message_id is MESSAGE_NOT_FOUND; nothing is stored', async () => {
    const { me, ws } = await session();
    const mine = await say(ws, 'check me');
    const elsewhere = await foreignAnswer(me);
    const cases: [unknown, string][] = [
      [{ message_id: mine.question, content: '   ' }, 'EMPTY_CONTENT'],
      [{ message_id: mine.question, content: '<script>x</script>' }, 'EMPTY_CONTENT'],
      [{ message_id: mine.question }, 'EMPTY_CONTENT'],
      [{ message_id: mine.question, content: 'x'.repeat(101) }, 'MESSAGE_TOO_LONG'],
      [{ message_id: mine.answer, content: 'an answer is not edited' }, 'MESSAGE_NOT_FOUND'],
      [{ message_id: elsewhere.question, content: 'another conversation' }, 'MESSAGE_NOT_FOUND'],
      [{ message_id: crypto.randomUUID(), content: 'unknown' }, 'MESSAGE_NOT_FOUND'],
      [{ message_id: 'nope', content: 'malformed' }, 'MESSAGE_NOT_FOUND'],
      [{ content: 'no id' }, 'MESSAGE_NOT_FOUND'],
    ];
    for (const [fields, code] of cases) {
      ws.send({ type: 'chat.edit', ...(fields as object) });
      expect({ fields, code: (await ws.next()).code }).toEqual({ fields, code });
    }
    expect((await conversationOf(me)).message_count).toBe(2);
    ws.close();
  });

  test('before auth it is AUTH_REQUIRED, like chat.message', async () => {
    const me = await api.signUp();
    const { connect } = await import('../../support/ws');
    const ws = await connect(`${server.wsUrl}/ws/chat/${me.conversationId}/`);
    ws.send({ type: 'chat.edit', message_id: crypto.randomUUID(), content: 'x' });
    expect((await ws.next()).code).toBe('AUTH_REQUIRED');
    ws.send({ type: 'chat.regenerate' });
    expect((await ws.next()).code).toBe('AUTH_REQUIRED');
    ws.close();
  });
});

describe('PATCH current_message_id', () => {
  test('switches back to the old branch, ending at its newest message; the next message follows it', async () => {
    const { me, ws } = await session();
    const first = await say(ws, 'switch base');
    const old = await say(ws, 'old branch');
    ws.send({ type: 'chat.edit', message_id: old.question, content: 'new branch' });
    await ws.reply();
    const res = await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { current_message_id: old.question },
    });
    expect(res.status).toBe(200);
    expect(res.body.current_message_id).toBe(old.answer);
    const updated = await ws.next((f) => f.type === 'conversation.updated');
    expect(updated.conversation).toEqual(res.body);
    expect((await branchOf(me)).items.map((m) => m.id)).toEqual([
      first.question,
      first.answer,
      old.question,
      old.answer,
    ]);
    // The next message follows the old branch, and the model sees it (not the branch it left).
    const next = await say(ws, 'after the switch');
    expect(seenBy('after the switch')).toEqual([
      'system: You are the branch test.',
      'user: switch base',
      `assistant: ${ANSWER}`,
      'user: old branch',
      `assistant: ${ANSWER}`,
      'user: after the switch',
    ]);
    expect((await branchOf(me)).items.at(-2)?.parent_id).toBe(old.answer);
    expect((await conversationOf(me)).current_message_id).toBe(next.answer);
    ws.close();
  });

  test('to a message with several branches below it: the most recently created descendant', async () => {
    const { me, ws } = await session();
    const root = await say(ws, 'fork here');
    ws.send({ type: 'chat.regenerate' });
    const { final: second } = await ws.reply();
    // Back to the first answer's branch, and on from there: its descendants are now the newest.
    await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { current_message_id: root.answer },
    });
    const deeper = await say(ws, 'deeper');
    const res = await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { current_message_id: root.question },
    });
    expect(res.body.current_message_id).toBe(deeper.answer);
    const other = await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { current_message_id: second.message_id },
    });
    expect(other.body.current_message_id).toBe(second.message_id);
    ws.close();
  });

  test('422 for a message that is not this conversation’s; 409 reply_in_progress while a reply streams; nothing moves', async () => {
    const { me, ws } = await session();
    const mine = await say(ws, 'stay here');
    const elsewhere = await foreignAnswer(me);
    // Whatever is wrong with it (someone else's, unknown, not an id, null), it says the same.
    for (const id of [elsewhere.answer, crypto.randomUUID(), 'not-a-uuid', '', null]) {
      const res = await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
        token: me.access,
        body: { current_message_id: id },
      });
      expect(res.status).toBe(422);
      expect(res.body.detail).toEqual([
        {
          loc: ['body', 'current_message_id'],
          msg: 'Not a message of this conversation.',
          type: 'value_error',
        },
      ]);
    }
    ws.send({ type: 'chat.message', content: 'busy [stub:drip:30]' });
    await ws.next((f) => f.type === 'chat.start');
    const busy = await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { current_message_id: mine.question, title: 'not applied' },
    });
    expect(busy.status).toBe(409);
    expect(busy.body).toEqual({ detail: expect.any(String), code: 'reply_in_progress' });
    ws.send({ type: 'chat.stop' });
    await ws.next((f) => f.done === true);
    const conversation = await conversationOf(me);
    expect(conversation.title).toBe('New conversation');
    expect((await branchOf(me)).items.map((m) => m.content).slice(0, 2)).toEqual(['stay here', ANSWER]);
    // Someone else's conversation is 404, whatever the body.
    const stranger = await api.signUp();
    expect(
      (
        await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
          token: stranger.access,
          body: { current_message_id: mine.question },
        })
      ).status,
    ).toBe(404);
    ws.close();
  });
});

describe('GET /{id}/messages on a tree', () => {
  test('pages through the current branch root first, with count its length', async () => {
    const { me, ws } = await session();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const { question, answer } = await say(ws, `turn ${i}`);
      ids.push(question, answer);
    }
    // A side branch off turn 1 that is then left.
    ws.send({ type: 'chat.edit', message_id: ids[2], content: 'side' });
    await ws.reply();
    await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { current_message_id: ids[7] },
    });
    const page = async (limit: number, offset: number) =>
      (
        await api.request(
          'GET',
          `/api/conversations/${me.conversationId}/messages?limit=${limit}&offset=${offset}`,
          {
            token: me.access,
          },
        )
      ).body as { items: StoredMessage[]; count: number };
    expect((await page(3, 0)).items.map((m) => m.id)).toEqual(ids.slice(0, 3));
    expect((await page(3, 3)).items.map((m) => m.id)).toEqual(ids.slice(3, 6));
    expect((await page(3, 6)).items.map((m) => m.id)).toEqual(ids.slice(6));
    expect(await page(3, 8)).toEqual({ items: [], count: 8 });
    expect((await page(100, 0)).count).toBe(8);
    expect((await page(1, 2)).items[0]?.sibling_ids).toHaveLength(2);
    ws.close();
  });

  test('an empty conversation: no items, count 0, current_message_id null', async () => {
    const me = await api.signUp();
    expect(await branchOf(me)).toEqual({ items: [], count: 0 });
    expect((await conversationOf(me)).current_message_id).toBeNull();
  });
});

describe('conversation.updated', () => {
  test('every PATCH sends the conversation to every socket of it, and to no other', async () => {
    const { me, ws } = await session();
    const second = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const other = (await api.request('POST', '/api/conversations/', { token: me.access, body: {} })).body.id;
    const bystander = await connectAuthenticated(server.wsUrl, other, me.access);
    const res = await api.request('PATCH', `/api/conversations/${me.conversationId}`, {
      token: me.access,
      body: { title: 'Renamed' },
    });
    for (const socket of [ws, second]) {
      const frame = await socket.next((f) => f.type === 'conversation.updated');
      expect(frame).toEqual({ type: 'conversation.updated', conversation: res.body });
    }
    // A frame sent after the PATCH reaches the bystander after anything the PATCH sent it.
    await say(bystander, 'anything for me?');
    expect(bystander.frames.some((f) => f.type === 'conversation.updated')).toBe(false);
    for (const socket of [ws, second, bystander]) socket.close();
  });
});
