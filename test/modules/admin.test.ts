import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createConversationRepository } from '../../src/modules/conversations/repository';
import { type Client, createClient, STRONG_PASSWORD } from '../support/client';
import { DEFAULT_TOKENS, drip, STUB_PROMPT_TOKENS } from '../support/openai-stub';
import { startServer, type TestServer } from '../support/server';
import { signUpStaff } from '../support/staff';
import { until } from '../support/wait';
import { connect, connectAuthenticated } from '../support/ws';

/** SPEC §13, admin: staff only; users, their state and quotas; usage across users. */

let server: TestServer;
let api: Client;
let staff: { access: string; id: string; username: string };

beforeAll(async () => {
  server = await startServer({ CHAT_RATE_LIMIT: '1000' });
  api = createClient(server.url);
  staff = await signUpStaff(server.resources.database.db, api);
});
afterAll(() => server.stop());

const admin = (method: string, path: string, body?: unknown, token = staff.access) =>
  api.request(method, `/api/admin${path}`, { token, body });

describe('who may call it', () => {
  test('anyone not staff gets 403 on every admin route; no token is 401', async () => {
    const me = await api.signUp();
    for (const [method, path, body] of [
      ['GET', '/users'],
      ['GET', '/users?q=a'],
      ['PATCH', `/users/${me.user.id}`, { is_staff: true }],
      ['GET', '/usage'],
    ] as const) {
      const refused = await admin(method, path, body, me.access);
      expect(refused.status).toBe(403);
      expect(refused.body.detail).toEqual(expect.any(String));
      expect((await api.request(method, `/api/admin${path}`, { body })).status).toBe(401);
    }
    // Refused before its input is read: a bad id, body or query is still a 403.
    for (const [method, path, body] of [
      ['PATCH', '/users/not-an-id', { is_staff: 'yes' }],
      ['GET', '/users?limit=0'],
      ['GET', '/usage?days=0'],
    ] as const)
      expect((await admin(method, path, body, me.access)).status).toBe(403);
    for (const raw of ['{"is_staff": tru', '[true]']) {
      const patch = await api.request('PATCH', `/api/admin/users/${me.user.id}`, { token: me.access, raw });
      expect(patch.status).toBe(403);
    }
    // The refused PATCH changed nothing: still not staff, as staff see it.
    expect((await api.request('GET', '/api/admin/users', { token: me.access })).status).toBe(403);
    const [row] = (await admin('GET', `/users?q=${me.user.username}`)).body.items;
    expect(row).toMatchObject({ id: me.user.id, is_staff: false });
  });
});

describe('GET /api/admin/users', () => {
  test('newest first with every field; q is a case-insensitive substring of username or email, wildcards literal', async () => {
    const tag = `Adm${crypto.randomUUID().slice(0, 6)}`;
    const first = await api.register(`${tag}_one`);
    const second = await api.register(`${tag}-two`);
    await api.login(second.username);
    const found = await admin('GET', `/users?q=${tag.toLowerCase()}`);
    expect(found.status).toBe(200);
    expect(found.body.count).toBe(2);
    expect(found.body.items.map((u: { id: string }) => u.id)).toEqual([second.id, first.id]);
    expect(found.body.items[0]).toEqual({
      id: second.id,
      username: second.username,
      email: second.email,
      date_joined: expect.any(String),
      last_login: expect.any(String),
      is_active: true,
      is_staff: false,
      daily_token_quota: null,
      daily_message_quota: null,
    });
    expect(found.body.items[1].last_login).toBeNull();
    expect(found.body.items[0]).not.toHaveProperty('password');
    // By email, and `_` is a plain character (it would match the `-` of the second).
    const underscore = await admin('GET', `/users?q=${encodeURIComponent(`${tag}_`)}`);
    expect(underscore.body.items.map((u: { id: string }) => u.id)).toEqual([first.id]);
    expect((await admin('GET', `/users?q=${encodeURIComponent(`${tag}-TWO@EXAMPLE`)}`)).body.count).toBe(1);
    expect((await admin('GET', `/users?q=${encodeURIComponent('%')}`)).body.count).toBe(0);
    const paged = await admin('GET', `/users?q=${tag}&limit=1&offset=1`);
    expect(paged.body).toMatchObject({ count: 2, items: [{ id: first.id }] });
    const everyone = await admin('GET', '/users?limit=100');
    expect(everyone.body.count).toBeGreaterThanOrEqual(3);
  });

  test('bad paging, a blank q or one over 200 characters is 422', async () => {
    for (const query of [
      'limit=0',
      'limit=101',
      'offset=-1',
      'limit=x',
      'q=',
      `q=${'x'.repeat(201)}`,
      'q=%20%20',
    ])
      expect((await admin('GET', `/users?${query}`)).status).toBe(422);
    for (const query of ['q=', `q=${'x'.repeat(201)}`, 'q=%20%20'])
      expect((await admin('GET', `/users?${query}`)).body.detail).toEqual([
        { loc: ['query', 'q'], msg: 'Must be 1 to 200 characters and not blank.', type: 'value_error' },
      ]);
  });

  test('q is counted in characters: 200 emoji are a q, not 400', async () => {
    const res = await admin('GET', `/users?q=${encodeURIComponent('🙂'.repeat(200))}`);
    expect(res.status).toBe(200);
    expect(res.body.count).toBe(0);
  });
});

