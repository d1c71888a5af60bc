import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type Client, createClient } from '../support/client';
import { DEFAULT_TOKENS } from '../support/openai-stub';
import { startServer, type TestServer } from '../support/server';
import { connectAuthenticated, type WsClient } from '../support/ws';

/** SPEC §12: per-conversation settings, /api/models, feedback and export. */

let server: TestServer;
let api: Client;

beforeAll(async () => {
  server = await startServer({
    OPENAI_MODEL: 'main-model',
    AI_MODELS: 'main-model,second-model',
    AI_SYSTEM_PROMPT: 'The default prompt.',
    CHAT_RATE_LIMIT: '1000',
  });
  api = createClient(server.url);
});
afterAll(() => server.stop());

type Me = Awaited<ReturnType<Client['signUp']>>;
const ANSWER = DEFAULT_TOKENS.join('');

const patch = (me: Me, body: unknown, id = me.conversationId) =>
  api.request('PATCH', `/api/conversations/${id}`, { token: me.access, body });

/** The provider request for the newest question containing `marker`. */
const requestFor = (marker: string) => {
  const request = server.stub.requests.findLast((r) => r.messages.at(-1)?.content.includes(marker));
  if (!request) throw new Error(`no provider request for ${marker}`);
  return request;
};

const say = async (ws: WsClient, content: string) => {
  ws.send({ type: 'chat.message', content });
  const { created, final } = await ws.reply();
  return { question: created?.message.id as string, answer: final.message_id as string };
};

describe('GET /api/models', () => {
  test('lists AI_MODELS with the default marked; needs a token', async () => {
    const me = await api.signUp();
    const res = await api.request('GET', '/api/models', { token: me.access });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      items: [
        { id: 'main-model', default: true },
        { id: 'second-model', default: false },
      ],
    });
    expect((await api.request('GET', '/api/models/')).status).toBe(401);
  });
});

describe('model and system_prompt', () => {
  test('POST takes them and returns them as set; the reply uses them', async () => {
    const me = await api.signUp();
    const res = await api.request('POST', '/api/conversations/', {
      token: me.access,
      body: { model: 'second-model', system_prompt: 'Speak like a pirate.' },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ model: 'second-model', system_prompt: 'Speak like a pirate.' });
    const ws = await connectAuthenticated(server.wsUrl, res.body.id, me.access);
    await say(ws, 'ahoy settings');
    const request = requestFor('ahoy settings');
    expect(request.model).toBe('second-model');
    expect(request.messages[0]).toEqual({ role: 'system', content: 'Speak like a pirate.' });
    ws.close();
  });

  test('null means the defaults; "" means no system prompt at all', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    await say(ws, 'defaults apply');
    expect(requestFor('defaults apply').model).toBe('main-model');
    expect(requestFor('defaults apply').messages[0]).toEqual({
      role: 'system',
      content: 'The default prompt.',
    });
    const res = await patch(me, { system_prompt: '' });
    expect(res.body.system_prompt).toBe('');
    await say(ws, 'no system prompt');
    expect(requestFor('no system prompt').messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect((await patch(me, { system_prompt: null, model: null })).body).toMatchObject({
      system_prompt: null,
      model: null,
    });
    ws.close();
  });

  test('a change reaches the very next reply, even right after a reply of the same socket', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    await say(ws, 'before the change');
    await patch(me, { model: 'second-model', system_prompt: 'Changed prompt.' });
    await say(ws, 'after the change');
    const request = requestFor('after the change');
    expect(request.model).toBe('second-model');
    expect(request.messages[0]).toEqual({ role: 'system', content: 'Changed prompt.' });
    // The history is still the branch: the earlier exchange, then the question.
    expect(request.messages.slice(1).map((m) => m.content)).toEqual([
      'before the change',
      ANSWER,
      'after the change',
    ]);
    ws.close();
  });

  test('refused with 422 naming the field: an unknown model, a prompt over 4000 characters, wrong types; nothing changes', async () => {
    const me = await api.signUp();
    const bad: [unknown, string][] = [
      [{ model: 'gpt-5-imaginary' }, 'model'],
      [{ model: '' }, 'model'],
      [{ model: 7 }, 'model'],
      [{ system_prompt: 'x'.repeat(4001) }, 'system_prompt'],
      [{ system_prompt: 12 }, 'system_prompt'],
    ];
    for (const [body, field] of bad) {
      for (const res of [
        await patch(me, body),
        await api.request('POST', '/api/conversations/', { token: me.access, body }),
      ]) {
        expect({ body, status: res.status }).toEqual({ body, status: 422 });
        expect(JSON.stringify(res.body.detail)).toContain(field);
        // Each says what the field may be, not TypeBox's "should be one of: 'string', 'null'".
        expect(JSON.stringify(res.body.detail)).not.toContain('should be');
      }
    }
    const conversation = (
      await api.request('GET', `/api/conversations/${me.conversationId}`, { token: me.access })
    ).body;
    expect(conversation).toMatchObject({ model: null, system_prompt: null });
    expect((await api.request('GET', '/api/conversations/', { token: me.access })).body.count).toBe(1);
    expect((await patch(me, { system_prompt: 'x'.repeat(4000) })).status).toBe(200);
  });
});

