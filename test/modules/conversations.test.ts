import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { ReplyContext } from '../../src/modules/conversations/messages';
import { type Client, createClient } from '../support/client';
import { startServer, type TestServer } from '../support/server';

let server: TestServer;
let api: Client;

beforeAll(async () => {
  server = await startServer();
  api = createClient(server.url);
});
afterAll(() => server.stop());

const signIn = async () => (await api.login((await api.register()).username)).access;
const create = async (token: string, body: unknown = {}) =>
  (await api.request('POST', '/api/conversations/', { token, body })).body;

describe('POST /api/conversations/', () => {
  test('creates a conversation with the default title', async () => {
    const token = await signIn();
    const res = await api.request('POST', '/api/conversations/', { token, body: {} });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      title: 'New conversation',
      created_at: expect.any(String),
      updated_at: expect.any(String),
      message_count: 0,
      model: null,
      system_prompt: null,
      current_message_id: null,
    });
  });

  test('accepts a title and no body at all', async () => {
    const token = await signIn();
    expect((await create(token, { title: 'Trip' })).title).toBe('Trip');
    const res = await api.request('POST', '/api/conversations', { token });
    expect(res.status).toBe(201);
  });

  test('refuses a title over 255 characters (422)', async () => {
    const token = await signIn();
    const res = await api.request('POST', '/api/conversations/', { token, body: { title: 'x'.repeat(256) } });
    expect(res.status).toBe(422);
    expect(res.body.detail[0].loc).toEqual(['body', 'title']);
  });

  test('requires authentication', async () => {
    expect((await api.request('POST', '/api/conversations/', { body: {} })).status).toBe(401);
  });
});

describe('GET /api/conversations/', () => {
  test('lists only my conversations, newest updated_at first, with a total count', async () => {
    const token = await signIn();
    const other = await signIn();
    await create(other);
    const a = await create(token, { title: 'a' });
    const b = await create(token, { title: 'b' });
    const c = await create(token, { title: 'c' });
    await api.request('PATCH', `/api/conversations/${a.id}`, { token, body: {} }); // bumps a

    const res = await api.request('GET', '/api/conversations/', { token });
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(3);
    expect(res.body.items.map((i: { id: string }) => i.id)).toEqual([a.id, c.id, b.id]);
  });

  test('paginates with limit and offset', async () => {
    const token = await signIn();
    for (let i = 0; i < 5; i++) await create(token, { title: `t${i}` });
    const page = await api.request('GET', '/api/conversations/?limit=2&offset=1', { token });
    expect(page.body.count).toBe(5);
    expect(page.body.items.map((i: { title: string }) => i.title)).toEqual(['t3', 't2']);
    const past = await api.request('GET', '/api/conversations/?limit=2&offset=10', { token });
    expect(past.body).toEqual({ items: [], count: 5 });
    // However far past the end: a whole number too large to hold exactly is still an offset.
    for (const offset of [
      '9007199254740991',
      '9007199254740992',
      '99999999999999999999',
      '1'.padEnd(400, '0'),
    ]) {
      const far = await api.request('GET', `/api/conversations/?offset=${offset}`, { token });
      expect({ offset, status: far.status, body: far.body }).toEqual({
        offset,
        status: 200,
        body: { items: [], count: 5 },
      });
    }
  });

  test('defaults to 20 items', async () => {
    const token = await signIn();
    await Promise.all(Array.from({ length: 22 }, () => create(token)));
    const res = await api.request('GET', '/api/conversations/', { token });
    expect(res.body.items).toHaveLength(20);
    expect(res.body.count).toBe(22);
  });

  test.each([
    ['limit=0', 'limit', 'Must be a whole number from 1 to 100.'],
    ['limit=101', 'limit', 'Must be a whole number from 1 to 100.'],
    ['limit=abc', 'limit', 'Must be a whole number from 1 to 100.'],
    ['limit=1.5', 'limit', 'Must be a whole number from 1 to 100.'],
    ['limit=', 'limit', 'Must be a whole number from 1 to 100.'],
    ['offset=-1', 'offset', 'Must be a whole number, 0 or more.'],
  ])('refuses %s with 422 naming the parameter and its range', async (query, name, msg) => {
    const token = await signIn();
    const res = await api.request('GET', `/api/conversations/?${query}`, { token });
    expect(res.status).toBe(422);
    expect(res.body.detail).toEqual([{ loc: ['query', name], msg, type: 'value_error' }]);
  });

  test('accepts the bounds limit=1 and limit=100', async () => {
    const token = await signIn();
    expect((await api.request('GET', '/api/conversations/?limit=1', { token })).status).toBe(200);
    expect((await api.request('GET', '/api/conversations/?limit=100', { token })).status).toBe(200);
  });
});