describe('PATCH /api/admin/users/{id}', () => {
  test('deactivating refuses the tokens at once, closes the sockets with 4001 and stops the reply streaming; activating lets the user back in', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const content = drip('deactivate me mid-reply', 100);
    ws.send({ type: 'chat.message', content });
    await ws.next((f) => f.type === 'chat.stream');
    const res = await admin('PATCH', `/users/${me.user.id}`, { is_active: false });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: me.user.id, is_active: false });
    expect((await ws.closed).code).toBe(4001);
    await until(() => server.stub.requestsFor(content)[0]?.aborted === true, 'aborted', 3000);
    // What had arrived is kept, as for any stopped reply.
    const repo = createConversationRepository(server.resources.database.db);
    const answer = async () => (await repo.branch(me.conversationId, 10, 0)).items[1];
    await until(async () => (await answer()) !== undefined, 'the answer stored', 5000);
    expect((await answer())?.status).toBe('interrupted');
    expect((await api.request('GET', '/api/auth/me', { token: me.access })).status).toBe(401);
    const refused = await connect(`${server.wsUrl}/ws/chat/${me.conversationId}/`);
    refused.send({ type: 'auth', token: me.access });
    expect((await refused.next()).code).toBe('AUTH_FAILED');
    expect(
      (
        await api.request('POST', '/api/token/pair', {
          body: { username: me.user.username, password: STRONG_PASSWORD },
        })
      ).status,
    ).toBe(401);
    expect((await admin('PATCH', `/users/${me.user.id}`, { is_active: true })).body.is_active).toBe(true);
    expect((await api.request('GET', '/api/auth/me', { token: me.access })).status).toBe(200);
  });

  test('sets the staff flag and quotas; a field left out is unchanged', async () => {
    const me = await api.signUp();
    const made = await admin('PATCH', `/users/${me.user.id}`, { is_staff: true, daily_token_quota: 1000 });
    expect(made.body).toMatchObject({ is_staff: true, daily_token_quota: 1000, daily_message_quota: null });
    expect((await api.request('GET', '/api/admin/users', { token: me.access })).status).toBe(200);
    const quota = await admin('PATCH', `/users/${me.user.id}`, { daily_message_quota: 0 });
    expect(quota.body).toMatchObject({ is_staff: true, daily_token_quota: 1000, daily_message_quota: 0 });
    expect((await api.request('GET', '/api/usage', { token: me.access })).body.quota).toMatchObject({
      daily_tokens: 1000,
      daily_messages: null,
    });
    const cleared = await admin('PATCH', `/users/${me.user.id}`, {
      daily_token_quota: null,
      is_staff: false,
    });
    expect(cleared.body).toMatchObject({ is_staff: false, daily_token_quota: null, daily_message_quota: 0 });
    expect((await api.request('GET', '/api/admin/users', { token: me.access })).status).toBe(403);
    expect((await admin('PATCH', `/users/${me.user.id}`, {})).body.id).toBe(me.user.id);
  });

  test('staff cannot deactivate or un-staff themselves (422); other changes to themselves are fine', async () => {
    // Their id in capitals is still their id.
    for (const id of [staff.id, staff.id.toUpperCase()])
      for (const body of [{ is_active: false }, { is_staff: false }, { is_active: false, is_staff: false }]) {
        const res = await admin('PATCH', `/users/${id}`, body);
        expect(res.status).toBe(422);
        expect(res.body.detail.map((d: { loc: string[] }) => d.loc[1]).sort()).toEqual(
          Object.keys(body).sort(),
        );
      }
    expect((await admin('GET', '/users?limit=1')).status).toBe(200);
    const quota = await admin('PATCH', `/users/${staff.id}`, { daily_message_quota: 50, is_active: true });
    expect(quota.body).toMatchObject({ is_active: true, is_staff: true, daily_message_quota: 50 });
  });

  test('negative, fractional or non-number quotas and wrong types are 422 (unknown fields are ignored); unknown or malformed ids are 404/422; nothing changes', async () => {
    const me = await api.signUp();
    for (const body of [
      { daily_token_quota: -1 },
      { daily_message_quota: 1.5 },
      { daily_message_quota: '5' },
      { daily_token_quota: true },
      { daily_token_quota: 2 ** 31 },
      { is_active: 'no' },
      { is_staff: 1 },
    ]) {
      const res = await admin('PATCH', `/users/${me.user.id}`, body);
      expect(res.status).toBe(422);
      // A quota's refusal says what a quota may be (not "should be one of: 'integer', 'null'").
      expect(res.body.detail[0].msg).toBe(
        'is_active' in body || 'is_staff' in body
          ? 'Must be true or false.'
          : 'Must be a whole number from 0 (unlimited) to 2147483647, or null for the default.',
      );
    }
    // A field the API does not name is ignored.
    expect((await admin('PATCH', `/users/${me.user.id}`, { is_superuser: true, password: 'x' })).status).toBe(
      200,
    );
    const [row] = (await admin('GET', `/users?q=${me.user.username}`)).body.items;
    expect(row).toMatchObject({
      is_active: true,
      is_staff: false,
      daily_token_quota: null,
      daily_message_quota: null,
    });
    expect((await admin('PATCH', `/users/${crypto.randomUUID()}`, { is_staff: true })).status).toBe(404);
    expect([404, 422]).toContain((await admin('PATCH', '/users/not-a-uuid', { is_staff: true })).status);
  });
});

