import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createClient, STRONG_PASSWORD } from '../support/client';
import { type Instance, startInstances } from '../support/instances';
import { signUpStaff } from '../support/staff';
import { until } from '../support/wait';
import { connectAuthenticated } from '../support/ws';

let pair: Awaited<ReturnType<typeof startInstances>>;
let a: Instance;
let b: Instance;

beforeAll(async () => {
  pair = await startInstances({ CHAT_RATE_LIMIT: '4', LOGIN_MAX_FAILURES: '3' });
  [a, b] = pair.instances;
});
afterAll(() => pair.stop());

describe('two instances sharing PostgreSQL and Redis', () => {
  test('the rate limit counts messages sent through both', async () => {
    const me = await createClient(a.url).signUp();
    const second = (
      await createClient(b.url).request('POST', '/api/conversations/', { token: me.access, body: {} })
    ).body.id;
    const onA = await connectAuthenticated(a.wsUrl, me.conversationId, me.access);
    const onB = await connectAuthenticated(b.wsUrl, second, me.access);
    for (let i = 0; i < 4; i++) {
      const ws = i % 2 ? onB : onA;
      ws.send({ type: 'chat.message', content: `message ${i}` });
      expect((await ws.reply()).final.done).toBe(true);
    }
    onB.send({ type: 'chat.message', content: 'fifth' });
    expect((await onB.next()).code).toBe('RATE_LIMIT_EXCEEDED');
    // Slow, so a request for it would still be streaming when it is dropped.
    onA.send({ type: 'chat.message', content: 'fifth again [stub:slow:50]' });
    expect((await onA.next()).code).toBe('RATE_LIMIT_EXCEEDED');
    // B saw the window fill, so it sent nothing. A last saw room for one more and may
    // have asked the provider ahead of the claim: that request is dropped unanswered.
    expect(pair.stub.requestsFor('fifth')).toHaveLength(0);
    expect(pair.stub.requestsFor('fifth again [stub:slow:50]').length).toBeLessThanOrEqual(1);
    for (const early of pair.stub.requestsFor('fifth again [stub:slow:50]')) {
      await until(() => early.aborted, 'the early request was aborted');
      expect(early.finished).toBe(false);
    }
    onA.close();
    onB.close();
  });

  test('a daily limit staff give a user through one instance holds at once on the other, which knew the user unlimited', async () => {
    const staff = await signUpStaff(pair.database.handle.db, createClient(a.url));
    const me = await createClient(b.url).signUp();
    const onB = await connectAuthenticated(b.wsUrl, me.conversationId, me.access);
    const say = async (content: string) => {
      onB.send({ type: 'chat.message', content });
      const { final } = await onB.reply();
      return final.done ? 'done' : final.code;
    };
    expect(await say('unlimited so far')).toBe('done');
    const res = await createClient(a.url).request('PATCH', `/api/admin/users/${me.user.id}`, {
      token: staff.access,
      body: { daily_message_quota: 2 },
    });
    expect(res.status).toBe(200);
    expect(await say('the second of two')).toBe('done');
    expect(await say('one too many')).toBe('QUOTA_EXCEEDED');
    onB.close();
  });

  test('ALREADY_PROCESSING holds across instances', async () => {
    const me = await createClient(a.url).signUp();
    const onA = await connectAuthenticated(a.wsUrl, me.conversationId, me.access);
    const onB = await connectAuthenticated(b.wsUrl, me.conversationId, me.access);
    onA.send({ type: 'chat.message', content: 'slow [stub:slow:100]' });
    await onA.next((f) => f.type === 'chat.stream');
    onB.send({ type: 'chat.message', content: 'me too' });
    expect((await onB.next((f) => f.type === 'chat.error')).code).toBe('ALREADY_PROCESSING');
    expect((await onA.reply()).final.done).toBe(true);
    // B saw A's reply too (SPEC §11), and its refusal was B's alone.
    expect((await onB.reply()).final.done).toBe(true);
    expect(onA.frames.some((f) => f.type === 'chat.error')).toBe(false);
    onB.send({ type: 'chat.message', content: 'my turn' });
    expect((await onB.reply()).final.done).toBe(true);
    onA.close();
    onB.close();
  });

  test('a socket on one instance sees the turns added through the other', async () => {
    const me = await createClient(a.url).signUp();
    const onA = await connectAuthenticated(a.wsUrl, me.conversationId, me.access);
    const onB = await connectAuthenticated(b.wsUrl, me.conversationId, me.access);
    // Both sockets see every reply, whichever instance runs it, and see the same text.
    const ask = async (ws: typeof onA, content: string) => {
      ws.send({ type: 'chat.message', content });
      const [here, there] = [await ws.reply(), await (ws === onA ? onB : onA).reply()];
      expect(here.final.done).toBe(true);
      expect(there.final).toEqual(here.final);
      expect(there.deltas.join('')).toBe(here.deltas.join(''));
      return here.deltas.join('');
    };
    const first = await ask(onA, 'alpha');
    const second = await ask(onB, 'beta');
    const gamma = 'gamma [stub:slow:50]'; // slow, so a dropped request is seen aborted
    expect(await ask(onA, gamma)).toBe(first); // one answer, nothing from a dropped request
    const gammas = pair.stub.requestsFor(gamma);
    expect(
      gammas
        .at(-1)
        ?.messages.slice(1)
        .map((m) => m.content),
    ).toEqual(['alpha', first, 'beta', second, gamma]);
    // A may have asked the provider ahead of its claim on the history it remembered;
    // the claim's stamp showed that history stale, and that request was dropped.
    expect(gammas.length).toBeLessThanOrEqual(2);
    for (const stale of gammas.slice(0, -1)) {
      expect(stale.messages.slice(1).map((m) => m.content)).toEqual(['alpha', first, gamma]);
      await until(() => stale.aborted, 'the stale request was aborted');
    }
    onA.close();
    onB.close();
  });

  test('a token blacklisted through one instance is refused by the other, and the sockets it opened there close', async () => {
    const apiA = createClient(a.url);
    const apiB = createClient(b.url);
    const me = await apiA.signUp();
    expect((await apiB.request('GET', '/api/auth/me', { token: me.access })).status).toBe(200);
    // The same user on another device: a token of its own, which the logout leaves alone.
    const device = await apiB.login(me.user.username);
    const opened = await connectAuthenticated(b.wsUrl, me.conversationId, me.access);
    const other = await connectAuthenticated(b.wsUrl, me.conversationId, device.access);
    await apiA.request('POST', '/api/auth/logout', { token: me.access, body: { refresh: me.refresh } });
    expect((await opened.closed).code).toBe(4001);
    expect(opened.frames.at(-1)?.code).toBe('AUTH_FAILED');
    other.send({ type: 'chat.message', content: 'the other device goes on' });
    expect((await other.reply()).final.done).toBe(true);
    other.close();
    expect((await apiB.request('GET', '/api/auth/me', { token: me.access })).status).toBe(401);
    expect((await apiB.request('POST', '/api/token/refresh', { body: { refresh: me.refresh } })).status).toBe(
      401,
    );
    const { connect } = await import('../support/ws');
    const ws = await connect(`${b.wsUrl}/ws/chat/${me.conversationId}/`);
    ws.send({ type: 'auth', token: me.access });
    expect((await ws.next()).code).toBe('AUTH_FAILED');
  });

  test('login lockout holds across instances', async () => {
    const apiA = createClient(a.url);
    const apiB = createClient(b.url);
    const user = await apiA.register();
    const wrong = { username: user.username, password: 'Wrong-password-1!' };
    expect((await apiA.request('POST', '/api/token/pair', { body: wrong })).status).toBe(401);
    expect((await apiB.request('POST', '/api/token/pair', { body: wrong })).status).toBe(401);
    expect((await apiA.request('POST', '/api/token/pair', { body: wrong })).status).toBe(401);
    const locked = await apiB.request('POST', '/api/token/pair', {
      body: { username: user.username, password: STRONG_PASSWORD },
    });
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toBeTruthy();
  });
});