describe('GET /api/conversations/{id}', () => {
  test('returns my conversation', async () => {
    const token = await signIn();
    const conv = await create(token, { title: 'mine' });
    const res = await api.request('GET', `/api/conversations/${conv.id}`, { token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual(conv);
  });

  test("answers 404 for someone else's conversation and for one that does not exist", async () => {
    const owner = await signIn();
    const intruder = await signIn();
    const conv = await create(owner);
    expect((await api.request('GET', `/api/conversations/${conv.id}`, { token: intruder })).status).toBe(404);
    const missing = await api.request('GET', `/api/conversations/${crypto.randomUUID()}`, { token: owner });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ detail: expect.any(String) });
  });

  test('answers a malformed id with 422, never 500', async () => {
    const token = await signIn();
    for (const id of ['not-a-uuid', '1', "1'%20or%20'1'='1"]) {
      const res = await api.request('GET', `/api/conversations/${id}`, { token });
      expect(res.status).toBe(422);
    }
  });
});

describe('PATCH /api/conversations/{id}', () => {
  test('renames and bumps updated_at', async () => {
    const token = await signIn();
    const conv = await create(token);
    await Bun.sleep(5);
    const res = await api.request('PATCH', `/api/conversations/${conv.id}/`, {
      token,
      body: { title: 'Renamed' },
    });
    expect(res.status).toBe(200);
    expect(res.body.title).toBe('Renamed');
    expect(new Date(res.body.updated_at).getTime()).toBeGreaterThan(new Date(conv.updated_at).getTime());
    expect(res.body.created_at).toBe(conv.created_at);
  });

  test('cleans HTML out of titles', async () => {
    const token = await signIn();
    const conv = await create(token, { title: '<b>Bold</b> plan<script>x</script>' });
    expect(conv.title).toBe('Bold plan');
  });

  test("answers 404 for someone else's conversation and leaves it unchanged", async () => {
    const owner = await signIn();
    const conv = await create(owner, { title: 'keep' });
    const res = await api.request('PATCH', `/api/conversations/${conv.id}`, {
      token: await signIn(),
      body: { title: 'stolen' },
    });
    expect(res.status).toBe(404);
    expect((await api.request('GET', `/api/conversations/${conv.id}`, { token: owner })).body.title).toBe(
      'keep',
    );
  });

  test('refuses a non-string title (422)', async () => {
    const token = await signIn();
    const conv = await create(token);
    expect(
      (await api.request('PATCH', `/api/conversations/${conv.id}`, { token, body: { title: 5 } })).status,
    ).toBe(422);
  });
});

describe('DELETE /api/conversations/{id}', () => {
  test('deletes with 204 and takes the messages with it', async () => {
    const token = await signIn();
    const conv = await create(token);
    const { createConversationRepository } = await import('../../src/modules/conversations/repository');
    const messages = createConversationRepository(server.resources.database.db);
    await messages.addMessage({ conversationId: conv.id, role: 'user', content: 'hello' });
    const res = await api.request('DELETE', `/api/conversations/${conv.id}`, { token });
    expect(res.status).toBe(204);
    expect((await api.request('GET', `/api/conversations/${conv.id}`, { token })).status).toBe(404);
    expect((await messages.branch(conv.id, 10, 0)).count).toBe(0);
  });

  test("answers 404 for someone else's conversation and keeps it", async () => {
    const owner = await signIn();
    const conv = await create(owner);
    expect(
      (await api.request('DELETE', `/api/conversations/${conv.id}`, { token: await signIn() })).status,
    ).toBe(404);
    expect((await api.request('GET', `/api/conversations/${conv.id}`, { token: owner })).status).toBe(200);
  });
});