describe('GET /api/admin/usage', () => {
  test('totals over all users per UTC day, and at most ten users, most tokens first', async () => {
    const heavy = await api.signUp();
    const light = await api.signUp();
    const chat = async (me: typeof heavy, times: number) => {
      const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
      for (let i = 0; i < times; i++) {
        ws.send({ type: 'chat.message', content: `m${i}` });
        await ws.reply();
      }
      ws.close();
    };
    const before = (await admin('GET', '/usage?days=1')).body;
    await chat(heavy, 3);
    await chat(light, 1);
    const res = await admin('GET', '/usage?days=7');
    expect(res.status).toBe(200);
    expect(res.body.days).toHaveLength(7);
    const today = res.body.days.at(-1);
    expect(today.messages - before.total.messages).toBe(4);
    expect(today.prompt_tokens - before.total.prompt_tokens).toBe(4 * STUB_PROMPT_TOKENS);
    expect(today.completion_tokens - before.total.completion_tokens).toBe(4 * DEFAULT_TOKENS.length);
    const top = res.body.top_users as Record<string, unknown>[];
    expect(top.length).toBeLessThanOrEqual(10);
    const heavyAt = top.findIndex((u) => u.id === heavy.user.id);
    const lightAt = top.findIndex((u) => u.id === light.user.id);
    expect(heavyAt).toBeGreaterThanOrEqual(0);
    expect(lightAt === -1 || lightAt > heavyAt).toBe(true);
    expect(top[heavyAt]).toEqual({
      id: heavy.user.id,
      username: heavy.user.username,
      messages: 3,
      prompt_tokens: 3 * STUB_PROMPT_TOKENS,
      completion_tokens: 3 * DEFAULT_TOKENS.length,
    });
    for (const days of ['0', '367', 'x'])
      expect((await admin('GET', `/usage?days=${days}`)).status).toBe(422);
  });
});
