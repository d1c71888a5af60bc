import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sql } from 'drizzle-orm';
import { type Client, createClient } from '../support/client';
import { DEFAULT_TOKENS, STUB_PROMPT_TOKENS } from '../support/openai-stub';
import { startServer, type TestServer } from '../support/server';
import { signUpStaff } from '../support/staff';
import { connectAuthenticated, type WsClient } from '../support/ws';

/** SPEC §13: usage per UTC day and daily quotas (defaults, per-user overrides). */

const REPLY_TOKENS = STUB_PROMPT_TOKENS + DEFAULT_TOKENS.length;

type Me = Awaited<ReturnType<Client['signUp']>>;

const utcDay = (offsetDays = 0) => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);

/** A staff user of `server`, logged in. */
const staffOf = (server: TestServer, api: Client) => signUpStaff(server.resources.database.db, api);

const send = async (ws: WsClient, frame: Record<string, unknown>) => {
  ws.send(frame);
  return ws.reply();
};
const say = (ws: WsClient, content: string) => send(ws, { type: 'chat.message', content });

/** Usage the user had on an earlier UTC day, written as the server would have. */
const spentOn = (server: TestServer, userId: string, daysAgo: number, messages: number, tokens: number) =>
  server.resources.database.db.execute(sql`insert into usage_days (user_id, day, messages, prompt_tokens, completion_tokens)
    values (${userId}, (now() at time zone 'utc')::date - ${daysAgo}::int, ${messages}, ${tokens}, 0)`);

describe('GET /api/usage', () => {
  let server: TestServer;
  let api: Client;
  beforeAll(async () => {
    server = await startServer({ CHAT_RATE_LIMIT: '1000' });
    api = createClient(server.url);
  });
  afterAll(() => server.stop());

  const usage = async (me: Me, query = '') => {
    const res = await api.request('GET', `/api/usage${query}`, { token: me.access });
    expect(res.status).toBe(200);
    return res.body;
  };

  test('every UTC day of the range oldest first, zeros included; quotas null when unlimited', async () => {
    const me = await api.signUp();
    const body = await usage(me);
    expect(body.days).toHaveLength(30);
    expect(body.days[0]).toEqual({ date: utcDay(-29), messages: 0, prompt_tokens: 0, completion_tokens: 0 });
    expect(body.days.at(-1).date).toBe(utcDay());
    expect(body.total).toEqual({ messages: 0, prompt_tokens: 0, completion_tokens: 0 });
    expect(body.quota).toEqual({
      daily_tokens: null,
      daily_messages: null,
      used_tokens_today: 0,
      used_messages_today: 0,
      resets_at: `${utcDay(1)}T00:00:00.000Z`,
    });
    expect((await usage(me, '?days=1')).days.map((d: { date: string }) => d.date)).toEqual([utcDay()]);
    expect((await usage(me, '?days=366')).days).toHaveLength(366);
    for (const days of ['0', '367', '1.5', '-1', '', 'x']) {
      const refused = await api.request('GET', `/api/usage?days=${days}`, { token: me.access });
      expect(refused.status).toBe(422);
      expect(refused.body.detail).toEqual([
        { loc: ['query', 'days'], msg: 'Must be a whole number from 1 to 366.', type: 'value_error' },
      ]);
    }
  });

  test('counts accepted messages (regenerates and edits included) and the tokens of stored answers; refusals count nothing', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const first = await say(ws, 'count me');
    await send(ws, { type: 'chat.regenerate' });
    await send(ws, { type: 'chat.edit', message_id: first.created?.message.id, content: 'edited' });
    // Refused before admission: nothing counted.
    ws.send({ type: 'chat.message', content: '   ' });
    expect((await ws.next((f) => f.type === 'chat.error')).code).toBe('EMPTY_CONTENT');
    ws.send({ type: 'chat.regenerate', message_id: crypto.randomUUID() });
    expect((await ws.next((f) => f.type === 'chat.error')).code).toBe('MESSAGE_NOT_FOUND');
    ws.close();
    await spentOn(server, me.user.id, 3, 4, 100);
    const body = await usage(me, '?days=7');
    const today = {
      date: utcDay(),
      messages: 3,
      prompt_tokens: 3 * STUB_PROMPT_TOKENS,
      completion_tokens: 3 * DEFAULT_TOKENS.length,
    };
    expect(body.days.at(-1)).toEqual(today);
    expect(body.days.at(-4)).toEqual({
      date: utcDay(-3),
      messages: 4,
      prompt_tokens: 100,
      completion_tokens: 0,
    });
    expect(body.total).toEqual({
      messages: 7,
      prompt_tokens: 100 + 3 * STUB_PROMPT_TOKENS,
      completion_tokens: 3 * DEFAULT_TOKENS.length,
    });
    expect(body.quota).toMatchObject({ used_messages_today: 3, used_tokens_today: 3 * REPLY_TOKENS });
    // A day outside the range is not in it.
    expect((await usage(me, '?days=3')).total.messages).toBe(3);
  });

  test('deleting a conversation does not give its usage back', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    await say(ws, 'spent');
    ws.close();
    expect(
      (await api.request('DELETE', `/api/conversations/${me.conversationId}`, { token: me.access })).status,
    ).toBe(204);
    expect((await usage(me)).quota).toMatchObject({
      used_messages_today: 1,
      used_tokens_today: REPLY_TOKENS,
    });
  });

  test('without default limits, a limit staff give a user holds from their next message', async () => {
    const staff = await staffOf(server, api);
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    for (const content of ['one', 'two']) expect((await say(ws, content)).final.done).toBe(true);
    const limit = await api.request('PATCH', `/api/admin/users/${me.user.id}`, {
      token: staff.access,
      body: { daily_message_quota: 3 },
    });
    expect(limit.status).toBe(200);
    expect((await say(ws, 'three')).final.done).toBe(true);
    expect((await say(ws, 'four')).final.code).toBe('QUOTA_EXCEEDED');
    expect((await usage(me)).quota).toMatchObject({ daily_messages: 3, used_messages_today: 3 });
    ws.close();
  });

  test("a user's own limit, given before their socket opens, holds from its first message", async () => {
    const staff = await staffOf(server, api);
    const me = await api.signUp();
    const limit = await api.request('PATCH', `/api/admin/users/${me.user.id}`, {
      token: staff.access,
      body: { daily_message_quota: 1 },
    });
    expect(limit.status).toBe(200);
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    expect((await say(ws, 'one')).final.done).toBe(true);
    expect((await say(ws, 'two')).final.code).toBe('QUOTA_EXCEEDED');
    ws.close();
  });

  test("an unlimited user's socket knows it from its authentication: the first message's admission reads nothing", async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    // Written behind the server's back (staff would make every instance forget what
    // it knew): a limit already used up. Admission that read the database would refuse.
    await server.resources.database.db.execute(
      sql`update users set daily_message_quota = 1 where id = ${me.user.id}`,
    );
    await spentOn(server, me.user.id, 0, 5, 0);
    expect((await say(ws, 'still admitted')).final.done).toBe(true);
    ws.close();
  });

  test('days out of range or not an integer is 422; no token is 401', async () => {
    const me = await api.signUp();
    for (const days of ['0', '367', '-1', '1.5', 'abc', '', '1e2'])
      expect((await api.request('GET', `/api/usage?days=${days}`, { token: me.access })).status).toBe(422);
    expect((await api.request('GET', '/api/usage')).status).toBe(401);
    expect((await api.request('GET', '/api/usage/', { token: me.access })).status).toBe(200);
  });
});