describe('a model the operator has since taken off AI_MODELS', () => {
  test('its conversations are answered by the default model, not refused by the provider', async () => {
    const me = await api.signUp();
    const chose = await patch(me, { model: 'second-model' });
    expect(chose.body.model).toBe('second-model');
    // The same database, restarted without second-model.
    const narrower = await startServer(
      { OPENAI_MODEL: 'main-model', AI_MODELS: 'main-model' },
      { database: server.resources.database, stub: server.stub },
    );
    try {
      const ws = await connectAuthenticated(narrower.wsUrl, me.conversationId, me.access);
      ws.send({ type: 'chat.message', content: 'still there? retired-model' });
      const { final } = await ws.reply();
      expect(final).toMatchObject({ type: 'chat.stream', done: true });
      expect(requestFor('retired-model').model).toBe('main-model');
      ws.close();
    } finally {
      await narrower.stop();
    }
    // Where it is offered, the conversation's own choice answers again.
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    ws.send({ type: 'chat.message', content: 'and now? offered-again' });
    await ws.reply();
    expect(requestFor('offered-again').model).toBe('second-model');
    ws.close();
  });
});

describe('PUT /{id}/messages/{message_id}/feedback', () => {
  const answered = async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const ids = await say(ws, 'rate this');
    ws.close();
    return { me, ...ids };
  };
  const put = (me: Me, messageId: string, body: unknown, conversationId = me.conversationId) =>
    api.request('PUT', `/api/conversations/${conversationId}/messages/${messageId}/feedback`, {
      token: me.access,
      body,
    });
  const listed = async (me: Me) =>
    (await api.request('GET', `/api/conversations/${me.conversationId}/messages`, { token: me.access })).body
      .items[1];

  test('rates an answer; each PUT replaces it; rating null removes it', async () => {
    const { me, answer } = await answered();
    const up = await put(me, answer, { rating: 'up', comment: 'Spot on' });
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({
      id: answer,
      role: 'assistant',
      feedback: { rating: 'up', comment: 'Spot on' },
    });
    expect((await listed(me)).feedback).toEqual({ rating: 'up', comment: 'Spot on' });
    expect((await put(me, answer, { rating: 'down' })).body.feedback).toEqual({
      rating: 'down',
      comment: null,
    });
    expect((await put(me, answer, { rating: null, comment: 'ignored' })).body.feedback).toBeNull();
    expect((await listed(me)).feedback).toBeNull();
  });

  test('a user message is 422; unknown, malformed or someone else’s is 404; a bad body is 422', async () => {
    const { me, question, answer } = await answered();
    expect((await put(me, question, { rating: 'up' })).status).toBe(422);
    expect((await put(me, crypto.randomUUID(), { rating: 'up' })).status).toBe(404);
    expect([404, 422]).toContain((await put(me, 'nope', { rating: 'up' })).status);
    const stranger = await api.signUp();
    expect((await put(stranger, answer, { rating: 'up' }, me.conversationId)).status).toBe(404);
    // The answer of my conversation named under my other conversation: not found there.
    expect((await put(me, answer, { rating: 'up' }, stranger.conversationId)).status).toBe(404);
    const other = (await api.request('POST', '/api/conversations/', { token: me.access, body: {} })).body.id;
    expect((await put(me, answer, { rating: 'up' }, other)).status).toBe(404);
    for (const body of [
      {},
      { rating: 'meh' },
      { rating: 'up', comment: 'x'.repeat(2001) },
      { rating: 'up', comment: 5 },
    ])
      expect({ body, status: (await put(me, answer, body)).status }).toEqual({ body, status: 422 });
    expect((await put(me, answer, { rating: 'meh' })).body.detail[0]).toMatchObject({
      loc: ['body', 'rating'],
      msg: 'Must be "up", "down" or null (no feedback).',
    });
    expect((await listed(me)).feedback).toBeNull();
  });
});