describe('GET /api/conversations/{id}/messages', () => {
  test('lists messages oldest first with the SPEC fields, paginated', async () => {
    const token = await signIn();
    const conv = await create(token);
    const { createConversationRepository } = await import('../../src/modules/conversations/repository');
    const repo = createConversationRepository(server.resources.database.db);
    for (const content of ['one', 'two', 'three'])
      await repo.addMessage({ conversationId: conv.id, role: 'user', content });
    const res = await api.request('GET', `/api/conversations/${conv.id}/messages`, { token });
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(3);
    expect(res.body.items.map((m: { content: string }) => m.content)).toEqual(['one', 'two', 'three']);
    expect(Object.keys(res.body.items[0]).sort()).toEqual(
      [
        'completion_tokens',
        'content',
        'created_at',
        'id',
        'prompt_tokens',
        'role',
        'status',
        'parent_id',
        'sibling_ids',
        'feedback',
      ].sort(),
    );
    // One branch: each follows the one before.
    const [one, two, three] = res.body.items;
    expect([one.parent_id, two.parent_id, three.parent_id]).toEqual([null, one.id, two.id]);
    expect(two.sibling_ids).toEqual([two.id]);
    expect(one.feedback).toBeNull();
    const page = await api.request('GET', `/api/conversations/${conv.id}/messages/?limit=1&offset=1`, {
      token,
    });
    expect(page.body.items.map((m: { content: string }) => m.content)).toEqual(['two']);
    expect((await api.request('GET', `/api/conversations/${conv.id}`, { token })).body.message_count).toBe(3);
  });

  test("answers 404 for someone else's conversation", async () => {
    const conv = await create(await signIn());
    const res = await api.request('GET', `/api/conversations/${conv.id}/messages`, { token: await signIn() });
    expect(res.status).toBe(404);
  });

  test('refuses out-of-range pagination (422)', async () => {
    const token = await signIn();
    const conv = await create(token);
    expect(
      (await api.request('GET', `/api/conversations/${conv.id}/messages?limit=500`, { token })).status,
    ).toBe(422);
  });
});