describe('quotas', () => {
  let server: TestServer;
  let api: Client;
  let staff: { access: string };
  beforeAll(async () => {
    server = await startServer({ QUOTA_DAILY_MESSAGES: '2', CHAT_RATE_LIMIT: '3' });
    api = createClient(server.url);
    staff = await staffOf(server, api);
  });
  afterAll(() => server.stop());

  const setQuota = async (userId: string, body: Record<string, unknown>) => {
    const res = await api.request('PATCH', `/api/admin/users/${userId}`, { token: staff.access, body });
    expect(res.status).toBe(200);
    return res.body;
  };
  const messageCount = async (me: Me) =>
    (await api.request('GET', `/api/conversations/${me.conversationId}`, { token: me.access })).body
      .message_count;

  test('exactly at the message limit the next message, regenerate and edit are QUOTA_EXCEEDED: nothing stored, no rate-limit place taken, the socket stays open', async () => {
    const me = await api.signUp();
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    const first = await say(ws, 'one');
    expect(first.final.done).toBe(true);
    expect((await say(ws, 'two')).final.done).toBe(true);
    const stored = await messageCount(me);
    for (const frame of [
      { type: 'chat.message', content: 'three' },
      { type: 'chat.regenerate' },
      { type: 'chat.edit', message_id: first.created?.message.id, content: 'edited' },
      { type: 'chat.message', content: 'four' },
      { type: 'chat.message', content: 'five' },
    ]) {
      const { final, created } = await send(ws, frame);
      expect(final).toMatchObject({ type: 'chat.error', code: 'QUOTA_EXCEEDED' });
      expect(final.error).toEqual(expect.any(String));
      // Seconds until the next midnight UTC, when the quota resets.
      const untilMidnight = (86_400_000 - (Date.now() % 86_400_000)) / 1000;
      expect(Math.abs(final.retry_after - untilMidnight)).toBeLessThan(3);
      // In words too: hours and minutes (or minutes, or seconds, as little time is left).
      expect(final.error).toMatch(
        /^Your daily quota is used up\. It resets at midnight UTC, in (\d+ h( \d+ min)?|\d+ min|\d+ s)\.$/,
      );
      expect(created).toBeUndefined();
    }
    expect(await messageCount(me)).toBe(stored);
    expect((await api.request('GET', '/api/usage', { token: me.access })).body.quota).toMatchObject({
      daily_messages: 2,
      used_messages_today: 2,
    });
    // Five refusals took no place in the rate window (3 per minute): with a higher
    // quota the third message of the minute is accepted.
    await setQuota(me.user.id, { daily_message_quota: 3 });
    expect((await say(ws, 'three, now allowed')).final.done).toBe(true);
    expect((await say(ws, 'four')).final.code).toBe('QUOTA_EXCEEDED');
    ws.close();
  });

  test('an override of 0 is unlimited, null goes back to the default; a new UTC day starts from zero', async () => {
    const me = await api.signUp();
    await spentOn(server, me.user.id, 1, 50, 5000);
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    // Yesterday's 50 messages do not count today.
    expect((await say(ws, 'a new day')).final.done).toBe(true);
    expect((await say(ws, 'second today')).final.done).toBe(true);
    expect((await say(ws, 'third today')).final.code).toBe('QUOTA_EXCEEDED');
    expect((await setQuota(me.user.id, { daily_message_quota: 0 })).daily_message_quota).toBe(0);
    expect(
      (await api.request('GET', '/api/usage', { token: me.access })).body.quota.daily_messages,
    ).toBeNull();
    expect((await say(ws, 'unlimited now')).final.done).toBe(true);
    expect((await setQuota(me.user.id, { daily_message_quota: null })).daily_message_quota).toBeNull();
    expect((await say(ws, 'default again')).final.code).toBe('QUOTA_EXCEEDED');
    ws.close();
  });

  test('the token quota: refused once used tokens reach it; a reply in progress is never cut', async () => {
    const me = await api.signUp();
    await setQuota(me.user.id, { daily_message_quota: 0, daily_token_quota: REPLY_TOKENS + 1 });
    const ws = await connectAuthenticated(server.wsUrl, me.conversationId, me.access);
    expect((await say(ws, 'first')).final.done).toBe(true);
    // One token below the limit: admitted, and the reply runs to its end past it.
    const second = await say(ws, 'second');
    expect(second.final.done).toBe(true);
    expect(second.deltas.join('')).toBe(DEFAULT_TOKENS.join(''));
    expect((await say(ws, 'third')).final.code).toBe('QUOTA_EXCEEDED');
    const quota = (await api.request('GET', '/api/usage', { token: me.access })).body.quota;
    expect(quota).toMatchObject({ daily_tokens: REPLY_TOKENS + 1, used_tokens_today: 2 * REPLY_TOKENS });
    // Exactly at the limit is used up too.
    await setQuota(me.user.id, { daily_token_quota: 2 * REPLY_TOKENS });
    expect((await say(ws, 'exactly at it')).final.code).toBe('QUOTA_EXCEEDED');
    await setQuota(me.user.id, { daily_token_quota: 2 * REPLY_TOKENS + 1 });
    expect((await say(ws, 'one below it')).final.done).toBe(true);
    ws.close();
  });

  test('two messages racing for the last place: exactly one is admitted', async () => {
    const me = await api.signUp();
    await setQuota(me.user.id, { daily_message_quota: 1 });
    const second = (await api.request('POST', '/api/conversations/', { token: me.access, body: {} })).body.id;
    const sockets = await Promise.all(
      [me.conversationId, second].map((id) => connectAuthenticated(server.wsUrl, id, me.access)),
    );
    const finals = await Promise.all(sockets.map((ws) => say(ws, 'race')));
    expect(finals.map((r) => (r.final.done ? 'done' : r.final.code)).sort()).toEqual([
      'QUOTA_EXCEEDED',
      'done',
    ]);
    for (const ws of sockets) ws.close();
  });

  test('a message refused for another reason (already processing) gives its quota place back', async () => {
    const me = await api.signUp();
    await setQuota(me.user.id, { daily_message_quota: 2 });
    const [a, b] = await Promise.all(
      [0, 1].map(() => connectAuthenticated(server.wsUrl, me.conversationId, me.access)),
    );
    a?.send({ type: 'chat.message', content: '[stub:slow:200] slow one' });
    await a?.next((f) => f.type === 'chat.start');
    b?.send({ type: 'chat.message', content: 'too early' });
    expect((await b?.next((f) => f.type === 'chat.error'))?.code).toBe('ALREADY_PROCESSING');
    await a?.reply();
    const quota = (await api.request('GET', '/api/usage', { token: me.access })).body.quota;
    expect(quota.used_messages_today).toBe(1);
    a?.close();
    b?.close();
  });
});