describe('GET /{id}/export', () => {
  const exported = async (title: string) => {
    const me = await api.signUp();
    await patch(me, { title });
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    await say(ws, 'What is **bold**?\n\nTwo lines.');
    ws.close();
    return me;
  };
  const download = (me: Me, query = '') =>
    fetch(`${server.url}/api/conversations/${me.conversationId}/export${query}`, {
      headers: { authorization: `Bearer ${me.access}` },
    });

  test('markdown by default: a title heading, then a section per message of the current branch, verbatim', async () => {
    const me = await exported('Trip: Kyoto / Osaka "2027"');
    const res = await download(me);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toStartWith('text/markdown');
    const disposition = res.headers.get('content-disposition') ?? '';
    expect(disposition).toStartWith('attachment; filename="trip-kyoto-osaka-2027.md"');
    expect(await res.text()).toBe(
      `# Trip: Kyoto / Osaka "2027"\n\n## User\n\nWhat is **bold**?\n\nTwo lines.\n\n## Assistant\n\n${ANSWER}\n`,
    );
  });

  test('an accented title keeps its letters in the ASCII file name, without its accents', async () => {
    const me = await exported('Naïve café in Zürich');
    const disposition = (await download(me)).headers.get('content-disposition') ?? '';
    expect(disposition).toStartWith('attachment; filename="naive-cafe-in-zurich.md"');
    expect(disposition).toContain(`filename*=UTF-8''${encodeURIComponent('Naïve café in Zürich.md')}`);
  });

  test('a title with line breaks is one heading line and one file name', async () => {
    const me = await exported('Plans\nfor\n\tMonday ');
    const res = await download(me);
    const disposition = res.headers.get('content-disposition') ?? '';
    expect(disposition).toStartWith('attachment; filename="plans-for-monday.md"');
    expect(disposition).toContain(`filename*=UTF-8''${encodeURIComponent('Plans for Monday.md')}`);
    expect((await res.text()).split('\n\n')[0]).toBe('# Plans for Monday');
    const json = (await (await download(me, '?format=json')).json()) as { conversation: { title: string } };
    expect(json.conversation.title).toBe('Plans\nfor\n\tMonday'); // stored as set, trimmed
  });

  test('the readable file name is no hidden file and no path, and at most 100 characters', async () => {
    for (const [title, readable] of [
      ['../../etc/passwd', 'etcpasswd'],
      ['.hidden', 'hidden'],
      ['...', 'conversation'],
      ['Notes...', 'Notes'],
      ['天'.repeat(255), '天'.repeat(100)],
    ] as const) {
      const me = await exported(title);
      const disposition = (await download(me)).headers.get('content-disposition') ?? '';
      expect({ title, disposition }).toEqual({
        title,
        disposition: expect.stringContaining(`filename*=UTF-8''${encodeURIComponent(`${readable}.md`)}`),
      });
    }
  });

  test('json: the conversation and its messages as the API shows them', async () => {
    const me = await exported('日本語のタイトル');
    const res = await download(me, '?format=json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toStartWith('application/json');
    const disposition = res.headers.get('content-disposition') ?? '';
    expect(disposition).toContain('filename="conversation.json"');
    expect(disposition).toContain(`filename*=UTF-8''${encodeURIComponent('日本語のタイトル.json')}`);
    const body = await res.json();
    const listed = await api.request('GET', `/api/conversations/${me.conversationId}/messages`, {
      token: me.access,
    });
    const conversation = await api.request('GET', `/api/conversations/${me.conversationId}`, {
      token: me.access,
    });
    expect(body).toEqual({ conversation: conversation.body, messages: listed.body.items });
  });

  test('any other format is 422; someone else’s conversation is 404', async () => {
    const me = await exported('Mine');
    for (const format of ['pdf', 'MARKDOWN', '', 'json%00'])
      expect({ format, status: (await download(me, `?format=${format}`)).status }).toEqual({
        format,
        status: 422,
      });
    const stranger = await api.signUp();
    const res = await fetch(`${server.url}/api/conversations/${me.conversationId}/export`, {
      headers: { authorization: `Bearer ${stranger.access}` },
    });
    expect(res.status).toBe(404);
    expect((await fetch(`${server.url}/api/conversations/${me.conversationId}/export`)).status).toBe(401);
  });
});