describe('message writes', () => {
  const repository = async () =>
    (await import('../../src/modules/conversations/repository')).createConversationRepository(
      server.resources.database.db,
    );
  const rows = async (token: string, id: string) =>
    (await api.request('GET', `/api/conversations/${id}/messages?limit=100`, { token })).body.items as {
      id: string;
      content: string;
      created_at: string;
    }[];

  test('written at the same moment, they share one statement, each bumping its conversation', async () => {
    const token = await signIn();
    const conversations = await Promise.all(Array.from({ length: 20 }, () => create(token)));
    const repo = await repository();
    const written = await Promise.all(
      conversations.map((c, i) => repo.addMessage({ conversationId: c.id, role: 'user', content: `m${i}` })),
    );
    const stored = (await Promise.all(conversations.map((c) => rows(token, c.id)))).flat();
    expect(stored.map((m) => m.content)).toEqual(conversations.map((_, i) => `m${i}`));
    expect(stored.map((m) => m.id)).toEqual(written.map((w) => w.id));
    // Each write answers with its row's own time.
    expect(written.map((w) => w.createdAt.toISOString())).toEqual(stored.map((m) => m.created_at));
    // One statement, one transaction: one `now()` for all twenty rows.
    expect(new Set(stored.map((m) => m.created_at)).size).toBe(1);
    // Every conversation was bumped by that statement.
    const list = (await api.request('GET', '/api/conversations/?limit=100', { token })).body.items as {
      updated_at: string;
    }[];
    for (const c of list) expect(c.updated_at).toBe(stored[0]?.created_at as string);
  });

  test('written at the same moment to the current branch of one conversation, they follow each other in call order', async () => {
    const token = await signIn();
    const conv = await create(token);
    const repo = await repository();
    const written = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        repo.addMessage({ conversationId: conv.id, role: 'user', content: `m${i}` }),
      ),
    );
    const stored = (await rows(token, conv.id)) as unknown as {
      id: string;
      content: string;
      parent_id: string | null;
    }[];
    expect(stored.map((m) => m.content)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(stored.map((m) => m.parent_id)).toEqual([null, ...written.slice(0, 4).map((w) => w.id)]);
  });

  test('one bad row fails only its own write, with its own error', async () => {
    const token = await signIn();
    const [one, two] = [await create(token), await create(token)];
    const repo = await repository();
    const missing = crypto.randomUUID();
    for (const [first, third] of [
      [one, two], // one statement, then each row alone
      [one, one], // one conversation's branch: one row after the other
    ]) {
      const results = await Promise.allSettled([
        repo.addMessage({ conversationId: first.id, role: 'user', content: 'kept 1' }),
        repo.addMessage({ conversationId: missing, role: 'user', content: 'nowhere' }),
        repo.addMessage({ conversationId: third.id, role: 'assistant', content: 'kept 2' }),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      const { FOREIGN_KEY_VIOLATION, hasSqlState } = await import('../../src/lib/failures');
      expect(hasSqlState((results[1] as PromiseRejectedResult).reason, FOREIGN_KEY_VIOLATION)).toBe(true);
    }
    expect((await rows(token, one.id)).map((m) => m.content)).toEqual(['kept 1', 'kept 1', 'kept 2']);
    expect((await rows(token, two.id)).map((m) => m.content)).toEqual(['kept 2']);
  });

  test('a write with bumps false leaves updated_at alone; touch bumps it, several at once', async () => {
    const token = await signIn();
    const [a, b] = [await create(token), await create(token)];
    const repo = await repository();
    const updatedAt = async (id: string) =>
      (await api.request('GET', `/api/conversations/${id}`, { token })).body.updated_at as string;
    await repo.addMessage({ conversationId: a.id, role: 'user', content: 'quiet', bumps: false });
    expect(await updatedAt(a.id)).toBe(a.updated_at);
    await Promise.all([repo.touch(a.id), repo.touch(b.id), repo.touch(a.id)]);
    const [bumpedA, bumpedB] = [await updatedAt(a.id), await updatedAt(b.id)];
    expect(new Date(bumpedA).getTime()).toBeGreaterThan(new Date(a.updated_at).getTime());
    // One statement for all three: one `now()`.
    expect(bumpedB).toBe(bumpedA);
    await repo.addMessage({ conversationId: a.id, role: 'assistant', content: 'loud' });
    expect(await updatedAt(a.id)).toBe((await rows(token, a.id))[1]?.created_at as string);
  });

  test('text that is not well-formed UTF-16 is stored with U+FFFD, as a bound parameter would be', async () => {
    const token = await signIn();
    const conv = await create(token);
    await (await repository()).addMessage({
      conversationId: conv.id,
      role: 'assistant',
      content: 'half \ud83d of a pair, "quoted" \\ and \n newline',
    });
    expect((await rows(token, conv.id))[0]?.content).toBe(
      'half \ufffd of a pair, "quoted" \\ and \n newline',
    );
  });
});

describe('history reads', () => {
  test('read at the same moment, each conversation gets its own branch, its newest turns, root first', async () => {
    const token = await signIn();
    const [a, b, empty] = [await create(token), await create(token), await create(token)];
    const repo = (await import('../../src/modules/conversations/repository')).createConversationRepository(
      server.resources.database.db,
    );
    for (let i = 0; i < 5; i++)
      await repo.addMessage({ conversationId: a.id, role: 'user', content: `a${i}` });
    for (let i = 0; i < 2; i++)
      await repo.addMessage({ conversationId: b.id, role: 'assistant', content: `b${i}` });
    const turns = (r: PromiseSettledResult<ReplyContext | undefined> | undefined) =>
      (r as PromiseFulfilledResult<ReplyContext | undefined>).value?.turns;
    const [fromA, fromB, none, fewerOfA, stranger, gone] = await Promise.allSettled([
      repo.context(a.id, 'current', 3),
      repo.context(b.id, 'current', 10),
      repo.context(empty.id, 'current', 10),
      repo.context(a.id, 'current', 2),
      repo.context('not-a-uuid', 'current', 10), // fails its own read only
      repo.context(crypto.randomUUID(), 'current', 10),
    ]);
    const value = turns;
    expect(value(fromA)).toEqual(['a2', 'a3', 'a4'].map((content) => ({ role: 'user', content })));
    expect(value(fromB)).toEqual(['b0', 'b1'].map((content) => ({ role: 'assistant', content })));
    expect(value(none)).toEqual([]);
    expect(value(fewerOfA)).toEqual(['a3', 'a4'].map((content) => ({ role: 'user', content })));
    expect(stranger?.status).toBe('rejected');
    expect(gone?.status === 'fulfilled' && gone.value).toBeUndefined();
  });
});
